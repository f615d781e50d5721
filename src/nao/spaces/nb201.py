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

