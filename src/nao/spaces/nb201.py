"""The NAS-Bench-201 cell: 4 nodes, 6 edges, each edge one of 5 operations.

Token ``i`` is the op on edge ``i`` in NB201's order: (1<-0), (2<-0), (2<-1), (3<-0),
(3<-1), (3<-2); the string form is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

>>> from nao.spaces.nb201 import NB201Space
>>> s = NB201Space()
>>> a = s.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
>>> a.tokens
(3, 3, 4, 1, 0, 2)
>>> s.size()
15625
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from nao.errors import OutOfSpaceError, ParseError
from nao.registry import SPACES
from nao.spaces.base import Architecture, SearchSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) for each of the 6 edges, in the benchmark's order.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
# ASCII digits, bounded length and \Z: `\d+$` accepted non-ASCII digits and a trailing newline,
# and int() of a >4300-digit index raised a bare ValueError instead of ParseError.
_EDGE_RE = re.compile(r"^([A-Za-z0-9_]+)~([0-9]{1,9})\Z")


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201's cell space (15,625 architectures)."""

    name = "nb201"
    length = len(NB201_EDGES)
    vocab_size = len(NB201_OPS)
    ops = NB201_OPS

    def allowed_tokens(self, position: int) -> np.ndarray:
        return np.arange(self.vocab_size)

    def validate(self, tokens: Sequence[int]) -> None:
        if len(tokens) != self.length:
            raise OutOfSpaceError(f"nb201 architecture needs {self.length} tokens, got {len(tokens)}")
        for i, t in enumerate(tokens):
            if not (0 <= int(t) < self.vocab_size):
                raise OutOfSpaceError(f"nb201 token {t} at position {i} is not an op id 0..{self.vocab_size - 1}")

    def parse(self, text: str) -> Architecture:
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise ParseError(f"nb201 string needs 3 '+'-separated nodes, got {len(nodes)}: {text!r}")
        tokens: list[int] = []
        for node_idx, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise ParseError(f"nb201 node {node_idx} must be written |op~k|...|, got {node!r}")
            edges = node[1:-1].split("|")
            if len(edges) != node_idx:
                raise ParseError(f"nb201 node {node_idx} needs {node_idx} edges, got {len(edges)} in {node!r}")
            for src, edge in enumerate(edges):
                m = _EDGE_RE.match(edge)
                if not m:
                    raise ParseError(f"nb201 edge {edge!r} in node {node_idx} is not of the form op~k")
                op, k = m.group(1), int(m.group(2))
                if op not in NB201_OPS:
                    raise ParseError(f"unknown nb201 op {op!r} in {edge!r}; ops: {', '.join(NB201_OPS)}")
                if k != src:
                    raise ParseError(f"nb201 edge {edge!r} in node {node_idx} must come from node {src}")
                tokens.append(NB201_OPS.index(op))
        return self.make(tokens)

    def format(self, arch: Architecture) -> str:
        self.check(arch)
        parts, i = [], 0
        for node in range(1, 4):
            edges = []
            for src in range(node):
                edges.append(f"{NB201_OPS[arch.tokens[i]]}~{src}")
                i += 1
            parts.append("|" + "|".join(edges) + "|")
        return "+".join(parts)

    def token_name(self, token: int) -> str:
        return NB201_OPS[token]

    def path_encoding(self, arch: Architecture) -> np.ndarray:
        """One entry per sequence of 1-3 live ops (4 + 16 + 64 = 84), set if some input-to-output
        route carries exactly that sequence; a route through a ``none`` edge is no path.

        >>> s = NB201Space()
        >>> v = s.path_encoding(s.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"))
        >>> v.shape, int(v.sum())  # only the direct route 0->3 (skip) is a path
        ((84,), 1)
        """
        self.check(arch)
        live = self.vocab_size - 1  # op ids 1..4; 0 ("none") cuts the route
        offsets = np.cumsum([0] + [live**k for k in range(1, 4)])  # start of each path length's block
        vec = np.zeros(int(offsets[-1]))
        for route in _PATHS:
            ops = [arch.tokens[e] for e in route]
            if 0 in ops:
                continue
            index = sum((op - 1) * live**j for j, op in enumerate(ops))  # base-`live` number of the sequence
            vec[int(offsets[len(ops) - 1]) + index] = 1.0
        return vec

    def prune(self, arch: Architecture) -> Architecture:
        """Set to ``none`` every edge whose target never reaches the output node or whose
        source never receives the input.

        The first kind cannot change the output at all; the second carries an all-zero
        tensor, so it adds at most a constant (a BatchNorm shift after a convolution).

        >>> s = NB201Space()
        >>> s.format(s.prune(s.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|")))
        '|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|'
        """
        self.check(arch)
        tokens = list(arch.tokens)
        while True:  # removing an edge can strand others: repeat until nothing changes
            dead = [i for i in _dead_edges(tokens) if tokens[i] != 0]
            if not dead:
                return arch if tuple(tokens) == arch.tokens else Architecture(self.name, tuple(tokens))
            for i in dead:
                tokens[i] = 0


def _input_output_paths() -> tuple[tuple[int, ...], ...]:
    """Every input-to-output path of the full cell as edge indices, input side first."""
    paths: list[tuple[int, ...]] = []

    def walk(node: int, prefix: tuple[int, ...]) -> None:
        if node == 3:
            paths.append(prefix)
        for i, (dst, src) in enumerate(NB201_EDGES):
            if src == node:
                walk(dst, (*prefix, i))

    walk(0, ())
    return tuple(paths)


# ((0, 2, 5), (0, 4), (1, 5), (3,)): the four routes through the cell, as edge indices.
_PATHS = _input_output_paths()


def _dead_edges(tokens: Sequence[int]) -> list[int]:
    """Edges (indices into NB201_EDGES) that are off every input-to-output path of live edges."""
    live = [t != 0 for t in tokens]  # op 0 is "none"
    reached = {0}  # nodes fed by the input through live edges (edges are in topological order)
    for i, (dst, src) in enumerate(NB201_EDGES):
        if live[i] and src in reached:
            reached.add(dst)
    useful = {3}  # nodes with a live path to the output
    for i, (dst, src) in reversed(list(enumerate(NB201_EDGES))):
        if live[i] and dst in useful:
            useful.add(src)
    return [i for i, (dst, src) in enumerate(NB201_EDGES) if dst not in useful or src not in reached]

