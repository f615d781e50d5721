"""Contract tests run over every registered search space (a new space is covered the day it registers)."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from nao.errors import NaoError, OutOfSpaceError
from nao.spaces import get_space, space_names
from nao.spaces.base import Architecture, SearchSpace

SPACE_NAMES = space_names()
N_SAMPLES = 12


@pytest.fixture(params=SPACE_NAMES)
def space(request) -> SearchSpace:
    return get_space(request.param)


def _samples(space: SearchSpace, n: int = N_SAMPLES, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_registered_spaces_include_the_core_ones():
    assert {"nb201", "nao", "nao-ws", "darts"} <= set(SPACE_NAMES)


def test_basic_attributes(space):
    assert space.name in SPACE_NAMES and get_space(space.name).name == space.name
    assert space.length > 0 and space.vocab_size > 0
    size = space.size()
    assert size is None or (isinstance(size, int) and size > 0)
    for t in range(space.vocab_size):
        assert isinstance(space.token_name(t), str) and space.token_name(t)


def test_samples_are_valid_and_seeded(space):
    archs = _samples(space)
    for a in archs:
        assert a.space == space.name and len(a.tokens) == space.length
        space.check(a)
        assert space.is_valid(a.tokens)
    assert archs == _samples(space)  # same seed, same draws
    assert len({space.key(a) for a in archs}) > 1


def test_format_parse_round_trip(space):
    for a in _samples(space):
        text = space.format(a)
        assert isinstance(text, str)
        assert space.parse(text) == a
        assert space.parse("  " + text + "\n") == a


def test_canonical_and_augment_preserve_key(space):
    rng = np.random.default_rng(1)
    for a in _samples(space):
        c = space.canonical(a)
        space.check(c)
        assert space.key(c) == space.key(a)
        assert space.canonical(c) == c
        for _ in range(3):
            b = space.augment(a, rng)
            space.check(b)
            assert space.key(b) == space.key(a)
        hash(space.key(a))


def test_neighbours_valid_distinct_and_different(space):
    for a in _samples(space, n=4):
        nbrs = space.neighbours(a)
        assert nbrs, "every architecture should have at least one neighbour"
        keys = [space.key(b) for b in nbrs]
        assert len(set(keys)) == len(keys)
        assert space.key(a) not in keys
        for b in nbrs:
            space.check(b)
        m = space.mutate(a, np.random.default_rng(0))
        assert space.key(m) in set(keys)


def test_allowed_tokens_consistent_with_validate(space):
    archs = _samples(space, n=4)
    for i in range(space.length):
        allowed = np.asarray(space.allowed_tokens(i))
        assert allowed.ndim == 1 and len(allowed) > 0
        assert np.all(np.diff(allowed) > 0), "sorted and unique"
        assert allowed[0] >= 0 and allowed[-1] < space.vocab_size
        forbidden = sorted(set(range(space.vocab_size)) - set(allowed.tolist()))
        for a in archs:
            assert a.tokens[i] in allowed
            for t in forbidden[:4]:
                tokens = list(a.tokens)
                tokens[i] = t
                assert not space.is_valid(tokens)


def test_make_rejects_bad_tokens(space):
    a = _samples(space, n=1)[0]
    bad = [
        list(a.tokens[:-1]),
        list(a.tokens) + [a.tokens[-1]],
        [],
        [-1] + list(a.tokens[1:]),
        [space.vocab_size] + list(a.tokens[1:]),
        list(a.tokens[:-1]) + [10**9],
    ]
    for tokens in bad:
        with pytest.raises(OutOfSpaceError):
            space.make(tokens)
        assert not space.is_valid(tokens)
    assert issubclass(OutOfSpaceError, NaoError)


def test_check_rejects_other_space(space):
    a = _samples(space, n=1)[0]
    with pytest.raises(OutOfSpaceError):
        space.check(Architecture(space.name + "-other", a.tokens))


def test_architecture_value_semantics(space):
    a = _samples(space, n=1)[0]
    b = Architecture(a.space, list(a.tokens))
    c = Architecture(a.space, np.asarray(a.tokens))
    assert a == b == c and hash(a) == hash(b) == hash(c)
    assert {a: 1}[b] == 1 and len({a, b, c}) == 1
    assert all(type(t) is int for t in c.tokens)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tokens = ()  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a


def test_space_pickles(space):
    clone = pickle.loads(pickle.dumps(space))
    a = _samples(space, n=1)[0]
    assert clone.format(a) == space.format(a) and clone.key(a) == space.key(a)


def test_prune_is_a_valid_idempotent_projection(space):
    for a in _samples(space, 50):
        p = space.prune(a)
        assert space.is_valid(p.tokens) and p.space == a.space
        assert space.prune(p) == p


def test_sample_distinct_has_distinct_keys_outside_exclude(space):
    first = space.sample_distinct(np.random.default_rng(0), 10)
    assert len({space.key(a) for a in first}) == 10
    more = space.sample_distinct(np.random.default_rng(0), 10, exclude={space.key(a) for a in first})
    assert len(more) == 10 and not {space.key(a) for a in more} & {space.key(a) for a in first}
