"""The recurrent cell spaces (rnn, rnn-darts, rnn-enas): grammar, published cells, symmetry, text."""

from __future__ import annotations

import numpy as np
import pytest

from nao.errors import ConfigError, OutOfSpaceError, ParseError
from nao.spaces import get_space, space_names
from nao.spaces.rnn import ACTIVATIONS, find_named


@pytest.fixture(scope="module")
def space():
    return get_space("rnn")


def test_registered_and_sizes():
    assert {"rnn", "rnn-darts", "rnn-enas"} <= set(space_names())
    rnn = get_space("rnn")
    assert (rnn.steps, rnn.length, rnn.vocab_size, rnn.output) == (11, 22, 15, "mean")
    assert get_space("rnn-darts").length == 16 and get_space("rnn-enas").output == "loose_ends"
    # 11! input choices x 4^11 activations
    assert rnn.size() == 39916800 * 4**11


def test_allowed_tokens_mask_inputs_and_activations(space):
    assert space.allowed_tokens(0).tolist() == [0]
    assert space.allowed_tokens(4).tolist() == [0, 1, 2]  # node 3 reads nodes 0..2
    acts = space.allowed_tokens(1).tolist()
    assert [space.token_name(t) for t in acts] == list(ACTIVATIONS)
    assert space.act_token("relu") == acts[1]
    with pytest.raises(OutOfSpaceError):
        space.allowed_tokens(22)


def test_validate_names_node_and_position(space):
    tokens = list(space.named("NAO").tokens)
    bad = tokens.copy()
    bad[4] = 3  # node 3 reading node 3
    with pytest.raises(OutOfSpaceError, match=r"node 3 input 3 at position 4 is not an earlier node \(0\.\.2\)"):
        space.make(bad)
    bad = tokens.copy()
    bad[5] = 2  # a node id at an activation position
    with pytest.raises(OutOfSpaceError, match="node 3 activation token 2 at position 5"):
        space.make(bad)


def test_nao_cell_is_the_official_fixed_arc(space):
    # renqianluo/NAO NAO/rnn/train_ptb_final.sh, read as NAO/rnn/utils.py parse_arch does.
    fixed_arc = "0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2"
    act = {0: "tanh", 1: "relu", 2: "identity", 3: "sigmoid"}
    ints = list(map(int, fixed_arc.split()))
    nodes = [(act[ints[2 * i + 1]], ints[2 * i]) for i in range(11)]
    assert space.encode(nodes) == space.named("NAO")
    assert space.decode(space.named("NAO")).concat == tuple(range(1, 12))


def test_darts_v2_and_enas_published_strings():
    darts = get_space("rnn-darts")
    text = ("Genotype(recurrent=[('relu', 0), ('relu', 1), ('tanh', 2), ('relu', 3), ('relu', 4), "
            "('identity', 1), ('relu', 5), ('relu', 1)], concat=range(1, 9))")
    assert darts.format(darts.named("darts_v2")) == text
    enas = get_space("rnn-enas")
    assert list(enas.decode(enas.named("ENAS")).concat) == [2, 5, 6, 9, 10, 11]  # the published loose ends
    sp, arch = find_named("enas")
    assert sp.name == "rnn-enas" and arch == enas.named("ENAS")
    with pytest.raises(ConfigError, match="known: NAO"):
        find_named("nope")


def test_parse_forms_and_errors(space):
    nao = space.named("NAO")
    text = space.format(nao)
    assert space.parse(text) == nao
    assert space.parse(text.replace(", concat=range(1, 12)", "")) == nao  # concat optional
    bare = text[len("Genotype(recurrent="): text.index(", concat")]
    assert space.parse(bare) == nao
    assert space.parse(text.replace("'", "")) == nao  # unquoted activation names
    with pytest.raises(ParseError, match="disagrees with rnn's output rule"):
        space.parse(text.replace("range(1, 12)", "[1, 2]"))
    with pytest.raises(ParseError, match="unknown activation 'gelu' at node 1"):
        space.parse(text.replace("'relu'", "'gelu'", 1))
    with pytest.raises(ParseError, match="node 1 input 1 is not an earlier node"):
        space.parse(text.replace("('relu', 0)", "('relu', 1)", 1))
    with pytest.raises(ParseError, match="needs 11"):
        space.parse("[('relu', 0)]")
    for junk in ("", "Genotype(", "Genotype(normal=[])", "foo(1)", "[" * 500):
        with pytest.raises(ParseError):
            space.parse(junk)


def test_loose_end_concat_checked_by_enas_space():
    enas = get_space("rnn-enas")
    text = enas.format(enas.named("ENAS"))
    assert "concat=[2, 5, 6, 9, 10, 11]" in text
    with pytest.raises(ParseError):
        enas.parse(text.replace("[2, 5, 6, 9, 10, 11]", "range(1, 12)"))


def test_isomorphic_cells_share_a_key():
    darts = get_space("rnn-darts")
    # Two children of node 0 listed in either order; their subtrees move with them.
    a = darts.encode([("tanh", 0), ("relu", 0), ("relu", 1), ("relu", 2), ("relu", 3), ("relu", 4), ("relu", 5), ("relu", 6)])
    b = darts.encode([("relu", 0), ("tanh", 0), ("relu", 2), ("relu", 1), ("relu", 3), ("relu", 4), ("relu", 5), ("relu", 6)])
    assert a != b and darts.key(a) == darts.key(b) and darts.canonical(a) == darts.canonical(b)
    c = darts.encode([("tanh", 0), ("relu", 0), ("relu", 2), ("relu", 2), ("relu", 3), ("relu", 4), ("relu", 5), ("relu", 6)])
    assert darts.key(c) != darts.key(a)  # a different tree


def test_augment_draws_several_encodings(space):
    rng = np.random.default_rng(0)
    nao = space.named("NAO")
    seen = {space.augment(nao, rng) for _ in range(30)}
    assert len(seen) > 5 and {space.key(s) for s in seen} == {space.key(nao)}
