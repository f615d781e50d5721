"""NAO-WS search driver and `nao search` with the supernet evaluator (tiny smoke runs, CPU)."""

from __future__ import annotations

import json

import pytest
import torch

import nao.evaluators.rounds
import nao.evaluators.supernet
import nao.runs
import nao.runs.images as images
import nao.train.classifier
from nao.cli import main
from nao.errors import ConfigError
from nao.presets import preset, preset_names


def preset_config(name: str, **overrides):
    return preset(f"supernet-cnn/{name}", **overrides)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny convolutions gain nothing from a second thread, and OpenMP threads spin badly on a
    # shared 2-core machine; restore the setting for the tests that follow.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_no_arguments_runs_the_embedded_digits_default(monkeypatch, tmp_path):
    seen = {}

    def fake_run(kind, out, **kwargs):
        seen.update(cfg=kind.config, out=out)
        return {"best": {"arch": "w", "metrics": {}}, "final": {"test_acc": 0.5}, "winner": "w", "n_evaluated": 1}

    monkeypatch.setattr(nao.runs, "execute", fake_run)
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    cfg = seen["cfg"]
    assert (cfg.preset, cfg.dataset, cfg.space, cfg.strategy) == ("digits", "digits", "nao-ws", "nao")
    assert cfg.supernet.layers == 1 and cfg.budget == preset_config("digits").budget
    assert str(seen["out"]).startswith("runs/search-")


def test_paper_preset_matches_the_official_search():
    cfg = preset_config("paper")
    st = cfg.supernet_train
    assert (cfg.supernet.channels, cfg.supernet.layers) == (20, 3)
    assert (st.seed_pool, st.new_per_round, st.pool_size, st.epochs_per_round, st.total_epochs) == (600, 300, 600, 50, 200)
    assert cfg.budget == 600 + 3 * 300 and cfg.top_k == 5 and cfg.rerank_train.epochs == 10
    assert (cfg.final_network.channels, cfg.final_network.layers, cfg.final_train.epochs) == (36, 6, 600)


