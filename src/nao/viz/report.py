"""``write_report``: ``report.md`` and PNG plots for a run directory of any kind.

The run is read by :func:`nao.viz.rundata.load_run` (every kind, old formats included); each
section below renders what the run has and is left out otherwise:

summary (kind, objective, scores' source, best by the objective, winner, final test metric) ·
best-so-far curve · accuracy against cost (Pareto front) · objective per round · controller predictions · supernet per round ·
rerank table · final training · candidates' training · the winner's cell.

>>> from nao.viz.report import fmt_metric
>>> fmt_metric("val_acc", 0.9312), fmt_metric("val_ppl", 81.234), fmt_metric("val_score", -4.41)
('93.12%', '81.23', '-4.41')
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nao.errors import NaoError
from nao.viz.cells import draw_architecture
from nao.viz.curves import (
    SUPERNET_LABEL,
    plot_best_so_far,
    plot_by_round,
    plot_predicted_vs_true,
    plot_supernet_history,
    plot_training_curves,
    report_metric,
    scale_of,
)
from nao.viz.pareto import pareto_section
from nao.viz.rundata import RunData, Training, load_run

# How many candidates' training curves one plot shows before it stops being readable.
_MAX_CANDIDATE_CURVES = 5


def write_report(run_dir: str | os.PathLike) -> Path:
    """Plots and ``report.md`` for a run directory, into ``run_dir/report``; returns report.md's path."""
    run = load_run(run_dir)
    out = run.path / "report"
    out.mkdir(exist_ok=True)
    lines = [f"# Search report: `{run.path}`", "", *_summary(run)]
    sections: list[Callable[[RunData, Path], list[str]]] = [
        _progress, pareto_section, _by_round, _predictions, _supernet, _rerank, _final, _candidates, _cell,
    ]
    if not run.results:
        lines += ["", "The journal is empty: nothing was evaluated yet."]
    for section in sections:
        body = section(run, out)
        if body:
            lines += ["", *body]
    report = out / "report.md"
    report.write_text("\n".join(lines).rstrip() + "\n")
    return report


def fmt_metric(name: str, value: Any) -> str:
    """A metric for people: accuracies in percent, others with 4 significant digits; ``?`` if missing."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "?"
    return f"{100 * value:.2f}%" if scale_of(name) == 100.0 else f"{value:.4g}"


def _duration(seconds: Any) -> str | None:
    if not isinstance(seconds, (int, float)):
        return None
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _summary(run: RunData) -> list[str]:
    c, obj = run.config, run.objective
    failed = sum(not r.ok for r in run.results)
    rows: list[tuple[str, Any]] = [
        ("kind", run.kind),
        ("objective", f"{obj.metric} ({obj.mode}imise)"),
        ("scores from", run.scores_from),
        ("space", c.get("space")),
        ("strategy", c.get("strategy")),
        ("evaluator", c.get("evaluator")),
        ("seed", c.get("seed")),
        ("budget", c.get("budget")),
        ("evaluated", f"{len(run.results)} ({failed} failed)"),
        ("evaluation cost", _duration(sum(r.cost_s for r in run.results))),
        ("compute", _compute(run)),
        ("search time", _duration(run.result.get("search_s"))),
        ("total time", _duration(run.result.get("total_s"))),
        ("version / git", f"{run.manifest.get('nao_version', '?')} / {(run.manifest.get('git_revision') or '?')[:10]}"),
    ]
    if run.best is not None:
        value = run.best.metrics[obj.metric]
        rows.append((f"best {obj.metric}", f"{fmt_metric(obj.metric, value)} (query {run.results.index(run.best) + 1})"))
        test = report_metric(obj)
        if test in run.best.metrics:
            rows.append((f"its {test}", fmt_metric(test, run.best.metrics[test])))
    if run.winner and (run.final or run.rerank):
        rows.append(("winner", f"`{run.winner}`"))
    if run.final:
        rows += [(f"final {k}", fmt_metric(k, v)) for k, v in run.final.get("metrics", {}).items() if k.startswith("test")]
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows if v is not None]]


def _cost_unit(run: RunData) -> str | None:
    """The run's compute unit when its evaluations recorded compute (``None`` for older runs)."""
    if not any(r.cost > 0 for r in run.results):
        return None
    return run.result.get("cost_unit") or "cost"


