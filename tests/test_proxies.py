"""Zero-cost proxies against hand-computed values on tiny networks; aggregate, sources, proxy tables.

Every reference below is computed independently of ``nao.proxies.measures`` (numpy, or explicit autograd),
so a proxy that drifts from its definition fails here. Networks are tiny; the few NB201 networks built are
either the reduced skeleton (``channels=4, cells_per_stage=1``) or scored on 8x8 inputs.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from contextlib import contextmanager
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nao.errors import BenchmarkFileError, ConfigError, NaoError
from nao.nn.nb201 import NB201Network
from nao.proxies import table as table_mod
from nao.proxies.aggregate import AGGREGATE_PROXIES, aggregate, columns, quantile_features
from nao.proxies.measures import (
    FLOOR,
    PROXIES,
    ProxyBatch,
    check_names,
    flops,
    grad_norm,
    jacov,
    naswot,
    params,
    score,
    snip,
    synflow,
    zico,
)
from nao.proxies.source import FunctionZeroCost, LiveZeroCost, TableZeroCost
from nao.proxies.table import (
    ProxyTable,
    ScoringSettings,
    distinct_cells,
    partial_path,
    score_cell,
    score_table,
    write_proxy_file,
)
from nao.spaces import get_space
from nao.strategies import make_strategy

NONE_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
# DEAD_END prunes to SKIP_ONLY (node 1 and 2 never reach the output): two strings, one network.
DEAD_END = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
SKIP_ONLY = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
OTHER = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


@contextmanager
def _seeded(seed: int):
    """Seed torch's global RNG for a block (default layer initialisers), restoring it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _set(layer: nn.Module, weight, bias=None) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


# -- params / flops ------------------------------------------------------------------------------------------------
def _conv_net() -> nn.Module:
    with _seeded(0):
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, groups=2, bias=False),
                             nn.ReLU(), nn.Flatten(), nn.Linear(6 * 3 * 3, 5))


def test_params_and_flops_by_hand():
    net = _conv_net()
    batch = ProxyBatch(torch.randn(4, 3, 5, 5, generator=_gen()), torch.arange(4) % 5)
    # conv1 4*3*3*3 + 4 bias; grouped conv2 6*(4/2)*3*3, no bias; linear 54*5 + 5
    assert params(net, batch) * 1e6 == pytest.approx(108 + 4 + 108 + 275, abs=1e-6)
    # MACs for ONE input: conv1 out 4x5x5=100 elements x 3*3*3; conv2 out 6x3x3=54 x (4/2)*3*3; linear 54*5
    assert flops(net, batch) * 1e6 == pytest.approx(100 * 27 + 54 * 18 + 54 * 5, abs=1e-6)
    net[-1].bias.requires_grad_(False)  # frozen parameters are not trainable parameters
    assert params(net, batch) * 1e6 == pytest.approx(495 - 5, abs=1e-6)
    # the batch size does not matter to flops (one input)
    assert flops(net, ProxyBatch(batch.inputs[:1], batch.targets[:1])) == flops(net, batch)


# -- synflow -------------------------------------------------------------------------------------------------------
def test_synflow_hand_formula_removes_batchnorm_and_leaves_weights_alone():
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    _set(net[0], [[0.5, -1.0, 2.0], [-0.25, 0.75, 1.5], [1.0, 1.0, -1.0], [-2.0, 0.5, 0.1]])
    _set(net[3], [[1.0, -0.5, 0.25, -2.0], [-0.3, 0.6, -0.9, 1.2]])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = ProxyBatch(torch.randn(5, 3, generator=_gen()), torch.arange(5) % 2)

    a1, a2 = np.abs(_np(net[0].weight)), np.abs(_np(net[3].weight))
    x = np.ones(3)
    h = a1 @ x  # positive weights and input: every ReLU passes, BN is gone
    d_a2 = np.outer(np.ones(2), h)  # dR/dW2[k, j] = h_j for R = sum(W2 h)
    d_a1 = np.outer(a2.T @ np.ones(2), x)  # dR/dW1[j, i] = (sum_k W2[k, j]) x_i
    expected = float((a2 * d_a2).sum() + (a1 * d_a1).sum())
    assert expected == pytest.approx(2 * np.ones(2) @ a2 @ a1 @ x)  # each layer's saliency sums to R

    got = score(net, batch, ["synflow"])["synflow"]
    assert got == pytest.approx(expected, rel=1e-12)  # float64 copy
    assert synflow(net, batch) == got
    assert isinstance(net[1], nn.BatchNorm1d) and net[0].weight.dtype == torch.float32
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k  # signs kept, nothing scaled, no running-stat update
    assert all(p.grad is None for p in net.parameters())


