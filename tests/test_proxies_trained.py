"""Zero-cost proxies in trained searches: language-model proxies (nao.proxies.lm), ``--zero-cost`` of the
trained kinds (checked before a run directory exists), and how proxy seconds are charged (nao.runs.trained)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nao.cli import main
from nao.errors import NaoError
from nao.executors import Executor
from nao.nn.rnn import ModelConfig, build_model
from nao.proxies.lm import LM_PROXIES, UNDEFINED, check_lm_names, lm_zero_cost, score_lm, token_batch
from nao.proxies.source import FunctionZeroCost
from nao.results import Result
from nao.runs.trained import ZC_POOL_PER_SEED, ProxyCharging, zero_cost_options
from nao.spaces import get_space

_CNN = ["search", "cnn", "--evaluator", "training", "--preset", "smoke", "-q"]


def _tiny_lm(space, arch, seed=0):
    return build_model(ModelConfig(16, 16), 40, space.decode(arch), seed=seed)


def _stream():
    return torch.randint(0, 40, (600,), generator=torch.Generator().manual_seed(3))


# -- language-model proxies ------------------------------------------------------------------------------------
def test_lm_proxies_are_finite_deterministic_and_leave_the_model_as_it_was():
    space = get_space("rnn")
    arch = space.sample(np.random.default_rng(0))
    batch = token_batch(_stream(), batch_size=8, bptt=10, seed=1)
    assert batch.inputs.shape == (10, 8) and torch.equal(batch.inputs[1:], batch.targets[:-1])
    model = _tiny_lm(space, arch)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = score_lm(model, batch)
    assert list(first) == list(LM_PROXIES) and all(math.isfinite(v) for v in first.values())
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert score_lm(_tiny_lm(space, arch), batch) == first  # a fresh build with the same seed: the same scores
    # Every weight matrix is applied once per token: MACs = the cell's matrices + the decoder's (16 x 40).
    cell = sum(p.numel() for p in model.cell.parameters())
    assert first["flops"] == pytest.approx((cell + 16 * 40) / 1e6)
    assert first["params"] == pytest.approx((cell + 40 * 16 + 40) / 1e6)  # tied embedding once, decoder bias
    # Gradient proxies tell cells apart; size proxies cannot within one space (every node one H x 2H matrix).
    other = score_lm(_tiny_lm(space, space.sample(np.random.default_rng(1))), batch)
    assert other["zico"] != first["zico"] and other["snip"] != first["snip"]
    assert other["params"] == first["params"] and other["flops"] == first["flops"]


@pytest.mark.parametrize("name", sorted(UNDEFINED))
def test_an_undefined_lm_proxy_is_a_naoerror_naming_it(name):
    space = get_space("rnn")
    model = _tiny_lm(space, space.named("NAO"))
    batch = token_batch(_stream(), batch_size=4, bptt=5, seed=0)
    with pytest.raises(NaoError, match=f"'{name}' is undefined for a language model: ") as err:
        score_lm(model, batch, ["zico", name])
    assert "\n" not in str(err.value) and "defined: params, flops, snip, grad_norm, zico" in str(err.value)
    with pytest.raises(NaoError, match="unknown zero-cost proxy 'nope'"):
        check_lm_names(["nope"])
    with pytest.raises(NaoError, match="no zero-cost proxy"):
        check_lm_names([])


def test_token_batch_refuses_what_the_gradient_proxies_cannot_use():
    with pytest.raises(NaoError, match="at least 4 streams"):
        token_batch(_stream(), batch_size=3, bptt=5, seed=0)
    with pytest.raises(NaoError, match="too few"):
        token_batch(torch.arange(6), batch_size=4, bptt=5, seed=0)


def test_lm_zero_cost_memoises_and_charges_each_cell_once():
    space = get_space("rnn")
    zc = lm_zero_cost(space, token_batch(_stream(), 4, 6, 0), ["grad_norm", "zico"], ModelConfig(8, 8), 40)
    a, b = space.sample(np.random.default_rng(0)), space.sample(np.random.default_rng(1))
    values = zc.scores([a, b, a])
    assert values.shape == (3, 2) and np.array_equal(values[0], values[2]) and zc.scored == 2 and zc.spent_s > 0
    with pytest.raises(NaoError, match="'synflow' is undefined"):
        lm_zero_cost(space, token_batch(_stream(), 4, 6, 0), ["synflow"], ModelConfig(8, 8), 40)


# -- charging proxy seconds ---------------------------------------------------------------------------------------
class _Trains(Executor):
    """Every candidate 'trains' for 2 s and 100 cost units; the first ``failures`` fail (no cost)."""

    def __init__(self, failures: int = 0) -> None:
        self.queue: list[Result] = []
        self.failures = failures

    def submit(self, evaluator, archs):
        for a in archs:
            if self.failures > 0:
                self.failures -= 1
                self.queue.append(Result.failed(a, "boom", cost_s=1.0))
            else:
                self.queue.append(Result(a, "ok", {"val_acc": 0.5}, cost_s=2.0, cost=100.0))

    def poll(self):
        out, self.queue = self.queue, []
        return out

    @property
    def pending(self):
        return len(self.queue)


def _zc(space):
    return FunctionZeroCost(space, ("size",), lambda a: ([float(sum(a.tokens))], 0.5))


def test_proxy_seconds_are_charged_at_the_runs_training_throughput():
    space = get_space("nb201")
    cells = [space.sample(np.random.default_rng(i)) for i in range(4)]
    zc = _zc(space)
    zc.scores(cells[:2])  # a seed pool, scored before anything trains: 1.0 s
    ex = ProxyCharging(_Trains(failures=1), zc)
    ex.submit(None, [cells[2]])  # scored before it trains: 1.5 s in all; it fails, so there is no rate yet
    (failed,) = ex.poll()
    assert failed.metrics == {"zc_size": float(sum(cells[2].tokens))} and failed.cost == 0.0 and ex.rate is None
    ex.submit(None, [cells[3]])  # 2.0 s in all, charged at 100 / 2 s = 50 units per second
    (ok,) = ex.poll()
    assert ex.rate == 50.0
    assert ok.cost == pytest.approx(100.0 + 2.0 * 50) and ok.cost_s == pytest.approx(2.0 + 2.0)
    assert ok.info == {"zc_s": pytest.approx(2.0), "zc_cost": pytest.approx(100.0)} and "zc_size" in ok.metrics
    ex.submit(None, [cells[3]])  # scored already: nothing more to pay
    (again,) = ex.poll()
    assert again.cost == 100.0 and "zc_s" not in again.info
    # A resume: the journal's charges count as paid, the strategy's re-scored pool is not paid again.
    zc2 = _zc(space)
    resumed = ProxyCharging(_Trains(), zc2)
    resumed.credit([failed, ok, again])
    assert resumed.rate == 50.0
    zc2.scores(cells)  # the re-scored pool and candidates: 2.0 s, all paid before
    new = space.sample(np.random.default_rng(9))
    resumed.submit(None, [new])
    (r,) = resumed.poll()
    assert r.info["zc_s"] == pytest.approx(0.5) and r.cost == pytest.approx(125.0)


def test_trained_pool_defaults_scale_with_what_the_strategy_takes():
    # NAO's proxy seed pool is off by default (DEFAULT_ZC_POOL = 0, measured on NB201): never turned on here
    assert zero_cost_options("nao", {"seed_archs": 40}, 100)["zc_pool"] == 0
    assert zero_cost_options("nao", {"seed_archs": 40, "zc_pool": 7}, 100)["zc_pool"] == 7  # the user's stays
    assert zero_cost_options("random-zc", {}, 30) == {"pool": ZC_POOL_PER_SEED * 30}
    assert zero_cost_options("random", {}, 30) == {}


# -- --zero-cost of the trained kinds -------------------------------------------------------------------------------
def test_default_runs_have_no_proxies():
    from nao.presets import preset

    for name in ("trained-cnn/smoke", "trained-cnn/cpu", "trained-rnn/cpu"):
        assert preset(name).zero_cost == ()


@pytest.mark.parametrize("flags, message", [
    (["--zero-cost", "params,foo"], "unknown zero-cost proxy 'foo'"),
    (["--zero-cost", "all", "--zero-cost-batch", "3"], "--zero-cost-batch 3"),
    (["--zero-cost", "all", "--zero-cost-batch", "100000"], "larger than the 256 training images"),
    (["--strategy", "random-zc"], "needs zero-cost proxies: add --zero-cost"),
    (["--strategy", "random-zc", "--zero-cost", "all", "--set", "strategy_options.pool=0"], "pool must be >= 1"),
    (["--zero-cost", "all", "--set", "strategy_options.zc_pool=-1"], "zc_pool must be >= 0"),
])
def test_trained_cnn_refuses_bad_zero_cost_settings_before_a_run_directory_exists(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main([*_CNN, *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_trained_rnn_refuses_a_proxy_undefined_for_language_models(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["search", "ptb", "--evaluator", "training", "--preset", "smoke", "-q", "--zero-cost", "jacov",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'jacov' is undefined for a language model" in err and not out.exists()


def test_random_zc_with_zero_cost_prepares_with_the_trained_pool_default():
    from nao.runs.resolve import resolve

    kind = resolve("trained-cnn", preset="smoke", flags={"strategy": "random-zc", "zero_cost": ("naswot", "zico"),
                                                         "budget": 3})
    kind.prepare()
    try:
        strategy = kind.strategy(zero_cost=_zc(kind.space))
        assert strategy._pool.pool == ZC_POOL_PER_SEED * 3
        assert kind.proxy_batch.inputs.shape[0] == 64
    finally:
        kind.close()


def test_trained_cnn_smoke_with_proxies_journals_zc_metrics_and_counts_their_cost(tmp_path):
    run = tmp_path / "run"
    assert main([*_CNN, "--zero-cost", "all", "--zero-cost-batch", "16", "--budget", "3",
                 "--set", "strategy_options.seed_archs=2", "--set", "strategy_options.zc_pool=4",
                 "--set", "top_k=1", "--out", str(run)]) == 0
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 3
    for rec in journal:
        assert {f"zc_{n}" for n in ("params", "flops", "synflow", "naswot", "jacov", "snip", "grad_norm", "zico")} \
            <= set(rec["metrics"])
        assert all(math.isfinite(v) for v in rec["metrics"].values())
    # The pool and the candidates were scored before the first result: it carries their charge.
    assert journal[0]["info"]["zc_s"] > 0 and journal[0]["info"]["zc_cost"] > 0
    result = json.loads((run / "result.json").read_text())
    assert result["cost_unit"] == "image_epochs"
    assert result["cost"] == pytest.approx(sum(r["cost"] for r in journal))
    trained = sum(r["cost"] - r["info"].get("zc_cost", 0.0) for r in journal)
    assert trained == pytest.approx(3 * 256)  # one epoch of the 256 training images each; the rest is proxies
