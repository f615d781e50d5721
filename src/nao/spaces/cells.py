"""NASNet/NAO-style convolutional cell spaces: the ``nao-ws``, ``nao`` and ``darts`` presets.

(Over 400 lines: the grammar, the canonical form, the symmetry augmentation and three string formats
(DARTS genotype, official integer encoding, tokens) must agree position by position, so they stay together.)

An architecture is a normal cell followed by a reduction cell. Each cell has ``B`` nodes; node
``i`` (0-based) adds two branches, each an (input, op) pair, and may read node ids ``0..i+1``:
ids 0 and 1 are the outputs of the two previous cells, ids ``2..B+1`` the cell's own nodes.
Tokens per node are ``[input_a, op_a, input_b, op_b]``, so a cell is ``4B`` tokens and an
architecture ``8B`` (40 for ``nao``/``nao-ws``, 32 for ``darts``).

All positions share one vocabulary; which ids a position may hold is
:meth:`ConvCellSpace.allowed_tokens`, and :meth:`~ConvCellSpace.op_token`,
:meth:`~ConvCellSpace.input_token` and :meth:`~ConvCellSpace.slot` translate between ids and
meaning, so no other module needs to know the layout.

The text form is the DARTS genotype string (also used by NAS-Bench-301). For ``nao`` and
``nao-ws``, :meth:`~ConvCellSpace.parse` also reads the official NAO code's plain integer
encoding (see :meth:`~ConvCellSpace.format_official`).

>>> from nao.spaces import get_space
>>> darts = get_space("darts")
>>> v2 = darts.parse(
...     "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),"
...     " ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0),"
...     " ('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0),"
...     " ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0),"
...     " ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
>>> normal, reduce = darts.cells(v2)
>>> normal[3]
Node(input_a=0, op_a='skip_connect', input_b=2, op_b='dil_conv_3x3')
>>> darts.concat(normal)
[2, 3, 4, 5]
>>> nao = get_space("nao")  # NAONet-A, as released with the official code
>>> a = nao.parse("0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7")
>>> nao.concat(nao.cells(a)[0])
[3, 5, 6]
>>> nao.parse(nao.format(a)) == a
True
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nao.errors import OutOfSpaceError, ParseError
from nao.registry import SPACES
from nao.spaces.base import Architecture, SearchSpace
from nao.spaces.literal import call_name as _call_name
from nao.spaces.literal import literal as _literal

CELL_NAMES = ("normal", "reduce")

# NAO-WS (Luo et al. 2018, sec. 3.4 / official PyTorch code `OPERATIONS_small`, same order).
NAO_WS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
# The original NAO search space (paper appendix / official code `OPERATIONS_large`, same order).
NAO_OPS = (
    "identity",
    "conv_1x1",
    "conv_3x3",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "max_pool_2x2",
    "max_pool_3x3",
    "max_pool_5x5",
    "avg_pool_2x2",
    "avg_pool_3x3",
    "avg_pool_5x5",
)
# DARTS (Liu et al. 2019) PRIMITIVES without 'none', which never appears in a derived genotype.
DARTS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# Longest text `parse` looks at: real genotype strings are < 2,000 characters, and Python's
# parser fails with RecursionError/MemoryError on pathological inputs a few thousand long.
_MAX_TEXT_CHARS = 8_000
_OFFICIAL_RE = re.compile(r"[0-9]+(?:\s+[0-9]+)*", re.ASCII)
_GENOTYPE_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclass(frozen=True)
class Node:
    """One node of a cell: the sum of ``op_a(input_a)`` and ``op_b(input_b)``.

    Inputs are node ids: 0 and 1 are the two previous cells' outputs, ``2..B+1`` the cell's nodes.
    """

    input_a: int
    op_a: str
    input_b: int
    op_b: str


@dataclass(frozen=True)
class Slot:
    """What one token position encodes."""

    cell: str  # 'normal' or 'reduce'
    node: int  # 0-based node index within the cell (its node id is node + 2)
    branch: str  # 'a' or 'b'
    kind: str  # 'input' (a node id) or 'op'


class ConvCellSpace(SearchSpace):
    """Normal + reduction cell of ``num_nodes`` two-branch nodes over a list of ``ops``.

    ``concat_rule`` says which node ids form the cell output: ``"unused"`` (NAO/ENAS: every id,
    cell inputs 0/1 included, that no node of the cell reads) or ``"all"`` (DARTS: ``2..B+1``).
    Token ids: ``0..B`` are node ids (``input_token``), ``B+1..`` are ops (``op_token``).
    """

    ops: tuple[str, ...]
    num_nodes: int

    def __init__(self, name: str, ops: Sequence[str], num_nodes: int, concat_rule: str) -> None:
        if concat_rule not in ("unused", "all"):
            raise ValueError(f"concat_rule must be 'unused' or 'all', got {concat_rule!r}")
        if num_nodes < 1 or len(ops) < 1 or len(set(ops)) != len(ops):
            raise ValueError("a cell space needs >= 1 node and a non-empty list of distinct ops")
        self.name = name
        self.ops = tuple(ops)
        self.num_nodes = int(num_nodes)
        self.concat_rule = concat_rule
        self._op_base = self.num_nodes + 1  # node ids 0..B come first in the vocabulary
        self._op_index = {op: k for k, op in enumerate(self.ops)}
        self.vocab_size = self._op_base + len(self.ops)
        self.length = 2 * 4 * self.num_nodes
        self._slots = tuple(self._make_slot(p) for p in range(self.length))
        op_ids = np.arange(self._op_base, self.vocab_size)
        self._allowed = tuple(np.arange(s.node + 2) if s.kind == "input" else op_ids for s in self._slots)
        for arr in self._allowed:
            arr.flags.writeable = False  # shared between calls; callers must not edit them

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, num_nodes={self.num_nodes}, ops={len(self.ops)})"

    # -- vocabulary and layout -------------------------------------------------------------
    def _make_slot(self, position: int) -> Slot:
        per_cell = 4 * self.num_nodes
        cell, rest = divmod(position, per_cell)
        node, k = divmod(rest, 4)
        return Slot(CELL_NAMES[cell], node, "ab"[k // 2], "input" if k % 2 == 0 else "op")

    def slot(self, position: int) -> Slot:
        """What ``position`` encodes (cell, node, branch, input/op)."""
        if not 0 <= position < self.length:
            raise OutOfSpaceError(f"position {position} outside 0..{self.length - 1} of space {self.name!r}")
        return self._slots[position]

    def op_token(self, op: str) -> int:
        """Token id of the op named ``op``."""
        if op not in self._op_index:
            raise OutOfSpaceError(f"unknown op {op!r} for space {self.name!r}; valid ops: {', '.join(self.ops)}")
        return self._op_base + self._op_index[op]

    def input_token(self, node_id: int) -> int:
        """Token id of node id ``node_id`` (0/1 = previous cells, 2.. = the cell's nodes)."""
        if not 0 <= node_id <= self.num_nodes:
            raise OutOfSpaceError(f"node id {node_id} outside 0..{self.num_nodes} usable as an input")
        return int(node_id)

    def allowed_tokens(self, position: int) -> np.ndarray:
        self.slot(position)  # range check with a clear error
        return self._allowed[position]

    def token_name(self, token: int) -> str:
        t = int(token)
        if 0 <= t < self._op_base:
            return f"in{t}"
        if self._op_base <= t < self.vocab_size:
            return self.ops[t - self._op_base]
        raise OutOfSpaceError(f"token {t} outside the vocabulary 0..{self.vocab_size - 1} of {self.name!r}")

    # -- validation ------------------------------------------------------------------------
    def validate(self, tokens: Sequence[int]) -> None:
        try:
            n = len(tokens)
        except TypeError:
            raise OutOfSpaceError(f"{self.name} architecture must be a sequence of tokens, got {tokens!r}") from None
        if n != self.length:
            raise OutOfSpaceError(
                f"{self.name} architecture needs {self.length} tokens (2 cells x {self.num_nodes} nodes x 4), got {n}"
            )
        for p, t in enumerate(tokens):
            self._check_token(p, t)

    def _check_token(self, position: int, token: Any) -> None:
        try:
            t = operator.index(token)  # ints and numpy ints; rejects floats, strings, None
        except TypeError:
            raise OutOfSpaceError(f"token {token!r} at position {position} is not an integer") from None
        s = self._slots[position]
        where = f"position {position} ({s.cell} cell, node {s.node}, {s.kind}_{s.branch})"
        if not 0 <= t < self.vocab_size:
            raise OutOfSpaceError(f"token {t} at {where} is outside the vocabulary 0..{self.vocab_size - 1}")
        if s.kind == "input":
            if t >= self._op_base:
                raise OutOfSpaceError(f"{where} needs a node id, got op token {t} ({self.ops[t - self._op_base]})")
            if t > s.node + 1:
                raise OutOfSpaceError(f"node {s.node} input {t} > {s.node + 1} in {s.cell!r} cell ({where})")
        elif t < self._op_base:
            raise OutOfSpaceError(f"{where} needs an op token {self._op_base}..{self.vocab_size - 1}, got node id {t}")

    # -- cells -----------------------------------------------------------------------------
    def cells(self, arch: Architecture) -> tuple[list[Node], list[Node]]:
        """The (normal, reduce) cells of ``arch`` as lists of :class:`Node`."""
        self.check(arch)
        nodes = []
        for i in range(0, self.length, 4):
            ia, oa, ib, ob = arch.tokens[i : i + 4]
            nodes.append(Node(ia, self.ops[oa - self._op_base], ib, self.ops[ob - self._op_base]))
        return nodes[: self.num_nodes], nodes[self.num_nodes :]

    def concat(self, nodes: Sequence[Node]) -> list[int]:
        """Sorted node ids whose outputs are concatenated to form the cell's output."""
        if self.concat_rule == "all":
            return list(range(2, self.num_nodes + 2))
        used = {n.input_a for n in nodes} | {n.input_b for n in nodes}
        return [i for i in range(len(nodes) + 2) if i not in used]

    def from_cells(self, normal: Sequence[Node], reduce: Sequence[Node]) -> Architecture:
        """The architecture with these cells; :class:`OutOfSpaceError` names any bad node."""
        tokens: list[int] = []
        for cell, nodes in zip(CELL_NAMES, (normal, reduce)):
            if len(nodes) != self.num_nodes:
                raise OutOfSpaceError(f"{cell!r} cell needs {self.num_nodes} nodes, got {len(nodes)}")
            for i, n in enumerate(nodes):
                for inp, op in ((n.input_a, n.op_a), (n.input_b, n.op_b)):
                    tokens += [self._node_input(inp, i, cell), self._node_op(op, i, cell)]
        return self.make(tokens)

    def _node_input(self, inp: Any, node: int, cell: str) -> int:
        if isinstance(inp, bool) or not isinstance(inp, (int, np.integer)):
            raise OutOfSpaceError(f"node {node} input {inp!r} in {cell!r} cell is not an integer node id")
        if inp < 0:
            raise OutOfSpaceError(f"node {node} input {inp} < 0 in {cell!r} cell")
        if inp > node + 1:
            raise OutOfSpaceError(f"node {node} input {inp} > {node + 1} in {cell!r} cell")
        return int(inp)

    def _node_op(self, op: Any, node: int, cell: str) -> int:
        if op not in self._op_index:
            raise OutOfSpaceError(
                f"unknown op {op!r} at node {node} of {cell!r} cell; valid ops for {self.name}: {', '.join(self.ops)}"
            )
        return self._op_base + self._op_index[op]

    # -- symmetry --------------------------------------------------------------------------
    def canonical(self, arch: Architecture) -> Architecture:
        """Each node's two branches ordered by (input id, op token): swapping them is a no-op."""
        self.check(arch)
        t = arch.tokens
        out: list[int] = []
        for i in range(0, self.length, 4):
            a, b = t[i : i + 2], t[i + 2 : i + 4]
            out += [*a, *b] if a <= b else [*b, *a]
        return Architecture(self.name, tuple(out))

    def key(self, arch: Architecture) -> Hashable:
        return self.canonical(arch).tokens

    def augment(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Swap the two branches of each node independently with probability 1/2."""
        self.check(arch)
        t = list(arch.tokens)
        swaps = rng.random(self.length // 4) < 0.5
        for n, swap in enumerate(swaps):
            if swap:
                i = 4 * n
                t[i : i + 4] = t[i + 2 : i + 4] + t[i : i + 2]
        return Architecture(self.name, tuple(t))

    # -- text ------------------------------------------------------------------------------
    def format(self, arch: Architecture) -> str:
        """The DARTS genotype string: per node ``(op_a, input_a), (op_b, input_b)``, then concat."""
        normal, reduce = self.cells(arch)
        parts = []
        for cell, nodes in zip(CELL_NAMES, (normal, reduce)):
            pairs = ", ".join(
                f"({op!r}, {inp})" for n in nodes for op, inp in ((n.op_a, n.input_a), (n.op_b, n.input_b))
            )
            parts.append(f"{cell}=[{pairs}], {cell}_concat={self.concat(nodes)}")
        return f"Genotype({', '.join(parts)})"

    def format_official(self, arch: Architecture) -> str:
        """The official NAO code's encoding (``nao``/``nao-ws`` only): ``x_id x_op y_id y_op`` per node.

        Normal cell then reduction cell, node ids as here; op ids index the official op tables:
        ``nao-ws`` 0..4 (``OPERATIONS_small``), ``nao`` 5..15 (``OPERATIONS_large``), as in the
        released NAONet-A string (renqianluo/NAO_pytorch, ``train_NAONet_A_36_cifar10.sh``).
        """
        offset = self._official_offset()
        nodes = [n for cell in self.cells(arch) for n in cell]
        ints = [
            v
            for n in nodes
            for v in (n.input_a, self._op_index[n.op_a] + offset, n.input_b, self._op_index[n.op_b] + offset)
        ]
        return " ".join(map(str, ints))

    def _official_offset(self) -> int:
        if self.ops == NAO_WS_OPS:
            return 0
        if self.ops == NAO_OPS:
            return len(NAO_WS_OPS)  # the official code numbers the large ops after the small ones
        raise ParseError(
            f"the plain integer encoding is the official NAO code's and exists only for nao and nao-ws; "
            f"write {self.name} architectures as DARTS genotype strings"
        )

    def parse(self, text: str) -> Architecture:
        """Read a DARTS genotype string (``Genotype(...)`` wrapper optional; lists, tuples or
        ``range(a, b)`` for concat; concat may be omitted) or, for ``nao``/``nao-ws``, the official
        integer encoding."""
        if not isinstance(text, str):
            raise ParseError(f"expected an architecture string, got {type(text).__name__}")
        s = text.strip()
        if not s:
            raise ParseError(f"empty {self.name} architecture string")
        if len(s) > _MAX_TEXT_CHARS:
            raise ParseError(f"{self.name} architecture string of {len(s)} characters is too long to be a genotype")
        if _OFFICIAL_RE.fullmatch(s):
            return self._parse_official(s)
        fields = _read_genotype(s)
        cells = []
        for cell in CELL_NAMES:
            if cell not in fields:
                raise ParseError(f"genotype has no {cell!r} cell: {_clip(s)}")
            cells.append(self._read_pairs(fields[cell], cell))
        arch = self.from_cells(*cells)
        for cell, nodes in zip(CELL_NAMES, cells):
            if f"{cell}_concat" in fields:
                self._check_concat(fields[f"{cell}_concat"], nodes, cell)
        return arch

    def _parse_official(self, s: str) -> Architecture:
        offset = self._official_offset()
        words = s.split()
        if len(words) != self.length:
            raise ParseError(
                f"official {self.name} encoding needs {self.length} integers (x_id x_op y_id y_op per node, "
                f"{self.num_nodes} nodes per cell, normal then reduce), got {len(words)}"
            )
        if any(len(w) > 6 for w in words):
            raise ParseError(f"integer too large in official {self.name} encoding: {_clip(s)}")
        ints = [int(w) for w in words]
        cells: list[list[Node]] = [[], []]
        for k in range(0, self.length, 4):
            cell = k // (4 * self.num_nodes)
            ops = []
            for j in (k + 1, k + 3):
                op_id = ints[j] - offset
                if not 0 <= op_id < len(self.ops):
                    raise ParseError(
                        f"integer {j} ({ints[j]}) is not an official {self.name} op id "
                        f"{offset}..{offset + len(self.ops) - 1} ({', '.join(self.ops)})"
                    )
                ops.append(self.ops[op_id])
            cells[cell].append(Node(ints[k], ops[0], ints[k + 2], ops[1]))
        return self.from_cells(*cells)

    def _read_pairs(self, value: Any, cell: str) -> list[Node]:
        want = 2 * self.num_nodes
        if not isinstance(value, list):
            raise ParseError(f"{cell!r} cell must be a list of (op, input) pairs, got {value!r}")
        if len(value) != want:
            raise ParseError(
                f"{cell!r} cell needs {want} (op, input) pairs (2 per node x {self.num_nodes} nodes), got {len(value)}"
            )
        branches = []
        for k, pair in enumerate(value):
            if not (
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], int)
            ):
                raise ParseError(f"pair {k} of {cell!r} cell must be (op name, input id), got {pair!r}")
            if pair[0] not in self._op_index:
                raise ParseError(
                    f"unknown op {pair[0]!r} in pair {k} of {cell!r} cell; valid ops for {self.name}: {', '.join(self.ops)}"
                )
            branches.append(pair)
        return [Node(a[1], a[0], b[1], b[0]) for a, b in zip(branches[::2], branches[1::2])]

    def _check_concat(self, value: Any, nodes: list[Node], cell: str) -> None:
        if not (isinstance(value, list) and all(isinstance(v, int) for v in value)):
            raise ParseError(f"{cell}_concat must be a list of node ids, got {value!r}")
        expected = self.concat(nodes)
        if len(set(value)) != len(value) or sorted(value) != expected:
            rule = (
                "the nodes no other node of the cell uses"
                if self.concat_rule == "unused"
                else f"all intermediate nodes 2..{self.num_nodes + 1}"
            )
            raise ParseError(f"{cell}_concat={value} disagrees with {self.name}'s rule ({rule}): expected {expected}")


# -- genotype text reader ------------------------------------------------------------------
def _clip(s: str, n: int = 80) -> str:
    return repr(s if len(s) <= n else s[:n] + "...")


def _read_genotype(s: str) -> dict[str, Any]:
    """Fields of a genotype string as plain Python values (lists for tuples/ranges).

    Uses Python's parser on the text but evaluates nothing: only literals, names (taken as
    unquoted op names), ``range(...)`` and a ``Genotype(...)``/dict wrapper are understood.
    """
    tree = _parse_expr(s)
    if tree is None:  # maybe the bare body of a Genotype(...) call: "normal=[...], ..."
        tree = _parse_expr(f"Genotype({s})")
    if tree is None:
        raise ParseError(f"not a genotype string (Python-like syntax error): {_clip(s)}")
    body = tree.body
    if isinstance(body, ast.Call) and _call_name(body) == "Genotype":
        return _genotype_args(body.args, body.keywords)
    if isinstance(body, ast.Tuple):  # bare positional fields: [...], [2, 3], [...], [2, 3]
        return _genotype_args(body.elts, [])
    if isinstance(body, ast.Dict):
        fields: dict[str, Any] = {}
        for k, v in zip(body.keys, body.values):
            key = _literal(k) if k is not None else None
            if key not in _GENOTYPE_FIELDS or key in fields:
                raise ParseError(
                    f"genotype dict key {key!r} is unknown or repeated; keys: {', '.join(_GENOTYPE_FIELDS)}"
                )
            fields[key] = _literal(v)
        return fields
    raise ParseError(
        f"expected Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...]), got {_clip(s)}"
    )


def _parse_expr(s: str) -> ast.Expression | None:
    try:
        return ast.parse(s, mode="eval")
    # The parser signals absurd nesting with RecursionError/MemoryError rather than SyntaxError.
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _genotype_args(args: list[ast.expr], keywords: list[ast.keyword]) -> dict[str, Any]:
    if len(args) not in (0, 2, 4):
        raise ParseError(
            f"Genotype takes (normal, reduce) or (normal, normal_concat, reduce, reduce_concat), got {len(args)} fields"
        )
    names = ("normal", "reduce") if len(args) == 2 else _GENOTYPE_FIELDS
    fields = {name: _literal(a) for name, a in zip(names, args)}
    for kw in keywords:
        if kw.arg not in _GENOTYPE_FIELDS or kw.arg in fields:
            raise ParseError(f"Genotype field {kw.arg!r} is unknown or repeated; fields: {', '.join(_GENOTYPE_FIELDS)}")
        fields[kw.arg] = _literal(kw.value)
    return fields


@SPACES.register("nao-ws")
class NaoWSSpace(ConvCellSpace):
    """NAO-WS's conv cell: 5 nodes, 5 ops (sep 3x3/5x5, avg/max pool 3x3, identity); 40 tokens."""

    def __init__(self) -> None:
        super().__init__("nao-ws", NAO_WS_OPS, 5, "unused")


@SPACES.register("nao")
class NaoSpace(ConvCellSpace):
    """The original NAO search's conv cell: 5 nodes, 11 ops; 40 tokens."""

    def __init__(self) -> None:
        super().__init__("nao", NAO_OPS, 5, "unused")


@SPACES.register("darts")
class DartsSpace(ConvCellSpace):
    """The DARTS cell: 4 nodes, 7 ops (no 'none'), output = all 4 nodes; 32 tokens."""

    def __init__(self) -> None:
        super().__init__("darts", DARTS_OPS, 4, "all")


__all__ = [
    "CELL_NAMES",
    "DARTS_OPS",
    "NAO_OPS",
    "NAO_WS_OPS",
    "ConvCellSpace",
    "DartsSpace",
    "NaoSpace",
    "NaoWSSpace",
    "Node",
    "Slot",
]
