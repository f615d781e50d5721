"""Accuracy against cost: every evaluated candidate, its Pareto front, and the front as a table.

A candidate is on the front when no other one is at least as cheap *and* at least as good
with one of the two strictly better. Costs are what the run's journal already records per
candidate (``params_m`` from a table or a built network, ``flops_m`` where known); goodness is
the run's :class:`~nao.results.Objective` (higher ``val_acc``, lower ``val_ppl``), so nothing
here flips a sign by hand. The report (:mod:`nao.viz.report`) calls :func:`pareto_section`.

>>> pareto_front([1.0, 2.0, 3.0, 2.0], [0.5, 0.7, 0.6, 0.4])
[0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from nao.results import Objective, Result
from nao.viz.curves import _zoom, axis_label, report_metric, scale_of
from nao.viz.style import save as _save

if TYPE_CHECKING:
    from nao.viz.rundata import RunData

#: Per-candidate cost metrics a front is drawn against, when the journal has them.
COST_METRICS = ("params_m", "flops_m")
_COST_LABELS = {"params_m": "parameters (millions)", "flops_m": "multiply-adds per image (millions)"}
# A front longer than this is cut in the report's table (the picture still shows all of it).
_MAX_TABLE_ROWS = 25
# Up to this many candidates every one is in view; beyond, the y-range zooms on the front.
_SHOW_ALL = 20


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points (lower cost, higher score), in increasing cost.

    Points with a non-finite cost or score are ignored; of points equal in both, the first is kept.

    >>> pareto_front([1, 1, 2], [0.3, 0.3, 0.9])
    [0, 2]
    """
    c, s = np.asarray(costs, float), np.asarray(scores, float)
    keep = np.flatnonzero(np.isfinite(c) & np.isfinite(s))
    # Cheapest first; among equal costs the best first; stable, so earlier indices win exact ties.
    order = keep[np.lexsort((-s[keep], c[keep]))]
    front: list[int] = []
    top = -math.inf
    for i in order:
        if s[i] > top:  # strictly better than everything cheaper or equally cheap
            front.append(int(i))
            top = s[i]
    return front


def cost_metrics(results: Sequence[Result], objective: Objective) -> list[str]:
    """The :data:`COST_METRICS` known for at least two ok results that also have the objective."""
    ok = [r for r in results if r.ok and objective.metric in r.metrics]
    return [m for m in COST_METRICS if sum(_finite(r.metrics.get(m)) for r in ok) >= 2]


def candidate_front(results: Sequence[Result], objective: Objective, cost: str) -> tuple[list[int], list[int]]:
    """``(candidates, front)``: indices into ``results`` of the ok ones with ``cost`` and the objective,
    and of those on the Pareto front (increasing cost)."""
    cands = [i for i, r in enumerate(results)
             if r.ok and _finite(r.metrics.get(cost)) and _finite(r.metrics.get(objective.metric))]
    costs = [results[i].metrics[cost] for i in cands]
    scores = [objective.score(results[i]) for i in cands]
    return cands, [cands[j] for j in pareto_front(costs, scores)]