# -- naswot --------------------------------------------------------------------------------------------------------
def _naswot_net() -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    _set(net[0], [[1, 0], [0, 1], [1, 1]], [0, 0, 0.5])
    _set(net[2], [[1, 0, 0], [0, -1, 1]], [-0.5, 0.25])
    _set(net[4], [[1, 2], [-1, 0.5]], [0, 0])
    return net


NASWOT_X = [[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [2.0, -3.0]]


def test_naswot_matches_the_hand_computed_code_kernel():
    net = _naswot_net()
    x = np.array(NASWOT_X)
    # Codes by hand. Layer 1 pre-activations (x1, x2, x1+x2+.5): 111, 101, 011, 000, 100.
    # Layer 2 (h1 - .5, -h2 + h3 + .25): 11, 11, 00, 01, 11.
    codes = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 1, 1], [0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 1, 1]], float)
    # ... and by a numpy forward pass of the same weights
    w1, b1, w2, b2 = (_np(t) for t in (net[0].weight, net[0].bias, net[2].weight, net[2].bias))
    z1 = x @ w1.T + b1
    z2 = np.maximum(z1, 0) @ w2.T + b2
    assert np.array_equal(np.hstack([z1 > 0, z2 > 0]).astype(float), codes)
    kernel = sum(c @ c.T + (1 - c) @ (1 - c).T for c in (codes[:, :3], codes[:, 3:]))
    hamming = np.array([[0, 1, 3, 4, 2], [1, 0, 4, 3, 1], [3, 4, 0, 3, 5], [4, 3, 3, 0, 2], [2, 1, 5, 2, 0]])
    assert np.array_equal(kernel, 5 - hamming)  # K counts agreeing units
    sign, logdet = np.linalg.slogdet(kernel)
    assert sign > 0
    batch = ProxyBatch(torch.tensor(NASWOT_X), torch.tensor([0, 1, 0, 1, 0]))
    assert naswot(net, batch) == pytest.approx(logdet, rel=1e-10)
    assert score(net, batch, ["naswot"])["naswot"] == pytest.approx(logdet, rel=1e-10)


def test_naswot_of_a_repeated_example_is_the_floor():
    net = _naswot_net()
    x = torch.tensor([NASWOT_X[0], NASWOT_X[1], NASWOT_X[0]])  # two identical codes: K is singular
    assert naswot(net, ProxyBatch(x, torch.tensor([0, 1, 0]))) == FLOOR


# -- jacov ---------------------------------------------------------------------------------------------------------
def test_jacov_matches_a_numpy_reimplementation():
    with _seeded(1):
        net = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(5, 10, generator=_gen(2))
    batch = ProxyBatch(x, torch.tensor([0, 1, 2, 0, 1]))
    w1, b1, w2 = _np(net[0].weight), _np(net[0].bias), _np(net[2].weight)
    mask = (_np(x) @ w1.T + b1) > 0  # (B, 6)
    jac = (mask * (w2.T @ np.ones(3))) @ w1  # d(sum of outputs)/dx per example, (B, 10)
    eig = np.clip(np.linalg.eigvalsh(np.corrcoef(jac)), 0, None)
    k = 1e-5
    expected = float(-(np.log(eig + k) + 1 / (eig + k)).sum())
    assert jacov(net, batch) == pytest.approx(expected, rel=1e-4)
    assert score(net, batch, ["naswot", "jacov"])["jacov"] == pytest.approx(expected, rel=1e-4)  # shared pass