def _compute(run: RunData) -> str | None:
    unit = _cost_unit(run)
    if unit is None:
        return None
    bound, total = run.config.get("max_cost"), sum(r.cost for r in run.results)
    text = f"{total:,.0f} {unit}" if total >= 1000 else f"{total:.4g} {unit}"
    if unit == "gpu_s":
        text += f" ({total / 3600:.1f} GPU-h)"
    return text + (f", max_cost {bound:,.6g}" if bound else "")


def _progress(run: RunData, out: Path) -> list[str]:
    if not run.results:
        return []
    supernet = run.scores_from == "supernet"
    title = f"{run.space_name} · {run.config.get('strategy', '?')} · seed {run.config.get('seed')}"
    score_label = SUPERNET_LABEL if supernet else None
    plot_best_so_far(run.results, out / "best_so_far.png", title=title, objective=run.objective,
                     score_label=score_label)
    lines = ["## Progress", "", f"![best-so-far {run.objective.metric}](best_so_far.png)"]
    unit = _cost_unit(run)
    if unit is not None:
        plot_best_so_far(run.results, out / "best_so_far_cost.png", title=title, objective=run.objective,
                         score_label=score_label, cost_unit=unit)
        lines += ["", f"Against the compute spent ({unit}, each evaluation's `cost` in the journal):", "",
                  f"![best-so-far {run.objective.metric} against compute](best_so_far_cost.png)"]
    if supernet:
        lines += ["", "Scores come from the weight-sharing supernet, whose weights keep training between rounds: "
                  "scores of different rounds are not on one scale, so the curve mixes them."]
    if run.best is not None:
        lines += ["", f"Best by {run.objective.metric} ({run.objective.mode}):", "", "```",
                  _format(run, run.best.arch), "```"]
    return lines


def _format(run: RunData, arch) -> str:
    from nao.spaces import get_space

    return get_space(run.space_name).format(arch)