def plot_accuracy_vs_cost(results: Sequence[Result], path: str | Path, objective: Objective | str = "val_acc",
                          costs: Sequence[str] | None = None, title: str = "",
                          bounds: dict[str, float] | None = None) -> Path:
    """One panel per cost metric: every evaluated candidate, the Pareto front as a line, the search's best.

    ``bounds`` maps a cost metric to a constraint's bound, drawn as a vertical line.
    """
    objective = Objective.of(objective)
    costs = list(costs) if costs is not None else cost_metrics(results, objective)
    k = scale_of(objective.metric)
    fig, axes = plt.subplots(1, max(len(costs), 1), figsize=(6.4 * max(len(costs), 1), 4.6), squeeze=False)
    handles = None
    for ax, cost in zip(axes[0], costs):
        cands, front = candidate_front(results, objective, cost)
        x = np.array([results[i].metrics[cost] for i in cands])
        y = np.array([results[i].metrics[objective.metric] for i in cands]) * k
        fx = np.array([results[i].metrics[cost] for i in front])
        fy = np.array([results[i].metrics[objective.metric] for i in front]) * k
        ax.scatter(x, y, s=12, color="#9e9e9e", alpha=0.6, label=f"evaluated ({len(cands)})", zorder=2)
        # The front as a staircase: what the best candidate at most this cost achieves.
        ax.step(fx, fy, where="post", color="#d62728", lw=1.4, alpha=0.8, zorder=3)
        ax.scatter(fx, fy, s=34, color="#d62728", edgecolor="black", lw=0.5,
                   label=f"Pareto front ({len(front)})", zorder=4)
        best = max(cands, key=lambda i: objective.score(results[i]))
        ax.scatter([results[best].metrics[cost]], [results[best].metrics[objective.metric] * k], marker="*", s=220,
                   color="#ffbf00", edgecolor="black", lw=0.7, label=f"best {objective.metric}", zorder=5)
        if bounds and cost in bounds:
            ax.axvline(bounds[cost], color="#1f77b4", ls="--", lw=1.2, label=f"bound {cost} {bounds[cost]:g}")
        # Many candidates: zoom on the front (a long bad tail would squash it); a few: show every one.
        lo, hi = _zoom(fy, y, objective.mode) if len(y) > _SHOW_ALL else _zoom(y, y, objective.mode)
        hidden = int(np.sum(y < lo)) if objective.mode == "max" else int(np.sum(y > hi))
        if hidden:
            ax.text(0.99, 0.01 if objective.mode == "max" else 0.99,
                    f"{hidden} worse candidate{'s' * (hidden > 1)} not shown",
                    transform=ax.transAxes, ha="right", va="bottom" if objective.mode == "max" else "top",
                    fontsize=8, color="#757575")
        ax.set_ylim(lo, hi)
        if x.min() > 0 and x.max() / x.min() > 30:  # costs over orders of magnitude: spread them out
            ax.set_xscale("log")
        ax.set_xlabel(f"{cost}: {_COST_LABELS.get(cost, cost)}")
        ax.set_ylabel(axis_label(objective.metric))
        ax.grid(alpha=0.3)
        handles = ax.get_legend_handles_labels()
    if handles:
        fig.legend(*handles, loc="lower center", ncol=len(handles[0]), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title or f"{objective.metric} against cost", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path)


def front_table(results: Sequence[Result], objective: Objective, cost: str, space_format=None) -> list[str]:
    """The front as Markdown rows: cost, objective, its test counterpart when known, query, architecture."""
    from nao.viz.report import fmt_metric

    _, front = candidate_front(results, objective, cost)
    test = report_metric(objective)
    has_test = any(test in results[i].metrics for i in front)
    head = f"| {cost} | {objective.metric} |" + (f" {test} |" if has_test else "") + " query | architecture |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for i in front[:_MAX_TABLE_ROWS]:
        r = results[i]
        arch = space_format(r.arch) if space_format else " ".join(map(str, r.arch.tokens))
        arch = arch.replace("|", "\\|")  # a bare | inside a table cell ends the cell, even in a code span
        lines.append(f"| {r.metrics[cost]:.4g} | {fmt_metric(objective.metric, r.metrics[objective.metric])} |"
                     + (f" {fmt_metric(test, r.metrics.get(test))} |" if has_test else "")
                     + f" {i + 1} | `{arch}` |")
    if len(front) > _MAX_TABLE_ROWS:
        lines.append(f"| … {len(front) - _MAX_TABLE_ROWS} more | | " + ("| " if has_test else "") + "| |")
    return lines


def pareto_section(run: RunData, out: Path) -> list[str]:
    """The report's "Accuracy against cost" section (empty when the journal has no per-candidate cost)."""
    from nao.constraints import Constraint
    from nao.errors import ConfigError
    from nao.spaces import get_space

    costs = cost_metrics(run.results, run.objective)
    if not costs:
        return []
    bounds: dict[str, float] = {}
    if isinstance(run.config.get("constraint"), str):
        try:
            c = Constraint.parse(run.config["constraint"])
            bounds[c.metric] = c.bound
        except ConfigError:  # a report never fails on an odd config: the bound is just not drawn
            pass
    plot_accuracy_vs_cost(run.results, out / "pareto.png", run.objective, costs, bounds=bounds,
                          title=f"{run.objective.metric} against cost: {run.space_name} · "
                                f"{run.config.get('strategy', '?')} · seed {run.config.get('seed')}")
    space = get_space(run.space_name)
    lines = ["## Accuracy against cost", "",
             f"Every evaluated candidate; the Pareto front (no other candidate is at least as cheap and at least "
             f"as good by {run.objective.metric}) is marked.", "", "![accuracy against cost](pareto.png)"]
    for cost in costs:
        lines += ["", f"Pareto front by {cost}:", "", *front_table(run.results, run.objective, cost, space.format)]
    return lines


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