# -- snip / grad_norm / zico ---------------------------------------------------------------------------------------
def _grad_setup():
    with _seeded(3):
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    with torch.no_grad():
        net[0].bias[1] = -100.0  # channel 1 is dead: its conv weights and linear columns get zero gradient
    # 7 examples: halves of 3 and 4, so the mean of the halves' gradients is not the full batch's gradient
    batch = ProxyBatch(torch.randn(7, 3, 4, 4, generator=_gen(4)), torch.tensor([0, 1, 2, 0, 1, 2, 1]))
    layers = [net[0], net[3]]
    halves = []
    for lo, hi in ((0, 3), (3, 7)):
        loss = F.cross_entropy(net(batch.inputs[lo:hi]), batch.targets[lo:hi])
        halves.append([_np(g).ravel() for g in torch.autograd.grad(loss, [m.weight for m in layers])])
    weights = [_np(m.weight).ravel() for m in layers]
    return net, batch, weights, halves


def test_snip_and_grad_norm_use_the_mean_of_the_half_batch_gradients():
    net, batch, weights, halves = _grad_setup()
    mean = [(a + b) / 2 for a, b in zip(*halves)]
    exp_snip = sum(float(np.abs(w * g).sum()) for w, g in zip(weights, mean))
    exp_norm = sum(float(np.linalg.norm(g)) for g in mean)
    assert snip(net, batch) == pytest.approx(exp_snip, rel=1e-5)
    assert grad_norm(net, batch) == pytest.approx(exp_norm, rel=1e-5)
    # the full-batch gradient is a different number here (7 = 3 + 4): the test tells the two apart
    full = torch.autograd.grad(F.cross_entropy(net(batch.inputs), batch.targets), [net[0].weight, net[3].weight])
    full_snip = sum(float(np.abs(w * _np(g).ravel()).sum()) for w, g in zip(weights, full))
    assert abs(full_snip - exp_snip) > 1e-3 * exp_snip
    assert all(p.grad is None for p in net.parameters())  # the shared passes clear what they accumulate


def test_zico_matches_a_numpy_reimplementation_and_skips_constant_weights():
    net, batch, _, halves = _grad_setup()
    expected = 0.0
    n_dead = 0
    for layer in zip(*halves):
        g = np.stack(layer)  # (2 halves, weights)
        std = g.std(0)  # population std (ddof=0)
        live = std > 0
        n_dead += int((~live).sum())
        ratio = float((np.abs(g).mean(0)[live] / std[live]).sum())
        expected += math.log(ratio) if ratio > 0 else 0.0
    assert n_dead >= 3 * 3 * 3 + 4  # the dead channel's 27 conv weights and its 4 linear columns
    got = zico(net, batch)
    assert got != FLOOR and math.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-5)


def test_score_equals_each_proxy_alone_and_clears_gradients():
    net, batch, _, _ = _grad_setup()
    alone = {n: fn(net, batch) for n, fn in PROXIES.items()}
    timings: dict[str, float] = {}
    together = score(net, batch, list(PROXIES), timings)
    assert list(together) == list(PROXIES) and set(timings) == set(PROXIES)
    for n in PROXIES:
        assert together[n] == pytest.approx(alone[n], rel=1e-6), n
    assert all(p.grad is None for p in net.parameters())


def test_gradient_proxies_need_four_examples_and_names_are_checked():
    net, batch, _, _ = _grad_setup()
    small = ProxyBatch(batch.inputs[:3], batch.targets[:3])
    for fn in (snip, grad_norm, zico):
        with pytest.raises(NaoError, match="at least 4 examples, got 3"):
            fn(net, small)
    with pytest.raises(NaoError, match="unknown zero-cost proxy 'foo'"):
        score(net, batch, ["naswot", "foo"])
    with pytest.raises(NaoError, match="no zero-cost proxy"):
        check_names([])
    assert check_names(["zico", "params", "zico"]) == ["zico", "params"]


# -- degenerate NB201 networks ---------------------------------------------------------------------------------------
def _small_nb201(space, text: str) -> nn.Module:
    return NB201Network(space, space.parse(text), num_classes=10, channels=4, cells_per_stage=1, generator=_gen())


