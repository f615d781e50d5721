import re

import numpy as np
import pytest

from nao.errors import OutOfSpaceError, ParseError
from nao.spaces import Architecture, get_space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_parse_format_roundtrip_and_tokens():
    s = get_space("nb201")
    a = s.parse(BEST)
    assert a == Architecture("nb201", (3, 3, 3, 1, 3, 2))
    assert s.format(a) == BEST
    assert s.size() == 5**6


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown nb201 op 'conv'"),
        ("|none~0|+|none~0|none~1|", "3 '+'-separated nodes"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 edges"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "must be written"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "not of the form op~k"),
    ],
)
def test_parse_errors_name_the_problem(text, fragment):
    with pytest.raises(ParseError, match=re.escape(fragment)):
        get_space("nb201").parse(text)


def test_make_rejects_out_of_range_token():
    s = get_space("nb201")
    with pytest.raises(OutOfSpaceError, match="position 2"):
        s.make([0, 0, 7, 0, 0, 0])
    with pytest.raises(OutOfSpaceError, match="6 tokens"):
        s.make([0, 0])


def test_neighbours_are_single_changes():
    s = get_space("nb201")
    a = s.sample(np.random.default_rng(1))
    nbrs = s.neighbours(a)
    assert len(nbrs) == 6 * 4
    for n in nbrs:
        assert sum(x != y for x, y in zip(n.tokens, a.tokens)) == 1


def test_prune_removes_exactly_the_dead_edges():
    s = get_space("nb201")
    # node 2 feeds nothing (edge 3<-2 is none): both edges into it are dead; node 1 stays live via 3<-1
    a = s.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert s.format(s.prune(a)) == "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    # node 1 receives nothing (1<-0 is none): its outgoing edges carry zeros
    b = s.parse("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    assert s.format(s.prune(b)) == "|none~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    # a fully connected cell has nothing to prune and keeps its identity
    c = s.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert s.prune(c) is c


def test_prune_only_clears_edges_and_merges_equivalents():
    s = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = [s.sample(rng) for _ in range(2000)]
    pruned = {s.key(s.prune(a)) for a in archs}
    assert len(pruned) < len({s.key(a) for a in archs})  # equivalent cells merge
    # pruning never touches an edge on a live path: the live ops are kept as they were
    for a in archs:
        p = s.prune(a)
        assert all(pt in (0, at) for pt, at in zip(p.tokens, a.tokens))
