"""Recurrent cell spaces (NAO-WS / ENAS / DARTS style) for language modelling.

A cell has ``steps + 1`` nodes over ``(x_t, h_{t-1})``. Node 0 is the initial combination
``s0 = h + sigmoid(c0) * (tanh(g0) - h)`` with ``[c0, g0] = [x_t, h_{t-1}] W0``. Each further
node ``i`` (1..steps) reads one earlier node ``j < i`` and applies an activation:
``s_i = s_j + sigmoid(c) * (act(g) - s_j)`` with ``[c, g] = s_j W_i``. The cell's output
``h_t`` is the average of a set of nodes fixed by the space's *output rule*:

* ``"mean"`` -- all nodes ``1..steps`` (node 0 excluded). This is what the official NAO code
  does (renqianluo/NAO ``NAO-WS/rnn/model.py``: ``mean(states[1..STEPS])``; ``NAO/rnn/utils.py``
  ``parse_arch`` sets ``concat = range(1, n+1)`` and leaves the loose-end rule commented
  out) and what DARTS does (``concat=range(1, 9)``). Spaces ``rnn`` and ``rnn-darts``.
* ``"loose_ends"`` -- the nodes no other node reads (ENAS). Space ``rnn-enas``.

Tokens: per node ``[input, activation]`` (``2 * steps`` tokens), one vocabulary for all
positions: ids ``0..steps-1`` name nodes, ids ``steps..steps+3`` the activations
(:data:`ACTIVATIONS` order, as NAO-WS's ``_get_activation``). :meth:`RNNCellSpace.allowed_tokens`
masks input positions to earlier nodes and activation positions to activations;
:meth:`~RNNCellSpace.act_token` / :meth:`~RNNCellSpace.decode` translate, so nobody else needs
the layout.

Symmetry: node weights are private to each node, so renumbering nodes in another
topological order builds the same network (the cell is a tree rooted at node 0, children
unordered). :meth:`~RNNCellSpace.canonical` numbers nodes in a pre-order walk with children
sorted by their subtree, :meth:`~RNNCellSpace.augment` draws a random topological
numbering. (A weight-sharing supernet indexes weights by node position, so there the
encodings differ; the evaluator scores the canonical one.)

Text form: the DARTS recurrent genotype, e.g.
``Genotype(recurrent=[('relu', 0), ('tanh', 1)], concat=range(1, 3))``.

>>> from nao.spaces import get_space
>>> space = get_space("rnn")
>>> space.length, space.vocab_size
(22, 15)
>>> nao = space.named("NAO")
>>> space.decode(nao).nodes[:3]
(('relu', 0), ('relu', 0), ('relu', 1))
>>> space.parse(space.format(nao)) == nao
True
"""

from __future__ import annotations

import ast
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nao.errors import ConfigError, OutOfSpaceError, ParseError
from nao.registry import SPACES
from nao.spaces.base import Architecture, SearchSpace
from nao.spaces.literal import call_name as _call_name
from nao.spaces.literal import literal as _literal

# Activation order of NAO-WS (renqianluo/NAO NAO-WS/rnn/model.py ``_get_activation``).
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
OUTPUT_RULES = ("mean", "loose_ends")


@dataclass(frozen=True)
class RecurrentGenotype:
    """A decoded cell: ``nodes[i-1] = (activation, input)`` for node ``i``; ``concat`` = averaged nodes."""

    nodes: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]

    @property
    def steps(self) -> int:
        return len(self.nodes)