def test_a_cell_of_none_edges_gets_finite_scores_and_the_floor(space):
    batch = ProxyBatch(torch.randn(8, 3, 8, 8, generator=_gen()), torch.arange(8) % 10)
    cut = score(_small_nb201(space, NONE_CELL), batch)
    real = score(_small_nb201(space, BEST), batch)
    assert all(math.isfinite(v) for v in cut.values()), cut
    assert all(math.isfinite(v) for v in real.values()), real
    assert cut["naswot"] == FLOOR and cut["jacov"] == FLOOR  # no signal reaches the output
    # every cell output is exactly zero, so every weight's gradient is zero too
    assert cut["synflow"] == 0.0 and cut["snip"] == 0.0 and cut["grad_norm"] == 0.0 and cut["zico"] == 0.0
    for name in ("naswot", "jacov"):
        assert FLOOR < real[name] and real[name] > FLOOR / 1e6, (name, real[name])
    for name in ("synflow", "snip", "grad_norm", "zico", "params", "flops"):
        assert real[name] > cut[name], name


# -- determinism, the skeleton ---------------------------------------------------------------------------------------
def test_score_cell_is_deterministic_per_seed(space):
    batch = ProxyBatch(torch.randn(8, 3, 8, 8, generator=_gen()), torch.arange(8) % 10)
    names = ("naswot", "snip", "synflow")
    a, _ = score_cell(space, space.parse(BEST), batch, names, 10, seed=0)
    b, _ = score_cell(space, space.parse(BEST), batch, names, 10, seed=0)
    c, _ = score_cell(space, space.parse(BEST), batch, names, 10, seed=1)
    assert a == b
    assert a["snip"] != c["snip"] and a["synflow"] != c["synflow"]


