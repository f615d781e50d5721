"""Tests specific to the NASNet/NAO-style conv cell spaces (nao-ws, nao, darts)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from nao.errors import OutOfSpaceError, ParseError
from nao.spaces import get_space
from nao.spaces.base import Architecture
from nao.spaces.cells import ConvCellSpace, Node

CELL_SPACES = ["nao-ws", "nao", "darts"]

# DARTS_V2 as published in the DARTS repository (quark0/darts, cnn/genotypes.py).
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
# NAONet-A in the official NAO code's encoding (renqianluo/NAO_pytorch, train_NAONet_A_36_cifar10.sh).
NAONET_A = "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7"


@pytest.fixture(params=CELL_SPACES)
def space(request) -> ConvCellSpace:
    return get_space(request.param)


def test_presets():
    ws, nao, darts = (get_space(n) for n in CELL_SPACES)
    assert ws.ops == ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
    assert nao.ops == (
        "identity", "conv_1x1", "conv_3x3", "conv_1x3_3x1", "conv_1x7_7x1", "max_pool_2x2",
        "max_pool_3x3", "max_pool_5x5", "avg_pool_2x2", "avg_pool_3x3", "avg_pool_5x5",
    )  # fmt: skip
    assert darts.ops == (
        "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
        "dil_conv_3x3", "dil_conv_5x5",
    )  # fmt: skip
    assert (ws.num_nodes, nao.num_nodes, darts.num_nodes) == (5, 5, 4)
    assert (ws.length, nao.length, darts.length) == (40, 40, 32)
    for s in (ws, nao, darts):
        assert isinstance(s, ConvCellSpace)


def test_grammar_per_position(space):
    B, K = space.num_nodes, len(space.ops)
    op_ids = {space.op_token(op) for op in space.ops}
    assert len(op_ids) == K
    for p in range(space.length):
        slot = space.slot(p)
        assert slot.cell == ("normal" if p < 4 * B else "reduce")
        assert slot.node == (p % (4 * B)) // 4
        allowed = set(space.allowed_tokens(p).tolist())
        if slot.kind == "input":
            assert allowed == {space.input_token(j) for j in range(slot.node + 2)}
        else:
            assert allowed == op_ids
    with pytest.raises(OutOfSpaceError):
        space.allowed_tokens(space.length)
    with pytest.raises(OutOfSpaceError):
        space.allowed_tokens(-1)


def test_every_allowed_token_is_valid(space):
    # For cell spaces positions are independent: any allowed token at any position stays valid.
    a = space.sample(np.random.default_rng(3))
    for p in range(space.length):
        for t in space.allowed_tokens(p):
            tokens = list(a.tokens)
            tokens[p] = int(t)
            space.validate(tokens)


def test_allowed_tokens_are_read_only(space):
    with pytest.raises(ValueError):
        space.allowed_tokens(0)[0] = 3


def test_size_matches_closed_form(space):
    B, K = space.num_nodes, len(space.ops)
    per_cell = math.prod(((i + 2) * K) ** 2 for i in range(B))
    assert space.size() == per_cell**2


def test_validate_messages(space):
    a = space.sample(np.random.default_rng(0))
    # node 3, input_b is position 4*3+2 of the normal cell; allowed ids 0..4.
    tokens = list(a.tokens)
    tokens[14] = 5 if space.num_nodes >= 5 else space.input_token(4)
    if space.num_nodes >= 5:
        with pytest.raises(OutOfSpaceError, match=re.escape("node 3 input 5 > 4 in 'normal' cell")):
            space.make(tokens)
    tokens = list(a.tokens)
    tokens[1] = 0  # a node id where an op belongs
    with pytest.raises(OutOfSpaceError, match="needs an op token"):
        space.make(tokens)
    tokens = list(a.tokens)
    tokens[4 * space.num_nodes] = space.op_token(space.ops[0])  # an op where a node id belongs
    with pytest.raises(OutOfSpaceError, match="reduce cell.*needs a node id"):
        space.make(tokens)
    with pytest.raises(OutOfSpaceError, match="not an integer"):
        space.make([0.5] + list(a.tokens[1:]))
    with pytest.raises(OutOfSpaceError, match=f"needs {space.length} tokens"):
        space.make(a.tokens[:-4])


def test_cells_round_trip_and_nodes(space):
    rng = np.random.default_rng(5)
    for _ in range(10):
        a = space.sample(rng)
        normal, reduce = space.cells(a)
        assert len(normal) == len(reduce) == space.num_nodes
        for i, n in enumerate(normal + reduce):
            assert isinstance(n, Node) and n.op_a in space.ops and n.op_b in space.ops
            assert 0 <= n.input_a <= i % space.num_nodes + 1 and 0 <= n.input_b <= i % space.num_nodes + 1
        assert space.from_cells(normal, reduce) == a


def test_from_cells_errors(space):
    normal, reduce = space.cells(space.sample(np.random.default_rng(0)))
    with pytest.raises(OutOfSpaceError, match="needs .* nodes"):
        space.from_cells(normal[:-1], reduce)
    bad = list(reduce)
    bad[1] = Node(3, space.ops[0], 0, space.ops[0])
    with pytest.raises(OutOfSpaceError, match=re.escape("node 1 input 3 > 2 in 'reduce' cell")):
        space.from_cells(normal, bad)
    bad[1] = Node(0, "conv_9x9", 0, space.ops[0])
    with pytest.raises(OutOfSpaceError, match="unknown op 'conv_9x9'.*" + re.escape(space.ops[-1])):
        space.from_cells(normal, bad)
    bad[1] = Node(-1, space.ops[0], 0, space.ops[0])
    with pytest.raises(OutOfSpaceError, match="< 0"):
        space.from_cells(normal, bad)


def test_concat_rules():
    nao, darts = get_space("nao"), get_space("darts")
    chain = [Node(0, "identity", 1, "identity")] + [Node(i + 1, "conv_1x1", i + 1, "conv_1x1") for i in range(1, 5)]
    assert nao.concat(chain) == [6]  # every node feeds the next: only the last one is unused
    fan = [Node(0, "identity", 0, "identity") for _ in range(5)]
    assert nao.concat(fan) == [1, 2, 3, 4, 5, 6]  # NAO includes an unused cell input (id 1)
    d_nodes = [Node(0, "skip_connect", 1, "skip_connect")] * 4
    assert darts.concat(d_nodes) == [2, 3, 4, 5]


def test_darts_v2_round_trip():
    darts = get_space("darts")
    a = darts.parse(DARTS_V2)
    normal, reduce = darts.cells(a)
    assert normal[0] == Node(0, "sep_conv_3x3", 1, "sep_conv_3x3")
    assert normal[3] == Node(0, "skip_connect", 2, "dil_conv_3x3")
    assert reduce[1] == Node(2, "skip_connect", 1, "max_pool_3x3")
    assert darts.format(a) == DARTS_V2  # byte-identical to the published repr
    assert darts.parse(darts.format(a)) == a
    v1 = darts.parse(DARTS_V1)
    assert darts.format(v1) == DARTS_V1 and v1 != a


@pytest.mark.parametrize(
    "variant",
    [
        DARTS_V2.replace("'", '"'),
        DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)"),
        DARTS_V2.replace("[2, 3, 4, 5]", "[5, 4, 3, 2]"),
        DARTS_V2.replace(", ", ",\n    ").replace("(normal", "(\n  normal"),
        DARTS_V2[len("Genotype(") : -1],  # wrapper omitted
        "genotypes." + DARTS_V2,
        DARTS_V2.replace("'", ""),  # unquoted op names
        DARTS_V2.replace(", normal_concat=[2, 3, 4, 5]", "").replace(", reduce_concat=[2, 3, 4, 5]", ""),
        DARTS_V2.replace("normal=", "")
        .replace("normal_concat=", "")
        .replace("reduce=", "")
        .replace("reduce_concat=", ""),
        "{'normal': "
        + DARTS_V2.split("normal=")[1].split(", normal_concat")[0]
        + ", 'reduce': "
        + DARTS_V2.split("reduce=")[1].split(", reduce_concat")[0]
        + "}",
    ],
)
def test_darts_parse_tolerates_variants(variant):
    darts = get_space("darts")
    assert darts.parse(variant) == darts.parse(DARTS_V2)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (DARTS_V2.replace("dil_conv_3x3", "conv_9x9"), r"unknown op 'conv_9x9'.*valid ops.*dil_conv_5x5"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), r"node 3 input 5 > 4 in 'normal' cell"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)]", "]"), r"needs 8 \(op, input\) pairs.*got 7"),
        (DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4]"), r"normal_concat.*disagrees"),
        (DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[2, 2, 3, 4, 5]"), r"reduce_concat.*disagrees"),
        (DARTS_V2.replace("('dil_conv_3x3', 2)", "(2, 'dil_conv_3x3')"), r"must be \(op name, input id\)"),
        (DARTS_V2.replace("reduce_concat", "extra"), r"unknown or repeated"),
        (DARTS_V2.replace("reduce=", "reduce_concat=[2], normal="), r"unknown or repeated|repeated"),
        ("Genotype(normal=[('sep_conv_3x3', 0)] * 8)", r"cannot read BinOp"),
        ("hello world", r"syntax"),
        ("", r"empty"),
        ("42", r"needs .* integers|only for nao|exists only"),
        ("x" * 10_000, r"too long"),
    ],
)
def test_darts_parse_rejects(text, pattern):
    with pytest.raises((ParseError, OutOfSpaceError), match=pattern):
        get_space("darts").parse(text)


def test_nao_concat_disagreement_rejected():
    nao = get_space("nao")
    text = nao.format(nao.parse(NAONET_A))
    assert "normal_concat=[3, 5, 6]" in text
    with pytest.raises(
        ParseError, match=r"normal_concat=\[2, 3, 4, 5, 6\] disagrees.*nodes no other node.*\[3, 5, 6\]"
    ):
        nao.parse(text.replace("normal_concat=[3, 5, 6]", "normal_concat=[2, 3, 4, 5, 6]"))


def test_naonet_a_official_encoding():
    nao = get_space("nao")
    a = nao.parse(NAONET_A)
    normal, reduce = nao.cells(a)
    # Official op ids 5..15: identity, conv 1x1, conv 3x3, conv 1x3+3x1, conv 1x7+7x1,
    # max pool 2/3/5, avg pool 2/3/5.
    assert normal[0] == Node(0, "conv_3x3", 1, "avg_pool_5x5")
    assert normal[1] == Node(2, "conv_1x3_3x1", 1, "conv_3x3")
    assert normal[4] == Node(1, "identity", 0, "conv_3x3")
    assert reduce[0] == Node(0, "conv_3x3", 1, "avg_pool_2x2")
    assert reduce[2] == Node(0, "conv_1x7_7x1", 1, "max_pool_2x2")
    assert nao.concat(normal) == [3, 5, 6] and nao.concat(reduce) == [3, 4, 5, 6]
    assert nao.format_official(a) == NAONET_A
    assert nao.parse(nao.format(a)) == a
    assert nao.parse("\n" + NAONET_A.replace(" ", "  \t") + "\n") == a


def test_official_encoding_nao_ws_and_errors():
    ws = get_space("nao-ws")
    a = ws.sample(np.random.default_rng(11))
    text = ws.format_official(a)
    assert all(0 <= int(v) <= 5 for v in text.split())
    assert ws.parse(text) == a
    with pytest.raises(ParseError, match="not an official nao-ws op id 0..4"):
        ws.parse(NAONET_A)  # op ids 5..15 belong to the large space
    words = NAONET_A.split()
    words[1] = "0"  # 0 is sep_conv_3x3 in the official numbering, not one of nao's ops
    with pytest.raises(ParseError, match="not an official nao op id 5..15"):
        get_space("nao").parse(" ".join(words))
    with pytest.raises(ParseError, match="needs 40 integers"):
        ws.parse(" ".join(text.split()[:-1]))
    with pytest.raises(ParseError, match="exists only for nao and nao-ws"):
        get_space("darts").parse(" ".join(["0"] * 32))
    with pytest.raises(ParseError, match="exists only for nao and nao-ws"):
        get_space("darts").format_official(get_space("darts").sample(np.random.default_rng(0)))
    bad_input = NAONET_A.split()
    bad_input[0] = "2"  # node 0 may only read ids 0..1
    with pytest.raises(OutOfSpaceError, match="node 0 input 2 > 1 in 'normal' cell"):
        get_space("nao").parse(" ".join(bad_input))


def test_branch_swap_shares_key(space):
    rng = np.random.default_rng(7)
    a = space.sample(rng)
    normal, reduce = space.cells(a)
    swapped = [Node(n.input_b, n.op_b, n.input_a, n.op_a) for n in normal]
    b = space.from_cells(swapped, reduce)
    assert space.key(a) == space.key(b)
    assert space.canonical(a) == space.canonical(b)
    # Changing one op changes the key.
    other = [n for n in space.ops if n != normal[0].op_a][0]
    c = space.from_cells([Node(normal[0].input_a, other, normal[0].input_b, normal[0].op_b)] + normal[1:], reduce)
    if normal[0].op_b != other or normal[0].input_a != normal[0].input_b:
        assert space.key(c) != space.key(a)


def test_canonical_orders_branches(space):
    a = space.sample(np.random.default_rng(2))
    t = space.canonical(a).tokens
    for i in range(0, space.length, 4):
        assert tuple(t[i : i + 2]) <= tuple(t[i + 2 : i + 4])


def test_augment_swaps_and_keeps_key(space):
    rng = np.random.default_rng(0)
    a = space.sample(rng)
    variants = {space.augment(a, rng) for _ in range(30)}
    assert len(variants) > 1  # it really swaps branches
    assert {space.key(v) for v in variants} == {space.key(a)}


def test_neighbours_are_single_changes(space):
    a = space.sample(np.random.default_rng(4))
    nbrs = space.neighbours(a)
    kinds = set()
    for b in nbrs:
        diff = [p for p in range(space.length) if a.tokens[p] != b.tokens[p]]
        assert len(diff) == 1
        kinds.add(space.slot(diff[0]).kind)
    assert kinds == {"input", "op"}
    # Upper bound: every alternative token at every position.
    bound = sum(len(space.allowed_tokens(p)) - 1 for p in range(space.length))
    assert 0 < len(nbrs) <= bound


def test_sampling_is_uniform_over_grammar():
    ws = get_space("nao-ws")
    rng = np.random.default_rng(0)
    n = 3000
    archs = [ws.sample(rng) for _ in range(n)]
    op_counts = np.bincount([a.tokens[1] for a in archs], minlength=ws.vocab_size)[list(ws.allowed_tokens(1))]
    in_counts = np.bincount([a.tokens[18] for a in archs], minlength=ws.vocab_size)[list(ws.allowed_tokens(18))]
    for counts in (op_counts, in_counts):
        expected = n / len(counts)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 25, counts  # df <= 5; p < 1e-3 region


def test_token_names(space):
    assert space.token_name(space.input_token(0)) == "in0"
    assert [space.token_name(space.op_token(op)) for op in space.ops] == list(space.ops)
    with pytest.raises(OutOfSpaceError):
        space.token_name(space.vocab_size)
    with pytest.raises(OutOfSpaceError):
        space.op_token("nope")


def test_architecture_of_other_space_rejected():
    a = get_space("nao").parse(NAONET_A)
    with pytest.raises(OutOfSpaceError):
        get_space("nao-ws").cells(a)
    with pytest.raises(OutOfSpaceError):
        get_space("nao-ws").format(Architecture("nao-ws", a.tokens))  # op tokens beyond nao-ws' vocabulary