def test_smoke_search_end_to_end_and_oom_fallback(monkeypatch, tmp_path, capsys):
    # The winner's final training runs out of memory: the runner-up is trained instead.
    real = images.train_classifier
    calls = []

    def flaky(model, train, evals, cfg, runtime, **kw):
        calls.append(sorted(evals))
        if len(calls) == 3:  # 2 reranks, then the first final training
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB (fake)")
        return real(model, train, evals, cfg, runtime, **kw)

    monkeypatch.setattr(images, "train_classifier", flaky)
    out = tmp_path / "run"
    rc = main(["search", "--preset", "smoke", "--strategy", "random", "--seed", "1", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "round 1:" in printed and "rerank 2/2" in printed and "test accuracy" in printed
    assert "trying the next candidate" in printed
    assert "round 1:" in (out / "search.log").read_text()  # stage lines reach the log, not only the console
    pool_rounds = json.loads((out / "supernet.json").read_text())["pool_rounds"]  # what the report plots per round
    assert [r["round"] for r in pool_rounds] == [1, 2] and all(r["best"] >= r["median"] for r in pool_rounds)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "manifest.json", "search.log", "journal.jsonl", "best.json", "supernet.json", "rerank.json",
            "result.json", "final"} <= names
    assert len((out / "journal.jsonl").read_text().splitlines()) == 6  # the budget counts scored architectures
    rerank = json.loads((out / "rerank.json").read_text())
    result = json.loads((out / "result.json").read_text())
    assert len(rerank) == 2 and result["n_evaluated"] == 6
    assert 0.0 <= result["final"]["test_acc"] <= 1.0 and result["final"]["status"] == "ok"
    ranked = sorted(rerank, key=lambda r: r["metrics"]["val_acc"], reverse=True)
    assert result["winner"] == ranked[1]["arch"]  # the runner-up, after the fake OOM
    assert calls == [["val"], ["val"], ["test"], ["test"]]
    assert json.loads((out / "config.json").read_text())["preset"] == "smoke"


def test_cifar10_smoke_on_a_subset(cifar_dir, tmp_path):
    out = tmp_path / "c"
    rc = main(["search", "--evaluator", "supernet", "--dataset", "cifar10", "--data-dir", str(cifar_dir),
               "--device", "cpu", "--preset", "smoke", "--strategy", "random", "--subset", "128", "--out", str(out), "-q"])
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    assert result["dataset"] == "cifar10" and result["sizes"] == [128, 128, 128]


def test_cpu_preset_searches_shrunk_cifar10(cifar_dir):
    cfg = preset_config("cpu", data_dir=str(cifar_dir), train_images=300, test_images=200)
    data = images.load_splits(cfg)
    assert cfg.dataset == "cifar10" and data.sizes() == (300, 2000, 200)
    assert data.image_size == 16 and data.train.images.dtype == torch.uint8
    # Area averaging keeps the mean brightness (up to rounding).
    assert abs(data.test.images.float().mean() - 120) < 10


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--space", "nb201"], "needs a conv cell space"),
        (["--dataset", "cifar10", "--data-dir", "{tmp}/nothing"], "CIFAR-10 not found"),
        (["--budget", "0"], "--budget must be at least 1"),
        (["--preset", "huge"], "unknown --preset 'huge'"),
        (["--image-size", "3"], "image size 3 must be a positive divisor of the images' 8x8"),
        (["--image-size", "2"], "image size 2x2 is too small"),
        (["--image-size", "-1"], "--image-size must be positive"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_exits_2_without_a_run_directory(tmp_path, capsys, argv, fragment):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = tmp_path / "r"
    rc = main(["search", "--strategy", "random", "--preset", "smoke", "--out", str(out), "-q", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_train_architecture_reports_oom_as_failed(monkeypatch):
    cfg = preset_config("smoke")
    data = images.load_splits(cfg)
    space = __import__("nao.spaces").spaces.get_space("nao-ws")
    arch = space.sample(__import__("numpy").random.default_rng(0))

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory (fake)")

    monkeypatch.setattr(images, "train_classifier", oom)
    r = images.train_architecture(space, arch, data, cfg.rerank_network, cfg.rerank_train,
                                  nao.train.classifier.make_runtime("cpu"), data.train, {"val": data.val}, seed=0)
    assert r["status"] == "failed" and "out of memory" in r["error"]


@pytest.mark.parametrize("name, dataset", [("digits", "digits"), ("cpu", "cifar10"), ("smoke", "digits"), ("short", "cifar10"), ("paper", "cifar10")])
def test_presets_build_the_nao_strategy(name, dataset):
    # Guards the presets against drift of the nao strategy's options.
    from nao.spaces import get_space
    from nao.strategies import make_strategy

    cfg = preset_config(name)
    assert cfg.dataset == dataset
    st = cfg.supernet_train
    strategy = make_strategy("nao", get_space(cfg.space), seed=0, seed_archs=st.seed_pool,
                             per_round=st.new_per_round, **cfg.strategy_options)
    assert len(strategy.ask(st.seed_pool)) == st.seed_pool


def test_supernet_score_loss_ranks_and_searches_by_minus_loss(tmp_path):
    out = tmp_path / "r"
    rc = main(["search", "--preset", "smoke", "--strategy", "nao", "--supernet-score", "loss", "--out", str(out), "-q"])
    assert rc == 0
    rows = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and all(r["metrics"]["val_score"] == -r["metrics"]["val_loss"] for r in ok)
    # The Study's best is the highest -loss of the last scoring each architecture got, not the best accuracy.
    best = json.loads((out / "best.json").read_text())
    assert best["metrics"]["val_score"] == max(r["metrics"]["val_score"] for r in ok)
    assert json.loads((out / "config.json").read_text())["supernet_train"]["score"] == "loss"
    # Bug 1 of issue 14: search.log's best= lines used val_acc while best.json used the run's objective.
    best_lines = [line for line in (out / "search.log").read_text().splitlines() if " best=" in line]
    assert best_lines and all(" val_loss=" in line for line in best_lines)
    assert float(best_lines[-1].split(" best=")[1].split()[0]) == pytest.approx(best["metrics"]["val_loss"], abs=1e-4)
    # Bug 2: predictions.json was written by tabular runs only.
    preds = json.loads((out / "predictions.json").read_text())["predictions"]
    assert preds and all("round" in p for p in preds)


@pytest.mark.parametrize("flag, want", [(None, "loss"), ("acc", "acc"), ("loss", "loss")])
def test_cpu_preset_ranks_by_loss_unless_told(flag, want):
    from nao.runs import resolve

    cfg = resolve("supernet-cnn", preset="cpu", flags={"supernet_score": flag}).config
    assert cfg.supernet_train.score == want
    assert preset_config("paper").supernet_train.score == "acc"  # the official protocol stays as it was


def test_supernet_score_must_be_known():
    from nao.evaluators.supernet import SupernetTrainConfig

    with pytest.raises(ConfigError, match="score must be one of acc, loss"):
        SupernetTrainConfig(score="ppl").check()


# -- resume --------------------------------------------------------------------------------------------
class _Killed(BaseException):
    """Stands for SIGKILL: nothing in nao catches it, so the run stops exactly where it is."""


def _kill_on_call(monkeypatch, owner, name: str, n: int) -> None:
    """The ``n``-th call of ``owner.name`` dies instead of running."""
    real, calls = getattr(owner, name), []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise _Killed(f"{name} call {n}")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, dying)


_WS_RUN = ["search", "--preset", "smoke", "--budget", "8", "--seed", "1", "-q"]  # 3 rounds: 4 + 2 + 2


def _outcome(run) -> dict:
    """What a run computed, without its timings."""
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    supernet = json.loads((run / "supernet.json").read_text())
    result = json.loads((run / "result.json").read_text())
    return {
        "journal": [(r["arch"], r["status"], r["metrics"]) for r in journal],
        "history": [{k: v for k, v in row.items() if k != "images_per_s"} for row in supernet["history"]],
        "ranking": supernet["ranking"],
        "rerank": [(r["arch"], {k: v for k, v in r["metrics"].items() if not k.endswith("_per_s")})
                   for r in json.loads((run / "rerank.json").read_text())],
        "winner": result["winner"],
        "test_acc": result["final"]["test_acc"],
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """strategy -> the outcome of the run the interrupted ones must reproduce (computed once)."""
    done: dict[str, dict] = {}

    def outcome(strategy: str) -> dict:
        if strategy not in done:
            run = tmp_path_factory.mktemp("ws") / strategy
            old = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                assert main([*_WS_RUN, "--strategy", strategy, "--out", str(run)]) == 0
            finally:
                torch.set_num_threads(old)
            done[strategy] = _outcome(run)
        return done[strategy]

    return outcome


def _killed_run(monkeypatch, args: list[str], owner, name: str, n: int) -> None:
    with monkeypatch.context() as m:
        _kill_on_call(m, owner, name, n)
        with pytest.raises(_Killed):
            main(args)


def test_ws_search_killed_mid_round_resumes_to_the_uninterrupted_result(uninterrupted, tmp_path, monkeypatch):
    # The nao strategy: the replay refits its controller and must propose round 3 again exactly.
    run = tmp_path / "run"
    _killed_run(monkeypatch, [*_WS_RUN, "--out", str(run)], nao.evaluators.supernet.SupernetEvaluator, "_train_epoch", 3)
    assert len((run / "journal.jsonl").read_text().splitlines()) == 6 and (run / "supernet.pt").exists()
    assert main(["search", "--resume", str(run), "-q"]) == 0
    assert _outcome(run) == uninterrupted("nao")


def test_ws_search_killed_at_every_stage_resumes_to_the_uninterrupted_result(uninterrupted, tmp_path, monkeypatch,
                                                                             capsys):
    run = tmp_path / "run"
    resume = ["search", "--resume", str(run), "-q"]
    # 1. Between round 2's last journal line and its checkpoint: that round is cut and redone.
    _killed_run(monkeypatch, [*_WS_RUN, "--strategy", "random", "--out", str(run)],
                nao.evaluators.rounds, "save_checkpoint", 2)
    assert len((run / "journal.jsonl").read_text().splitlines()) == 6
    # 2. In the second rerank; 3. right after the final training's checkpoint.
    _killed_run(monkeypatch, resume, images, "train_classifier", 2)
    assert len(json.loads((run / "rerank.json").read_text())) == 1
    _killed_run(monkeypatch, resume, nao.train.classifier, "_write_metrics", 1)
    assert not (run / "result.json").exists()
    assert main(resume) == 0
    assert _outcome(run) == uninterrupted("random")
    log_text = (run / "search.log").read_text()
    assert "cutting 2 results journaled after the last supernet checkpoint" in log_text
    assert "rerank 1/2: kept from rerank.json" in log_text and "continuing final/checkpoint.pt" in log_text
    assert len(json.loads((run / "manifest.json").read_text())["resumes"]) == 3
    capsys.readouterr()
    assert main(["search", "--resume", str(run)]) == 0  # a finished run is reported, not redone
    assert "is a finished run" in capsys.readouterr().out


def test_ws_resume_refuses_flags_that_change_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    (run).mkdir()
    cfg = preset_config("smoke", budget=8, seed=1)
    (run / "config.json").write_text(json.dumps({**cfg.to_dict(), "kind": "supernet-cnn"}))
    for flags, fragment in [(["--budget", "10"], "budget 10 conflicts with the run's 8"),
                            (["--seed", "2"], "seed 2 conflicts with the run's 1"),
                            (["--supernet-score", "loss"], "supernet_train.score 'loss' conflicts with the run's 'acc'"),
                            (["--executor", "processes"], "--executor applies to --evaluator training, not supernet"),
                            (["--set", "top_k=9"], "top_k 9 conflicts with the run's 2"),
                            (["--out", str(tmp_path / "elsewhere")], "conflicts; a resumed run continues in its own directory")]:
        assert main(["search", "--resume", str(run), "-q", *flags]) == 2
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, (flags, err)
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]  # nothing written


def test_ws_config_survives_its_json_form():
    from dataclasses import replace

    for name in preset_names("supernet-cnn"):
        cfg = preset_config(name)
        back = nao.runs.make_kind({**json.loads(json.dumps(cfg.to_dict())), "kind": "supernet-cnn"}).config
        # strategy_options' ControllerConfig comes back as the dict the nao strategy also accepts.
        assert replace(back, strategy_options=cfg.strategy_options) == cfg and back.to_dict() == cfg.to_dict(), name


def test_reranks_side_by_side_equal_reranks_one_after_another(tmp_path):
    # The default presets rerank in 2 processes; each training is seeded on its own, so where it ran must not matter.
    outcomes = []
    for workers in (1, 2):
        run = tmp_path / f"w{workers}"
        assert main(["search", "cnn", "--preset", "smoke", "--set", f"rerank_workers={workers}", "--out", str(run),
                     "-q"]) == 0
        rerank = json.loads((run / "rerank.json").read_text())
        outcomes.append([(r["arch"], r["metrics"]["val_acc"], r["metrics"]["val_loss"]) for r in rerank])
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) == 2