# Published cells, as facts with their sources (DARTS-style (activation, input) pairs).
# NAO: renqianluo/NAO NAO/rnn/train_ptb_final.sh (the script the README gives for the PTB
#   cell of the paper's appendix Fig. 2, test ppl 56.02):
#   fixed_arc="0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2", read by NAO/rnn/utils.py
#   parse_arch as (input, act) pairs with ACT = {0: tanh, 1: relu, 2: identity, 3: sigmoid}
#   and concat = range(1, 12). Caveat: NAO-WS's code numbers activations differently
#   (2 = sigmoid, 3 = identity); the last node (act id 2) would be sigmoid under that table.
#   We follow the parser the script actually uses. We did not check it against the figure.
# DARTS_V2: quark0/darts rnn/genotypes.py ``DARTS`` (= DARTS_V2 in that repo's history),
#   8 steps, concat=range(1, 9); also copied verbatim in renqianluo/NAO NAO/rnn/genotypes.py.
# ENAS: the ENAS PTB cell as transcribed in quark0/darts rnn/genotypes.py ``ENAS``
#   (11 steps, concat = its loose ends [2, 5, 6, 9, 10, 11]); not checked against ENAS's own code.
_NAO_PTB = (
    ("relu", 0), ("relu", 0), ("relu", 1), ("tanh", 3), ("relu", 4), ("relu", 4),
    ("relu", 5), ("relu", 1), ("relu", 7), ("relu", 1), ("identity", 1),
)  # fmt: skip
_DARTS_V2 = (
    ("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1), ("relu", 5), ("relu", 1),
)  # fmt: skip
_ENAS = (
    ("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3),
    ("relu", 4), ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8),
)  # fmt: skip


class RNNCellSpace(SearchSpace):
    """A recurrent cell space with ``steps`` searched nodes and an output rule.

    Args:
        name: registry name.
        steps: searched nodes after node 0 (NAO-WS: 11, i.e. 12 nodes in all).
        output: ``"mean"`` (all nodes 1..steps) or ``"loose_ends"`` (unread nodes).
        known: published cells of this space, name -> node pairs.
    """

    def __init__(self, name: str, steps: int, output: str, known: dict[str, tuple[tuple[str, int], ...]]) -> None:
        if output not in OUTPUT_RULES:
            raise ConfigError(f"unknown output rule {output!r}; choose one of {', '.join(OUTPUT_RULES)}")
        if steps < 1:
            raise ConfigError(f"a recurrent cell needs at least 1 step, got {steps}")
        self.name = name
        self.steps = steps
        self.output = output
        self.length = 2 * steps
        self.vocab_size = steps + len(ACTIVATIONS)
        self._act_base = steps
        self._known = dict(known)

    def __repr__(self) -> str:
        return f"RNNCellSpace({self.name!r}, steps={self.steps}, output={self.output!r})"

    # -- grammar ---------------------------------------------------------------------------
    def act_token(self, act: str) -> int:
        """The token id of activation ``act``."""
        if act not in ACTIVATIONS:
            raise OutOfSpaceError(f"unknown activation {act!r}; activations: {', '.join(ACTIVATIONS)}")
        return self._act_base + ACTIVATIONS.index(act)

    def allowed_tokens(self, position: int) -> np.ndarray:
        if not 0 <= position < self.length:
            raise OutOfSpaceError(f"position {position} outside 0..{self.length - 1} of space {self.name!r}")
        node = position // 2 + 1
        if position % 2 == 0:
            return np.arange(node)  # node i may read nodes 0..i-1
        return np.arange(self._act_base, self._act_base + len(ACTIVATIONS))

    def token_name(self, token: int) -> str:
        if 0 <= token < self._act_base:
            return f"node{token}"
        if self._act_base <= token < self.vocab_size:
            return ACTIVATIONS[token - self._act_base]
        raise OutOfSpaceError(f"token {token} outside the vocabulary 0..{self.vocab_size - 1} of {self.name!r}")

    def validate(self, tokens: Sequence[int]) -> None:
        if len(tokens) != self.length:
            raise OutOfSpaceError(
                f"{self.name} architecture needs {self.length} tokens ({self.steps} nodes x [input, activation]), got {len(tokens)}"
            )
        for pos, t in enumerate(tokens):
            node = pos // 2 + 1
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
                raise OutOfSpaceError(f"{self.name} token {t!r} at position {pos} (node {node}) is not an integer")
            t = int(t)
            if pos % 2 == 0 and not 0 <= t < node:
                raise OutOfSpaceError(
                    f"{self.name} node {node} input {t} at position {pos} is not an earlier node (0..{node - 1})"
                )
            if pos % 2 == 1 and not self._act_base <= t < self.vocab_size:
                raise OutOfSpaceError(
                    f"{self.name} node {node} activation token {t} at position {pos} is not an activation id "
                    f"({self._act_base}..{self.vocab_size - 1}: {', '.join(ACTIVATIONS)})"
                )

    # -- meaning ---------------------------------------------------------------------------
    def concat_of(self, inputs: Sequence[int]) -> tuple[int, ...]:
        """Averaged nodes for a cell whose node ``i`` reads ``inputs[i-1]`` (the output rule)."""
        if self.output == "mean":
            return tuple(range(1, len(inputs) + 1))
        used = set(inputs)
        return tuple(i for i in range(1, len(inputs) + 1) if i not in used)

    def decode(self, arch: Architecture) -> RecurrentGenotype:
        """The cell as ``(activation, input)`` pairs plus the averaged nodes."""
        self.check(arch)
        t = arch.tokens
        nodes = tuple((ACTIVATIONS[t[2 * k + 1] - self._act_base], t[2 * k]) for k in range(self.steps))
        return RecurrentGenotype(nodes, self.concat_of([inp for _, inp in nodes]))

    def encode(self, nodes: Sequence[tuple[str, int]]) -> Architecture:
        """The architecture with node pairs ``[(activation, input), ...]`` (validated)."""
        if len(nodes) != self.steps:
            raise OutOfSpaceError(f"{self.name} needs {self.steps} nodes, got {len(nodes)}")
        tokens: list[int] = []
        for i, (act, inp) in enumerate(nodes, start=1):
            if act not in ACTIVATIONS:
                raise OutOfSpaceError(f"unknown activation {act!r} at node {i}; activations: {', '.join(ACTIVATIONS)}")
            tokens += [inp, self.act_token(act)]
        return self.make(tokens)

    def named(self, name: str) -> Architecture:
        """A published cell of this space by name (case-insensitive); ConfigError lists the names."""
        for k, nodes in self._known.items():
            if k.lower() == name.strip().lower():
                return self.encode(nodes)
        have = ", ".join(self._known) or "none"
        raise ConfigError(f"no architecture named {name!r} in space {self.name!r}; known: {have}")

    def named_architectures(self) -> dict[str, Architecture]:
        """All published cells of this space."""
        return {k: self.encode(v) for k, v in self._known.items()}

    def lookup(self, text: str) -> Architecture:
        """``--arch NAME|STRING``: a published name, else a genotype string."""
        if text.strip().lower() in {k.lower() for k in self._known}:
            return self.named(text)
        return self.parse(text)

    # -- symmetry --------------------------------------------------------------------------
    def _children(self, tokens: Sequence[int]) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in range(self.steps + 1)]
        for i in range(1, self.steps + 1):
            kids[tokens[2 * (i - 1)]].append(i)
        return kids

    def _subtree_keys(self, tokens: Sequence[int], kids: list[list[int]]) -> list[str]:
        keys = [""] * (self.steps + 1)
        for v in range(self.steps, -1, -1):  # children have larger ids, so they are done first
            act = "x" if v == 0 else str(tokens[2 * (v - 1) + 1] - self._act_base)
            keys[v] = act + "(" + ",".join(sorted(keys[c] for c in kids[v])) + ")"
        return keys

    def _renumber(self, tokens: Sequence[int], order: Sequence[int]) -> Architecture:
        """Tokens after giving old node ``order[k]`` the new id ``k`` (``order`` topological)."""
        new_id = {old: k for k, old in enumerate(order)}
        out = [0] * self.length
        for old in order[1:]:
            k = new_id[old]
            out[2 * (k - 1)] = new_id[tokens[2 * (old - 1)]]
            out[2 * (k - 1) + 1] = tokens[2 * (old - 1) + 1]
        return Architecture(self.name, tuple(out))

    def canonical(self, arch: Architecture) -> Architecture:
        """Pre-order numbering, children visited in order of their subtree's canonical string."""
        self.check(arch)
        kids = self._children(arch.tokens)
        keys = self._subtree_keys(arch.tokens, kids)
        order: list[int] = []
        stack = [0]
        while stack:
            v = stack.pop()
            order.append(v)
            stack.extend(sorted(kids[v], key=lambda c: keys[c], reverse=True))  # smallest popped first
        return self._renumber(arch.tokens, order)

    def key(self, arch: Architecture) -> Hashable:
        return self.canonical(arch).tokens

    def augment(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A random topological renumbering of the nodes (same tree, same key)."""
        self.check(arch)
        kids = self._children(arch.tokens)
        order, frontier = [0], list(kids[0])
        while frontier:
            v = frontier.pop(int(rng.integers(len(frontier))))
            order.append(v)
            frontier.extend(kids[v])
        return self._renumber(arch.tokens, order)

    # -- text ------------------------------------------------------------------------------
    def format(self, arch: Architecture) -> str:
        g = self.decode(arch)
        pairs = ", ".join(f"({act!r}, {inp})" for act, inp in g.nodes)
        concat = f"range(1, {self.steps + 1})" if self.output == "mean" else str(list(g.concat))
        return f"Genotype(recurrent=[{pairs}], concat={concat})"

    def parse(self, text: str) -> Architecture:
        """Read ``Genotype(recurrent=[(act, input), ...], concat=...)``; ``concat`` is optional
        but, when given, must match the space's output rule. A bare ``[(act, input), ...]`` list
        is accepted too."""
        s = text.strip()
        if not s:
            raise ParseError(f"empty {self.name} cell string; expected Genotype(recurrent=[(act, input), ...], concat=...)")
        recurrent, concat = _read_recurrent(s)
        nodes = self._read_pairs(recurrent)
        inputs = [inp for _, inp in nodes]
        if concat is not None:
            expected = list(self.concat_of(inputs))
            if concat != expected:
                rule = "all nodes 1..steps" if self.output == "mean" else "the loose-end nodes"
                raise ParseError(f"concat={concat} disagrees with {self.name}'s output rule ({rule}): expected {expected}")
        return self.encode(nodes)

    def _read_pairs(self, value: Any) -> list[tuple[str, int]]:
        if not isinstance(value, list):
            raise ParseError(f"recurrent must be a list of (activation, input) pairs, got {type(value).__name__}")
        if len(value) != self.steps:
            raise ParseError(f"{self.name} needs {self.steps} (activation, input) pairs, got {len(value)}")
        nodes = []
        for i, pair in enumerate(value, start=1):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], int)):
                raise ParseError(f"node {i} of {self.name} must be an (activation, input) pair, got {pair!r:.60}")
            act, inp = pair
            if act not in ACTIVATIONS:
                raise ParseError(f"unknown activation {act!r} at node {i}; activations: {', '.join(ACTIVATIONS)}")
            if not 0 <= inp < i:
                raise ParseError(f"node {i} input {inp} is not an earlier node (0..{i - 1})")
            nodes.append((act, inp))
        return nodes


# -- genotype text reader (literals only; nothing is evaluated) -----------------------------
def _read_recurrent(s: str) -> tuple[Any, list[int] | None]:
    try:
        body = ast.parse(s, mode="eval").body
    # The parser reports absurd nesting/huge literals as RecursionError/MemoryError/ValueError.
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ParseError(f"not a recurrent genotype string (syntax error): {s[:80]!r}") from None
    # "[...], range(1, 12)": the bare positional fields of a Genotype(...) call.
    fields_tuple = isinstance(body, ast.Tuple) and len(body.elts) == 2 and isinstance(body.elts[0], ast.List)
    if isinstance(body, (ast.List, ast.Tuple)) and not fields_tuple:  # a bare list of pairs
        return _literal(body), None
    if fields_tuple:
        args, keywords = body.elts, []
    elif isinstance(body, ast.Call) and _call_name(body) == "Genotype":
        args, keywords = body.args, body.keywords
    else:
        raise ParseError(f"expected Genotype(recurrent=[(act, input), ...], concat=...), got {s[:80]!r}")
    if len(args) > 2:
        raise ParseError(f"Genotype takes (recurrent, concat), got {len(args)} positional fields")
    fields = dict(zip(("recurrent", "concat"), (_literal(a) for a in args)))
    for kw in keywords:
        if kw.arg not in ("recurrent", "concat") or kw.arg in fields:
            raise ParseError(f"Genotype field {kw.arg!r} is unknown or repeated; fields: recurrent, concat")
        fields[kw.arg] = _literal(kw.value)
    if "recurrent" not in fields:
        raise ParseError("Genotype needs a recurrent=[(act, input), ...] field")
    concat = fields.get("concat")
    if concat is not None and not (isinstance(concat, list) and all(isinstance(c, int) for c in concat)):
        raise ParseError(f"concat must be a list of node ids or range(a, b), got {concat!r:.60}")
    return fields["recurrent"], concat


@SPACES.register("rnn")
class NaoRNNSpace(RNNCellSpace):
    """NAO-WS's PTB cell space: 12 nodes (11 searched), output = mean of nodes 1..11; 22 tokens.

    Size from renqianluo/NAO NAO-WS/rnn/utils.py (``STEPS=11``, ``generate_arch`` draws
    ``pred`` in ``0..i-1`` and one of 4 activations for ``i = 1..11``).
    """

    def __init__(self) -> None:
        super().__init__("rnn", 11, "mean", {"NAO": _NAO_PTB})


@SPACES.register("rnn-darts")
class DartsRNNSpace(RNNCellSpace):
    """DARTS's recurrent cell space: 9 nodes (8 searched), output = mean of nodes 1..8; 16 tokens."""

    def __init__(self) -> None:
        super().__init__("rnn-darts", 8, "mean", {"DARTS_V2": _DARTS_V2})


@SPACES.register("rnn-enas")
class EnasRNNSpace(RNNCellSpace):
    """ENAS's recurrent cell space: 12 nodes (11 searched), output = mean of the loose ends; 22 tokens."""

    def __init__(self) -> None:
        super().__init__("rnn-enas", 11, "loose_ends", {"ENAS": _ENAS})


def find_named(name: str) -> tuple[RNNCellSpace, Architecture]:
    """A published recurrent cell by name in whichever ``rnn*`` space holds it."""
    spaces = [NaoRNNSpace(), DartsRNNSpace(), EnasRNNSpace()]
    for space in spaces:
        if name.strip().lower() in {k.lower() for k in space._known}:
            return space, space.named(name)
    names = ", ".join(k for sp in spaces for k in sp._known)
    raise ConfigError(f"unknown recurrent architecture {name!r}; known: {names}")


__all__ = [
    "ACTIVATIONS",
    "DartsRNNSpace",
    "EnasRNNSpace",
    "NaoRNNSpace",
    "RNNCellSpace",
    "RecurrentGenotype",
    "find_named",
]