def test_nb201_network_parameters_match_the_table(nb201_path, space):
    with gzip.open(nb201_path, "rt", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [next(reader) for _ in range(6)]
    rows.append({"arch_str": BEST, "params_m": "1.0735"})  # the benchmark's best cell
    for row in rows:
        net = NB201Network(space, space.parse(row["arch_str"]), num_classes=10)
        count = sum(p.numel() for p in net.parameters()) / 1e6
        assert count == pytest.approx(float(row["params_m"]), abs=5e-5 + 1e-9), row["arch_str"]
        assert params(net, None) == count


# -- aggregate, features -------------------------------------------------------------------------------------------
def test_aggregate_with_ties_by_hand():
    values = np.array([[1.0, 5.0], [1.0, 3.0], [2.0, 5.0], [0.0, 4.0]])
    # column 0 ranks: 2.5, 2.5, 4, 1 (tie shares the mean rank); column 1: 3.5, 1, 3.5, 2
    lg = math.log
    expected = [lg(2.5 / 4) + lg(3.5 / 4), lg(2.5 / 4) + lg(1 / 4), lg(4 / 4) + lg(3.5 / 4), lg(1 / 4) + lg(2 / 4)]
    assert aggregate(values) == pytest.approx(expected, rel=1e-12)
    assert aggregate(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        aggregate(np.ones(3))
    assert AGGREGATE_PROXIES == ("naswot", "jacov", "zico", "synflow", "flops")
    assert columns(["flops", "x", "naswot"], ["naswot", "flops"]) == [2, 0]
    with pytest.raises(KeyError, match="zico"):
        columns(["naswot"], ["naswot", "zico"])


def test_quantile_features_by_hand():
    reference = np.array([[1.0, 10.0], [2.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    values = np.array([[2.0, 5.0], [0.0, 40.0], [5.0, 25.0], [1.0, 10.0]])
    # column 0: 2 sits between ranks 1 and 3 of 4 -> (1+3)/2/4; 0 below all; 5 above all; 1 -> (0+1)/2/4
    # column 1: 5 below all; 40 -> (3+4)/2/4; 25 -> (2+2)/2/4; 10 -> (0+1)/2/4
    expected = np.array([[0.5, 0.0], [0.0, 0.875], [1.0, 0.5], [0.125, 0.125]])
    assert np.array_equal(quantile_features(values, reference), expected)


# -- ZeroCost sources ------------------------------------------------------------------------------------------------
def test_function_zero_cost_pays_once_per_pruned_network(space):
    a, a_pruned, other = space.parse(DEAD_END), space.parse(SKIP_ONLY), space.parse(OTHER)
    assert a != a_pruned and space.prune(a) == a_pruned
    calls = []

    def fn(arch):
        calls.append(arch)
        return [float(sum(arch.tokens)), float(arch.tokens[0]), 1.0], 0.25

    zc = FunctionZeroCost(space, ("params", "naswot", "zico"), fn)
    assert zc.members == ("naswot", "zico")  # the aggregate's members, in its order
    out = zc.scores([a, a_pruned, a, other])
    assert calls == [a_pruned, other]  # scored on the pruned form, once each
    assert zc.spent_s == pytest.approx(0.5) and zc.scored == 2
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])
    assert out[0].tolist() == [float(sum(a_pruned.tokens)), 0.0, 1.0]
    zc.scores([a_pruned, other])
    assert zc.spent_s == pytest.approx(0.5) and len(calls) == 2  # nothing new to pay for
    # aggregate over (naswot, zico): OTHER has the larger naswot, zico ties
    assert zc.aggregate([a, other]) == pytest.approx([math.log(1 / 2) + math.log(1.5 / 2), math.log(1.5 / 2)])
    zc.set_reference([a])
    assert zc.features([other]).tolist() == [[1.0, 0.5]]
    only = FunctionZeroCost(space, ("params",), fn)
    assert only.members == ("params",)


def test_live_zero_cost_scores_each_network_once(space, monkeypatch):
    calls = []

    def fake_score_cell(sp, arch, batch, names, num_classes, seed, image_size=32):
        calls.append(arch)
        return {n: float(i + len(calls)) for i, n in enumerate(names)}, 2.0

    monkeypatch.setattr(table_mod, "score_cell", fake_score_cell)
    zc = LiveZeroCost(space, batch=None, names=("naswot", "flops"), num_classes=10)
    out = zc.scores([space.parse(DEAD_END), space.parse(SKIP_ONLY), space.parse(OTHER), space.parse(DEAD_END)])
    assert calls == [space.parse(SKIP_ONLY), space.parse(OTHER)]
    assert zc.spent_s == 4.0
    assert out[:, 0].tolist() == [1.0, 1.0, 2.0, 1.0] and out[:, 1].tolist() == [2.0, 2.0, 3.0, 2.0]


def test_random_zc_and_local_zc_need_proxies(space):
    for name in ("random-zc", "local-zc"):
        with pytest.raises(ConfigError, match="needs zero-cost proxies.*proxy file"):
            make_strategy(name, space, seed=0)
    zc = FunctionZeroCost(space, ("params",), lambda a: ([0.0], 0.0))
    with pytest.raises(ConfigError, match="pool must be >= 1"):
        make_strategy("random-zc", space, seed=0, zero_cost=zc, pool=0)


# -- proxy tables ------------------------------------------------------------------------------------------------------
SETTINGS = ScoringSettings(table="tiny.csv.gz", space="nb201", dataset="cifar10", image_size=8, num_classes=10,
                           batch_size=8, seed=0, proxies=("params", "naswot", "jacov", "zico"))


@pytest.fixture(scope="module")
def small_batch():
    return ProxyBatch(torch.randn(8, 3, 8, 8, generator=_gen(5)), torch.arange(8) % 10)


@pytest.fixture()
def recorded(monkeypatch):
    """Every call of score_cell (through the table driver), with what it returned."""
    calls: list[tuple[tuple[int, ...], dict[str, float], float]] = []
    real = table_mod.score_cell

    def wrapper(space, arch, *args, **kwargs):
        values, seconds = real(space, arch, *args, **kwargs)
        calls.append((arch.tokens, values, seconds))
        return values, seconds

    monkeypatch.setattr(table_mod, "score_cell", wrapper)
    return calls


def _archs(space):
    return [space.parse(s) for s in (DEAD_END, SKIP_ONLY, NONE_CELL, OTHER)]


def test_score_table_round_trip(space, small_batch, recorded, tmp_path):
    out = tmp_path / "zc.csv.gz"
    archs = _archs(space)
    assert score_table(space, archs, small_batch, SETTINGS, out, workers=1) == 3  # DEAD_END = SKIP_ONLY pruned
    assert [t for t, _, _ in recorded] == [c.tokens for c in distinct_cells(space, archs)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zc.csv.gz"]  # no journal, no temporary file
    table = ProxyTable.load(out, space)
    assert table.names == list(SETTINGS.proxies)
    assert len(table.archs) == 3
    with gzip.open(out, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "arch_str,zc_params,zc_naswot,zc_jacov,zc_zico,zc_time_s"
    assert [ln.split(",")[0] for ln in lines[1:]] == [SKIP_ONLY, NONE_CELL, OTHER]
    for tokens, values, seconds in recorded:
        row = table.row(space.make(tokens))
        for n in SETTINGS.proxies:
            assert table.values[n][row] == pytest.approx(values[n], rel=1e-8), n
        assert table.seconds[row] == pytest.approx(seconds, abs=1e-6)
    assert table.row(space.parse(DEAD_END)) == table.row(space.parse(SKIP_ONLY))
    assert table.scores(space.parse(NONE_CELL))["naswot"] == FLOOR
    zc = TableZeroCost(table)
    zc.scores(archs)
    assert zc.spent_s == pytest.approx(float(table.seconds.sum()))


def _journal(path, settings, records, tail=""):
    lines = [json.dumps({"settings": asdict(settings)})]
    lines += [json.dumps({"tokens": list(t), "scores": s, "seconds": sec}) for t, s, sec in records]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")


FAKE = {"params": 123.0, "naswot": 1.5, "jacov": -2.5, "zico": 3.25}


def test_score_table_resumes_from_the_journal_and_skips_a_torn_line(space, small_batch, recorded, tmp_path):
    out = tmp_path / "zc.csv.gz"
    skip_only = space.parse(SKIP_ONLY)
    _journal(partial_path(out), SETTINGS, [(skip_only.tokens, FAKE, 9.0)], tail='{"tokens": [0, 0, 0, 0')
    assert score_table(space, _archs(space), small_batch, SETTINGS, out, workers=1) == 2
    assert [t for t, _, _ in recorded] == [space.parse(NONE_CELL).tokens, space.parse(OTHER).tokens]
    table = ProxyTable.load(out, space)
    assert table.scores(space.parse(DEAD_END)) == FAKE  # the journal's numbers, not recomputed
    assert table.seconds[table.row(skip_only)] == 9.0
    assert not partial_path(out).exists()


def test_a_second_kill_after_a_torn_line_loses_no_scored_cell(space, small_batch, recorded, tmp_path, monkeypatch):
    out = tmp_path / "zc.csv.gz"
    _journal(partial_path(out), SETTINGS, [], tail='{"tokens": [0, 0, 0, 0')
    scorer = table_mod.score_cell

    def killed_on_second(*args, **kwargs):
        if len(recorded) == 1:
            raise RuntimeError("killed")  # the second cell of this run never finishes
        return scorer(*args, **kwargs)

    monkeypatch.setattr(table_mod, "score_cell", killed_on_second)
    archs = [space.parse(s) for s in (SKIP_ONLY, NONE_CELL, OTHER)]
    with pytest.raises(RuntimeError, match="killed"):
        score_table(space, archs, small_batch, SETTINGS, out, workers=1)
    assert len(recorded) == 1
    monkeypatch.setattr(table_mod, "score_cell", scorer)
    assert score_table(space, archs, small_batch, SETTINGS, out, workers=1) == 2  # SKIP_ONLY was done


@pytest.mark.parametrize("change", [{"seed": 1}, {"proxies": ("params", "naswot")}, {"batch_size": 16}])
def test_resume_with_other_settings_names_the_setting(space, small_batch, recorded, tmp_path, change):
    out = tmp_path / "zc.csv.gz"
    _journal(partial_path(out), replace(SETTINGS, **change), [])
    before = partial_path(out).read_text()
    with pytest.raises(NaoError, match=f"other settings \\({next(iter(change))}\\)"):
        score_table(space, _archs(space), small_batch, SETTINGS, out, workers=1)
    assert not recorded and not out.exists() and partial_path(out).read_text() == before


def test_a_file_that_is_not_a_journal_is_refused(space, small_batch, tmp_path):
    out = tmp_path / "zc.csv.gz"
    partial_path(out).write_text("garbage\n")
    with pytest.raises(NaoError, match="not a scoring journal"):
        score_table(space, _archs(space), small_batch, SETTINGS, out, workers=1)


def test_a_non_finite_score_is_never_journaled(space, small_batch, tmp_path, monkeypatch):
    monkeypatch.setattr(table_mod, "score_cell",
                        lambda sp, arch, *a, **k: ({"params": 1.0, "naswot": math.nan, "jacov": 0.0, "zico": 0.0}, 0.1))
    out = tmp_path / "zc.csv.gz"
    with pytest.raises(NaoError, match="proxy naswot gave a non-finite score"):
        score_table(space, _archs(space), small_batch, SETTINGS, out, workers=1)
    assert partial_path(out).read_text().count("\n") == 1 and not out.exists()  # the header only


# -- ProxyTable.load: bad input -------------------------------------------------------------------------------------
def _write(path, text):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


def test_proxy_file_non_finite_value_names_file_line_column(space, tmp_path):
    for bad in ("nan", "inf", "-inf"):
        path = _write(tmp_path / "zc.csv.gz", f"arch_str,zc_naswot,zc_time_s\n{BEST},1.5,0.1\n{OTHER},{bad},0.1\n")
        with pytest.raises(BenchmarkFileError, match=f"{path}: line 3: column zc_naswot is not finite"):
            ProxyTable.load(path, space)
    path = _write(tmp_path / "zc.csv.gz", f"arch_str,zc_naswot,zc_time_s\n{BEST},1.5,abc\n")
    with pytest.raises(BenchmarkFileError, match="line 2: column zc_time_s is not a number: 'abc'"):
        ProxyTable.load(path, space)


@pytest.mark.parametrize("text, message", [
    ("arch_str,zc_naswot,zc_foo,zc_time_s\nARCH,1,2,0.1\n", "unknown proxy column zc_foo"),
    ("arch_str,zc_time_s\nARCH,0.1\n", "unknown proxy column"),
    ("arch_str,zc_naswot\nARCH,1\n", "not a proxy file"),
    ("arch_str,zc_naswot,zc_time_s\nARCH,1\n", "line 2 has 2 fields, header has 3"),
    ("arch_str,zc_naswot,zc_time_s\n", "no rows after the header"),
    ("arch_str,zc_naswot,zc_time_s\n|bogus~0|,1,0.1\n", "line 2: cannot parse arch_str"),
])
def test_proxy_file_format_errors(space, tmp_path, text, message):
    path = _write(tmp_path / "zc.csv.gz", text.replace("ARCH", BEST))
    with pytest.raises(BenchmarkFileError, match=message):
        ProxyTable.load(path, space)


def test_a_missing_proxy_file_is_named(space, tmp_path):
    with pytest.raises(BenchmarkFileError, match=re.escape(f"{tmp_path / 'none.csv.gz'}: ") + ".*not found"):
        ProxyTable.load(tmp_path / "none.csv.gz", space)


def test_check_covers_names_the_missing_count_and_the_first_cell(space, tmp_path):
    path = tmp_path / "zc.csv.gz"
    write_proxy_file(path, space, [(space.parse(BEST), {"naswot": 1.0}, 0.1),
                                   (space.parse(SKIP_ONLY), {"naswot": 2.0}, 0.2)], ["naswot"])
    table = ProxyTable.load(path, space)
    table.check_covers([space.parse(BEST), space.parse(DEAD_END)], "the table")  # DEAD_END prunes to SKIP_ONLY
    with pytest.raises(BenchmarkFileError, match=re.escape(f"2 of its cells have no proxy scores (first: {OTHER})")):
        table.check_covers([space.parse(BEST), space.parse(OTHER), space.parse(NONE_CELL)], "the table")
    with pytest.raises(BenchmarkFileError, match="no proxy scores for"):
        table.row(space.parse(OTHER))


def test_the_committed_nb201_proxy_file_covers_the_table_and_ranks_it(nb201_table):
    # data/nb201_cifar10_zc.csv.gz (written by nao proxies, command in BENCHMARKS.md): every table row's network
    # has finite scores, and the aggregate ranks val_acc well above chance (0.82 measured on all cells).
    from pathlib import Path

    from scipy.stats import spearmanr

    path = Path(__file__).resolve().parents[1] / "data" / "nb201_cifar10_zc.csv.gz"
    zc = ProxyTable.load(path, nb201_table.space)
    assert len(zc.archs) == 9445 and set(zc.names) == set(PROXIES)
    zc.check_covers(nb201_table.archs, "the NB201 table")
    rows = np.array([zc.row(a) for a in nb201_table.archs[::7]])
    agg = aggregate(np.column_stack([zc.values[n][rows] for n in AGGREGATE_PROXIES]))
    assert spearmanr(agg, nb201_table.metrics["val_acc"][::7]).statistic > 0.75
