"""Accuracy against cost: the Pareto front on hand-made points, and its picture and table in ``nao report``."""

from __future__ import annotations

import itertools

import matplotlib.image as mpimg
import numpy as np
import pytest

from nao.cli import main
from nao.journal import Journal
from nao.results import Objective, Result
from nao.rundir import RunDir
from nao.spaces import get_space
from nao.viz.pareto import candidate_front, cost_metrics, pareto_front


def _brute_front(costs, scores) -> set[int]:
    """Non-dominated indices by definition (first of exact duplicates kept)."""
    out = set()
    for i, (c, s) in enumerate(zip(costs, scores)):
        dominated = any((c2 <= c and s2 >= s and (c2 < c or s2 > s)) or (c2 == c and s2 == s and j < i)
                        for j, (c2, s2) in enumerate(zip(costs, scores)) if j != i)
        if not dominated:
            out.add(i)
    return out


def test_pareto_front_hand_made():
    # cost, score: (1, .5) and (2, .7) and (4, .9) are the front; (3, .6) is beaten by (2, .7); (2, .4) by (1, .5).
    costs = [2.0, 1.0, 3.0, 4.0, 2.0]
    scores = [0.7, 0.5, 0.6, 0.9, 0.4]
    assert pareto_front(costs, scores) == [1, 0, 3]
    # Ties: equal cost keeps the better; an exact duplicate keeps the first; NaN is ignored.
    assert pareto_front([1, 1, 1], [0.2, 0.3, 0.3]) == [1]
    assert pareto_front([1, np.nan, 2], [0.1, 0.9, np.nan]) == [0]
    assert pareto_front([], []) == []
    # A point both cheapest and best is the whole front.
    assert pareto_front([0.5, 1.0, 2.0], [0.9, 0.8, 0.85]) == [0]


def test_pareto_front_matches_definition_on_random_points():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        costs = rng.integers(0, 8, n).astype(float)  # few distinct values: many ties
        scores = rng.integers(0, 8, n).astype(float)
        front = pareto_front(costs, scores)
        assert set(front) == _brute_front(costs, scores)
        assert list(costs[front]) == sorted(costs[front]) and list(scores[front]) == sorted(scores[front])


def test_front_of_a_min_objective_uses_its_direction():
    space = get_space("nb201")
    archs = [space.make(t) for t in itertools.islice(itertools.product(range(5), repeat=6), 4)]
    # Perplexity: lower is better. (1, 90) and (2, 80) are the front; (3, 85) is beaten by (2, 80).
    results = [Result(archs[0], "ok", {"val_ppl": 90.0, "params_m": 1.0}),
               Result(archs[1], "ok", {"val_ppl": 80.0, "params_m": 2.0}),
               Result(archs[2], "ok", {"val_ppl": 85.0, "params_m": 3.0}),
               Result.failed(archs[3], "diverged")]
    objective = Objective("val_ppl", "min")
    assert cost_metrics(results, objective) == ["params_m"]
    cands, front = candidate_front(results, objective, "params_m")
    assert cands == [0, 1, 2] and front == [0, 1]


@pytest.fixture
def tabular_run(nb201_path, tmp_path):
    run = tmp_path / "run"
    assert main(["search", "--benchmark", str(nb201_path), "--strategy", "random", "--budget", "30", "--seed", "1",
                 "--out", str(run), "-q"]) == 0
    return run


def test_report_draws_accuracy_against_cost(tabular_run, capsys):
    assert main(["report", str(tabular_run)]) == 0
    assert "pareto.png" in capsys.readouterr().out
    img = mpimg.imread(tabular_run / "report" / "pareto.png")
    assert img.shape[0] > 300 and img.shape[1] > 400 and img[..., :3].std() > 0.05
    md = (tabular_run / "report" / "report.md").read_text()
    assert "## Accuracy against cost" in md and "Pareto front by params_m" in md
    # The table's rows are exactly the front computed from the journal, cheapest first.
    space = get_space("nb201")
    from nao.journal import read_journal

    results = read_journal(tabular_run / "journal.jsonl", space)
    costs = [r.metrics["params_m"] for r in results]
    scores = [r.metrics["val_acc"] for r in results]
    front = pareto_front(costs, scores)
    table = md.split("Pareto front by params_m:")[1].strip().splitlines()[2:]
    table = [row for row in table if row.startswith("| ")]
    assert len(table) == len(front)
    for row, i in zip(table, front):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert float(cells[0]) == pytest.approx(costs[i], rel=1e-3)
        assert cells[1] == f"{100 * scores[i]:.2f}%" and cells[3] == str(i + 1)
        assert space.format(results[i].arch).replace("|", "\\|") in row


def test_report_without_costs_has_no_pareto_section(tmp_path):
    space = get_space("nb201")
    rd = RunDir.create(tmp_path / "run", {"space": "nb201", "strategy": "random", "seed": 0})
    rng = np.random.default_rng(0)
    with Journal(rd.journal_path, space) as j:
        for _ in range(6):
            j.append(Result(space.sample(rng), "ok", {"val_acc": float(rng.uniform(0.5, 0.9))}))
    assert main(["report", str(rd.path), "-q"]) == 0
    assert not (rd.path / "report" / "pareto.png").exists()
    assert "Accuracy against cost" not in (rd.path / "report" / "report.md").read_text()
