"""Recurrent LM: cell maths, supernet sharing, training/ASGD/resume, the rnn-supernet evaluator, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from nao.cli import main
from nao.data.corpus import batchify, load_corpus
from nao.errors import ConfigError
from nao.evaluators import evaluator_names
from nao.evaluators.rnn_supernet import RNNSupernetEvaluator, supernet_preset
from nao.nn.rnn import ModelConfig, block_count, block_index, build_model, make_plan
from nao.spaces import get_space
from nao.spaces.rnn import ACTIVATIONS
from nao.train.lm import ParamAverager, evaluate_lm, preset, train_lm

TINY = ModelConfig(8, 8, 0.0, 0.0, 0.0, 0.0)


_ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}


def _reference(cell, genotype, x, h):
    """The cell written node by node, as in DARTS/NAO (no batching, no plan)."""
    H = h.size(1)
    outs = []
    for t in range(x.size(0)):
        c0, g0 = (x[t] @ cell.w_x + h @ cell.w_h0).split(H, -1)
        states = [h + c0.sigmoid() * (g0.tanh() - h)]
        for i, (act, inp) in enumerate(genotype.nodes):
            c, g = (states[inp] @ cell.w_nodes[i]).split(H, -1)
            states.append(states[inp] + c.sigmoid() * (_ACT[act](g) - states[inp]))
        h = torch.stack([states[k] for k in genotype.concat]).mean(0)
        outs.append(h)
    return torch.stack(outs)


@pytest.fixture
def tiny_corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for split, n in (("train", 150), ("valid", 40), ("test", 40)):
        # a learnable pattern: each line counts upwards from a random start
        lines = []
        for _ in range(n):
            s = int(rng.integers(12))
            lines.append(" ".join(words[(s + k) % 12] for k in range(5)))
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return load_corpus(tmp_path)


@pytest.mark.parametrize("name,arch", [("rnn", "NAO"), ("rnn-darts", "DARTS_V2"), ("rnn-enas", "ENAS")])
def test_cell_matches_node_by_node_reference(name, arch):
    space = get_space(name)
    g = space.decode(space.named(arch))
    model = build_model(TINY, 20, g, seed=1).double().eval()
    x, h = torch.randn(6, 3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    out, last = model.cell(x, h)
    ref = _reference(model.cell, g, x, h)
    assert torch.allclose(out, ref, atol=1e-12) and torch.equal(last, out[-1])


def test_plan_batches_levels():
    space = get_space("rnn")
    plan = make_plan(space.decode(space.named("NAO")))
    assert len(plan.levels) == 6  # 11 nodes, 6 matmuls per step
    assert sorted(n for lv in plan.levels for n in lv.nodes) == list(range(1, 12))


def test_block_indices_are_a_bijection():
    for share in ("node_input_act", "node_input"):
        idx = {block_index(i, j, a, share) for i in range(1, 12) for j in range(i) for a in ACTIVATIONS}
        assert idx == set(range(block_count(11, share)))
    with pytest.raises(ConfigError):
        block_index(1, 0, "relu", "per_op")


def test_supernet_runs_any_genotype_and_only_its_blocks_learn():
    space = get_space("rnn")
    sup = build_model(TINY, 20, cell="supernet", steps=11, seed=0)
    rng = np.random.default_rng(0)
    g = space.decode(space.sample(rng))
    fixed = build_model(TINY, 20, g, seed=0)
    with torch.no_grad():  # give the fixed cell the supernet's blocks for g
        fixed.load_state_dict({k: v for k, v in sup.state_dict().items() if not k.startswith("cell.bank")}, strict=False)
        for i, (act, inp) in enumerate(g.nodes, start=1):
            fixed.cell.w_nodes[i - 1].copy_(sup.cell.bank[block_index(i, inp, act, "node_input_act")])
    tokens = torch.randint(0, 20, (5, 2))
    sup.eval(), fixed.eval()
    a, _, _ = sup(tokens, sup.init_hidden(2), genotype=g)
    b, _, _ = fixed(tokens, fixed.init_hidden(2))
    assert torch.allclose(a, b, atol=1e-6)
    sup.train()
    a, _, _ = sup(tokens, sup.init_hidden(2), genotype=g)
    a.sum().backward()
    used = {block_index(i, inp, act, "node_input_act") for i, (act, inp) in enumerate(g.nodes, start=1)}
    grads = sup.cell.bank.grad.flatten(1).abs().sum(1)
    assert {int(i) for i in torch.nonzero(grads)} <= used
    with pytest.raises(ConfigError):
        sup(tokens, sup.init_hidden(2))


def test_model_config_checks():
    with pytest.raises(ConfigError, match="tied"):
        ModelConfig(8, 16)
    with pytest.raises(ConfigError, match="dropout_h"):
        ModelConfig(8, 8, dropout_h=1.0)
    assert preset("small", hidden_size=32).model.emb_size == 32
    with pytest.raises(ConfigError, match="unknown setting .hiddn.; valid here: .*model"):
        preset("small", hiddn=3)


def test_param_averager_is_the_running_mean():
    p = torch.nn.Parameter(torch.zeros(2))
    avg = ParamAverager([p])
    avg.start()
    for v in (1.0, 2.0, 3.0):
        with torch.no_grad():
            p.fill_(v)
        avg.update()
    with avg.swapped():
        assert torch.allclose(p, torch.full((2,), 1.5))  # mean of 0, 1, 2, 3
    assert torch.allclose(p, torch.full((2,), 3.0))


def test_training_learns_and_resume_matches_straight_run(tiny_corpus, tmp_path):
    space = get_space("rnn")
    g = space.decode(space.named("NAO"))
    cfg = preset("tiny", epochs=3, nonmono=1, eval_every=10)
    vocab = len(tiny_corpus.vocab)

    straight = train_lm(build_model(cfg.model, vocab, g, seed=3), tiny_corpus, cfg, quiet=True, test=False)
    assert straight.val_ppl < 0.75 * vocab and straight.history and straight.tokens_per_s > 0

    out = tmp_path / "run"
    first = train_lm(build_model(cfg.model, vocab, g, seed=3), tiny_corpus, replace(cfg, epochs=2), out_dir=out, quiet=True)
    assert (out / "checkpoint.pt").exists() and (out / "best.pt").exists() and first.test_ppl is not None
    resumed = train_lm(build_model(cfg.model, vocab, g, seed=3), tiny_corpus, cfg, out_dir=out, resume=True, quiet=True, test=False)
    assert resumed.steps == straight.steps
    assert resumed.val_loss == pytest.approx(straight.val_loss, rel=1e-5)
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in straight.history], rel=1e-5)
    assert straight.averaged == resumed.averaged


def test_lstm_baseline_trains(tiny_corpus):
    cfg = preset("tiny", epochs=1)
    model = build_model(cfg.model, len(tiny_corpus.vocab), cell="lstm")
    result = train_lm(model, tiny_corpus, cfg, quiet=True)
    assert np.isfinite(result.val_ppl) and result.test_ppl is not None


def test_evaluator_rounds_scores_and_pool(tiny_corpus):
    assert "rnn-supernet" in evaluator_names()
    space = get_space("rnn")
    ev = RNNSupernetEvaluator(space, tiny_corpus, supernet_preset("tiny"), seed=0)
    rng = np.random.default_rng(0)
    first = ev.evaluate([space.sample(rng) for _ in range(ev.batch_size)])
    assert ev.batch_size == 2 and len(ev.pool) == 4
    m = first[0].metrics
    assert set(m) == {"val_score", "val_loss", "val_ppl", "val_acc"} and not any(k.startswith("test") for k in m)
    assert m["val_score"] == pytest.approx(-m["val_loss"]) and m["val_ppl"] == pytest.approx(np.exp(m["val_loss"]))
    assert 0.0 <= m["val_acc"] <= 1.0 and first[0].cost_s > 0
    ev.evaluate([space.sample(rng) for _ in range(2)])
    assert len(ev.pool) == 4 and ev.rounds == 2 and len(ev.ranking()) == 4
    # scoring is deterministic and uses the canonical encoding: equivalent encodings score the same
    a = space.sample(rng)
    s1, s2 = ev.score([a, space.augment(a, rng)])
    assert s1["val_loss"] == pytest.approx(s2["val_loss"], abs=1e-6)
    with pytest.raises(ConfigError):
        RNNSupernetEvaluator(get_space("nb201"), tiny_corpus, supernet_preset("tiny"))


def test_search_ptb_writes_a_run(tiny_corpus, tmp_path):
    from nao.presets import preset
    from nao.runs import execute
    from nao.runs.kinds.supernet_rnn import SupernetRnnKind

    kind = SupernetRnnKind(preset("supernet-rnn/tiny", strategy="random", budget=6), corpus=tiny_corpus)
    report = execute(kind, tmp_path / "s", quiet=True)
    assert report["n_evaluated"] == 6 and report["rounds"] == 2
    run = tmp_path / "s"
    for name in ("config.json", "journal.jsonl", "best.json", "supernet.json", "result.json"):
        assert (run / name).exists(), name
    assert len((run / "journal.jsonl").read_text().splitlines()) == 6
    best = json.loads((run / "best.json").read_text())
    scores = [json.loads(line)["metrics"]["val_score"] for line in (run / "journal.jsonl").read_text().splitlines()]
    assert best["metrics"]["val_score"] == pytest.approx(max(scores))


class _Killed(BaseException):
    """Stands for SIGKILL: nothing in nao catches it."""


def _ptb_outcome(run) -> dict:
    """What a PTB search computed, without its timings."""
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    supernet = json.loads((run / "supernet.json").read_text())
    result = json.loads((run / "result.json").read_text())
    return {
        "journal": [(r["arch"], r["metrics"]) for r in journal],
        "rounds": [{k: v for k, v in row.items() if k not in ("tokens_per_s", "seconds")} for row in supernet["history"]],
        "ranking": supernet["ranking"],
        "best": result["best"],
    }


def test_ptb_search_killed_mid_round_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path, monkeypatch, capsys):
    from nao.evaluators.rnn_supernet import RNNSupernetEvaluator

    argv = ["search", "--task", "ptb", "--preset", "tiny", "--data-dir", str(tiny_corpus.root), "--budget", "8",
            "--seed", "1", "--strategy", "random", "-q"]  # rounds of 4 + 2 + 2 (the nao replay: test_ws_search)
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    real, calls = RNNSupernetEvaluator.train_on_pool, []

    def dying(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # round 3's supernet training
            raise _Killed()
        return real(self, *args, **kwargs)

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(RNNSupernetEvaluator, "train_on_pool", dying)
        with pytest.raises(_Killed):
            main([*argv, "--out", str(run)])
    assert len((run / "journal.jsonl").read_text().splitlines()) == 6 and (run / "supernet.pt").exists()
    assert main(["search", "--resume", str(run), "--budget", "9", "-q"]) == 2  # would change the run
    assert "budget 9 conflicts with the run's 8" in capsys.readouterr().err
    assert main(["search", "--resume", str(run), "-q"]) == 0  # the task comes from config.json
    assert _ptb_outcome(run) == _ptb_outcome(tmp_path / "whole")


def test_cli_train_ptb(tiny_corpus, tmp_path, capsys):
    d = str(tiny_corpus.root)
    out = tmp_path / "t"
    argv = ["train", "--task", "ptb", "--arch", "DARTS_V2", "--data-dir", d, "--hidden-size", "8", "--epochs", "1",
            "--batch-size", "4", "--eval-batch-size", "4", "--bptt", "8", "--out", str(out), "-q"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["meta"]["space"] == "rnn-darts" and np.isfinite(metrics["val_ppl"])
    assert main(argv) == 2 and "already holds checkpoint.pt" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(out / "best.pt"), "--data-dir", d]) == 0
    assert '"ppl"' in capsys.readouterr().out
    bad = ["train", "--task", "ptb", "--arch", "Genotype(recurrent=[('relu', 3)])", "--data-dir", d, "--out", str(tmp_path / "b")]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a known recurrent cell name nor a valid genotype" in err[0]
    assert main(["train", "--task", "ptb", "--arch", "NAO", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    assert "corpus directory not found" in capsys.readouterr().err


def test_real_ptb_slice_trains(ptb_dir, tmp_path):
    for split, n in (("train", 200), ("valid", 40), ("test", 40)):
        lines = (ptb_dir / f"ptb.{split}.txt").read_text().splitlines()[:n]
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    corpus = load_corpus(tmp_path)
    space = get_space("rnn")
    cfg = preset("tiny", epochs=1, lr=20.0, clip=0.25)
    model = build_model(cfg.model, len(corpus.vocab), space.decode(space.named("NAO")))
    before = evaluate_lm(model, batchify(corpus.valid, cfg.eval_batch_size), cfg.bptt)[0]
    result = train_lm(model, corpus, cfg, quiet=True)
    assert result.val_loss < before and np.isfinite(result.test_ppl)