def _by_round(run: RunData, out: Path) -> list[str]:
    """The objective's distribution per round (or per block of evaluations when rounds are unknown)."""
    metric = run.objective.metric
    pairs = [(r.metrics[metric], g) for r, g in zip(run.results, run.rounds) if r.ok and metric in r.metrics]
    if len(pairs) < 4:
        return []
    if all(g is not None for _, g in pairs):
        values, groups = zip(*pairs)
        label, how = "round", "by search round"
    elif any(g is not None for _, g in pairs):  # a predictor's rounds; the rest is its random seed pool
        values = tuple(v for v, _ in pairs)
        groups = tuple(0 if g is None else g + 1 for _, g in pairs)
        label, how = "round (0: random seed pool)", "by search round"
    else:  # no rounds recorded: blocks of evaluation order, about 10 of them
        block = max(3, math.ceil(len(pairs) / 10))  # a box of fewer points says little
        values = tuple(v for v, _ in pairs)
        groups = tuple(i // block + 1 for i in range(len(pairs)))
        label, how = f"block of {block} evaluations (in order)", f"by blocks of {block} evaluations in order"
    if len(set(groups)) < 2:
        return []
    plot_by_round(values, groups, out / "by_round.png", metric, group_label=label,
                  title=f"{metric} of the evaluated architectures, {how}")
    return ["## Objective per round", "", f"![{metric} per round](by_round.png)"]


def _predictions(run: RunData, out: Path) -> list[str]:
    lines = ["## Controller predictions", ""]
    preds = run.predictions
    if not preds:
        return [*lines, "This run recorded no predictions (only the `nao` strategy makes them; "
                "`predictions.json` is written at the end of a search)."]
    has_rounds = all("round" in p for p in preds)
    plot_predicted_vs_true([p["predicted"] for p in preds], [p["true"] for p in preds], out / "predicted_vs_true.png",
                           title=f"controller prediction at proposal vs evaluated {run.objective.metric}",
                           rounds=[p["round"] for p in preds] if has_rounds else None,
                           true_metric=run.objective.metric, mode=run.objective.mode)
    return [*lines, f"{len(preds)} architectures proposed by the controller. Predictions are in the normalised "
            "scale of the round that made them, so compare ranks, not values.", "",
            "![predicted vs true](predicted_vs_true.png)"]


def _supernet(run: RunData, out: Path) -> list[str]:
    if not run.supernet_history:
        return []
    plot_supernet_history(run.supernet_history, out / "supernet.png", score_metric=run.objective.metric,
                          title=f"{run.kind}: the supernet per round")
    return ["## Supernet", "", f"{len(run.supernet_history)} rows in `supernet.json`.", "",
            "![supernet per round](supernet.png)"]


def _rerank(run: RunData, out: Path) -> list[str]:
    if not run.rerank:
        return []
    val = next((k for r in run.rerank for k in (r.get("metrics") or {}) if k.startswith("val")), "val_acc")
    lines = ["## Rerank", "", "The top of the search retrained briefly from scratch; the winner is marked ★.", "",
             f"| | architecture | search score | status | {val} | time |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(run.rerank, 1):
        mark = " ★" if r.get("arch") and r.get("arch") == run.winner else ""
        status = r.get("status") or "?"
        if r.get("error"):
            status += f": {str(r['error'])[:80]}"
        lines.append(f"| {i}{mark} | `{r.get('arch')}` | {fmt_metric(run.objective.metric, r.get('search_score'))} | "
                     f"{status} | {fmt_metric(val, (r.get('metrics') or {}).get(val))} | {_duration(r.get('seconds')) or '?'} |")
    return lines


def _final(run: RunData, out: Path) -> list[str]:
    if not run.final and run.final_training is None:
        return []
    final = run.final or {}
    lines = ["## Final training", ""]
    tests = {k: v for k, v in (final.get("metrics") or {}).items() if k.startswith("test")}
    facts = [f"status {final.get('status') or (run.final_training and run.final_training.status) or '?'}"]
    facts += [f"{k} **{fmt_metric(k, v)}**" for k, v in tests.items()]
    if final.get("epochs") is not None:
        facts.append(f"{final['epochs']} epochs")
    if _duration(final.get("seconds")):
        facts.append(_duration(final.get("seconds")))
    if final.get("error"):
        facts.append(f"error: {final['error']}")
    lines += ["The winner trained from scratch: " + ", ".join(facts) + "."]
    training = run.final_training
    if training is not None and training.history:
        plot_training_curves({"final": training.history}, out / "final_training.png",
                             title=f"final training ({len(training.history)} epochs)")
        lines += ["", "![final training](final_training.png)"]
    return lines


def _candidates(run: RunData, out: Path) -> list[str]:
    trained = [t for t in run.candidates if t.history]
    if not trained:
        return []
    shown = sorted(trained, key=lambda t: _last_score(run, t), reverse=True)[:_MAX_CANDIDATE_CURVES]
    plot_training_curves({t.name: t.history for t in shown}, out / "candidates.png",
                         title=f"training of the best {len(shown)} of {len(trained)} candidates")
    lines = ["## Trained candidates", "", f"{len(trained)} candidates trained; the best {len(shown)} by their last "
             f"{run.objective.metric}:", "", "![candidates' training](candidates.png)", ""]
    lines += [f"- `{t.name}` ({t.status}): `{t.arch}`" for t in shown]
    return lines


def _last_score(run: RunData, training: Training) -> float:
    """The candidate's last recorded objective, higher is better (``-inf`` when absent)."""
    values = [r[run.objective.metric] for r in training.history if isinstance(r.get(run.objective.metric), (int, float))]
    if not values:
        return -math.inf
    return values[-1] if run.objective.mode == "max" else -values[-1]


def _cell(run: RunData, out: Path) -> list[str]:
    """The winner's cell (the run's answer), else the search's best."""
    from nao.spaces import get_space

    space = get_space(run.space_name)
    try:
        if run.winner and (run.final or run.rerank):  # retrained: the run's answer may not be the search's best
            arch, what = space.parse(run.winner), "winner"
        elif run.winner:
            arch, what = space.parse(run.winner), "best architecture"
        elif run.best is not None:
            arch, what = run.best.arch, "best architecture"
        else:
            return []
    except NaoError as e:
        return ["## Cell", "", f"(no diagram: {e})"]
    heading = f"## {what[0].upper() + what[1:]}"
    value = f"{run.objective.metric} {fmt_metric(run.objective.metric, run.best.metrics[run.objective.metric])}" \
        if run.best is not None and run.best.arch == arch else None
    title = f"{what} of {len(run.results)}" + (f": {value}" if value else "")
    try:
        draw_architecture(space, arch, out / "best_cell.png", title=title)
    except NaoError as e:
        return [heading, "", "```", space.format(arch), "```", "", f"(no diagram: {e})"]
    return [heading, "", "```", space.format(arch), "```", "", f"![{what} cell](best_cell.png)"]
