"""Hypothesis fuzzing of every registered space's parser: text either parses to a valid
architecture or raises ParseError/OutOfSpaceError, never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nao.errors import OutOfSpaceError, ParseError
from nao.spaces import get_space, space_names

SPACE_NAMES = space_names()
# Modest counts keep the suite fast; database=None keeps .hypothesis/ out of the checkout.
FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_clean_error(space, text: str) -> None:
    try:
        arch = space.parse(text)
    except (ParseError, OutOfSpaceError) as e:
        assert str(e), "errors must carry a message"
        return
    space.check(arch)


# Characters genotype and nb201 strings are made of, so random text reaches deep parser paths.
_ALPHABET = st.sampled_from(list("()[]{},.'\"~|+-_=: \n\t0123456789") + ["sep_conv_3x3", "none", "range", "Genotype"])
_NEAR_TEXT = st.lists(_ALPHABET, max_size=60).map("".join)


@pytest.mark.parametrize("name", SPACE_NAMES)
@FUZZ
@given(text=st.text(max_size=200))
def test_arbitrary_text(name, text):
    _parse_or_clean_error(get_space(name), text)


@pytest.mark.parametrize("name", SPACE_NAMES)
@FUZZ
@given(text=_NEAR_TEXT)
def test_grammar_alphabet_text(name, text):
    _parse_or_clean_error(get_space(name), text)


@st.composite
def _edited_format(draw, name: str) -> str:
    """A valid string for ``name`` with a few random character edits."""
    space = get_space(name)
    text = space.format(space.sample(np.random.default_rng(draw(st.integers(0, 2**32 - 1)))))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "replace"]))
        ch = draw(st.sampled_from(list("0123456789()[],'_x -") + ["9" * 5000]))
        if edit == "delete":
            text = text[:i] + text[i + 1 :]
        elif edit == "insert":
            text = text[:i] + ch + text[i:]
        else:
            text = text[:i] + ch + text[i + 1 :]
    return text


@pytest.mark.parametrize("name", SPACE_NAMES)
@FUZZ
@given(data=st.data())
def test_edited_valid_strings(name, data):
    _parse_or_clean_error(get_space(name), data.draw(_edited_format(name)))


@pytest.mark.parametrize("name", SPACE_NAMES)
@settings(max_examples=30, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_round_trip_of_samples(name, seed):
    space = get_space(name)
    arch = space.sample(np.random.default_rng(seed))
    assert space.parse(space.format(arch)) == arch
    canon = space.canonical(arch)
    assert space.parse(space.format(canon)) == canon


@FUZZ
@given(
    ops=st.lists(
        st.sampled_from(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "conv"]),
        min_size=6,
        max_size=6,
    ),
    srcs=st.lists(st.sampled_from(["0", "1", "2", "3", "", "01", "٣", "0\n", "9" * 5000]), min_size=6, max_size=6),
)
def test_nb201_structured_fuzz(ops, srcs):
    space = get_space("nb201")
    edges = [f"{o}~{s}" for o, s in zip(ops, srcs)]
    text = f"|{edges[0]}|+|{edges[1]}|{edges[2]}|+|{edges[3]}|{edges[4]}|{edges[5]}|"
    expect_ok = all(s == str(k) for s, k in zip(srcs, (0, 0, 1, 0, 1, 2))) and "conv" not in ops
    if expect_ok:
        arch = space.parse(text)
        assert space.format(arch) == text
    else:
        with pytest.raises(ParseError):
            space.parse(text)
