"""Search curves: best-so-far objective, predictions against the truth, rounds, supernet, training.

Every plot of a metric goes through :func:`scale_of`: accuracies (fractions in the library)
are shown in percent, other metrics (perplexity, scores) as they are; rankings go through the
run's :class:`~nao.results.Objective`, so a ``min`` objective (``val_ppl``) is never maximised.

>>> from nao.viz.curves import within_round_taus
>>> within_round_taus([1, 2, 3], [1, 2, 3], [0, 0, 0])
[1.0]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from nao.results import Objective, Result
from nao.viz.style import save as _save

#: The best-so-far label of a supernet run: its scores drift as the shared weights train on.
SUPERNET_LABEL = "supernet score (weights keep training between rounds)"


def scale_of(metric: str) -> float:
    """Display factor: 100 for accuracies (fractions -> percent), else 1.

    >>> scale_of("val_acc"), scale_of("val_ppl")
    (100.0, 1.0)
    """
    return 100.0 if metric.endswith("_acc") else 1.0


def axis_label(metric: str) -> str:
    """``"val_acc (%)"`` for accuracies, the metric name otherwise."""
    return f"{metric} (%)" if scale_of(metric) == 100.0 else metric


def report_metric(objective: Objective) -> str:
    """The test-side counterpart of the objective (``val_ppl`` -> ``test_ppl``), for reports only."""
    return "test_" + objective.metric.removeprefix("val_")


def best_so_far(results: Sequence[Result], objective: Objective | str = "val_acc", report: str | None = None):
    """Per query: the best ``objective`` so far and the ``report`` metric of that best result.

    ``report`` defaults to the objective's test counterpart. Returns ``(best, reported)``
    arrays of length ``len(results)`` (NaN before the first ok result; ``reported`` is ``None``
    when no result has ``report``).
    """
    objective = Objective.of(objective)
    report = report or report_metric(objective)
    best = np.full(len(results), np.nan)
    reported = np.full(len(results), np.nan)
    top: Result | None = None
    for i, r in enumerate(results):
        if objective.value(r) is not None and (top is None or objective.score(r) > objective.score(top)):
            top = r
        if top is not None:
            best[i] = top.metrics[objective.metric]
            reported[i] = top.metrics.get(report, np.nan)
    has_report = any(report in r.metrics for r in results)
    return best, (reported if has_report else None)


def plot_best_so_far(results: Sequence[Result], path: str | os.PathLike, title: str = "",
                     objective: Objective | str = "val_acc", report: str | None = None,
                     score_label: str | None = None, cost_unit: str | None = None) -> Path:
    """Best-so-far ``objective`` against unique queries, every evaluation as a dot; failed ones marked.

    ``score_label``, shown under the title, says where the scores come from (e.g.
    :data:`SUPERNET_LABEL`, so a curve mixing rounds of a still-training supernet says so).
    With ``cost_unit`` the x axis is the cumulative compute (``Result.cost``, in that unit)
    instead: each evaluation is drawn where the compute spent so far ends.
    """
    objective = Objective.of(objective)
    report = report or report_metric(objective)
    k = scale_of(objective.metric)
    x = np.arange(1, len(results) + 1) if cost_unit is None else np.cumsum([r.cost for r in results])
    best, reported = best_so_far(results, objective, report)
    values = np.array([v if (v := objective.value(r)) is not None else np.nan for r in results]) * k
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.scatter(x, values, s=10, color="#9e9e9e", alpha=0.7, label="each evaluation", zorder=2)
    ax.step(x, best * k, where="post", color="#1f77b4", lw=2, label=f"best so far ({objective.mode} {objective.metric})",
            zorder=3)
    if reported is not None:
        ax.step(x, reported * k, where="post", color="#ff7f0e", lw=1.8, ls="--",
                label=f"{report} of the best-so-far architecture", zorder=3)
    curves = np.concatenate([best, reported if reported is not None else []]) * k
    lo, hi = _zoom(curves[np.isfinite(curves)], values[np.isfinite(values)], objective.mode)
    _mark_failures(ax, results, lo, hi, x)
    # Evaluations worse than the zoomed range: counted rather than squeezing the curve flat.
    hidden = int(np.sum(values < lo)) if objective.mode == "max" else int(np.sum(values > hi))
    if hidden:
        where = f"below {lo:.4g}" if objective.mode == "max" else f"above {hi:.4g}"
        ax.text(0.01, 0.01 if objective.mode == "max" else 0.99,
                f"{hidden} evaluation{'s' * (hidden > 1)} {where} not shown",
                transform=ax.transAxes, fontsize=8, color="#757575", va="bottom" if objective.mode == "max" else "top")
    ax.set_ylim(lo, hi)
    if cost_unit is None:
        ax.set_xlim(0, max(len(results), 1) + 1)
        ax.set_xlabel("unique architectures evaluated")
    else:
        ax.set_xlim(0, 1.02 * float(x[-1]) if len(x) and x[-1] > 0 else 1.0)
        ax.set_xlabel(f"cumulative compute ({cost_unit})")
    ax.set_ylabel(axis_label(objective.metric))
    ax.set_title((title or "search progress") + (f"\n{score_label}" if score_label else ""), fontsize=10)
    ax.grid(alpha=0.3)
    # Below the plot: inside, it would hide points or failure marks whatever corner it took.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    return _save(fig, path)


def _mark_failures(ax, results: Sequence[Result], lo: float, hi: float, x: np.ndarray) -> None:
    failed = [x[i] for i, r in enumerate(results) if not r.ok]
    if failed:
        ax.scatter(failed, [lo + 0.02 * (hi - lo)] * len(failed), marker="x", color="#d62728", s=25,
                   label=f"failed ({len(failed)})", zorder=4, clip_on=False)


def _zoom(curves: np.ndarray, values: np.ndarray, mode: str = "max") -> tuple[float, float]:
    """A y-range that shows the curves well: scattered bad evaluations may fall outside it."""
    if mode == "min":  # mirror: the bad tail is then above the curve
        lo, hi = _zoom(-curves, -values, "max")
        return -hi, -lo
    if curves.size == 0 and values.size == 0:
        return 0.0, 100.0
    pool = np.concatenate([curves, values])
    hi = float(np.max(pool))
    lo = float(min(np.min(curves) if curves.size else np.inf, np.percentile(values, 25) if values.size else np.inf))
    # 8% of the span, at least 0.5% of the level: a flat curve still gets visible headroom.
    pad = max(0.08 * (hi - lo), 0.005 * max(abs(hi), abs(lo)), 1e-3)
    return lo - pad, hi + pad


def plot_predicted_vs_true(predicted: Sequence[float], true: Sequence[float], path: str | os.PathLike,
                           title: str = "", xlabel: str = "predicted (normalised score)",
                           rounds: Sequence[int] | None = None, true_metric: str = "val_acc",
                           mode: str = "max") -> Path:
    """Scatter of predictions against the evaluated metric, coloured by round (or proposal order).

    With ``rounds``, the headline is the mean Kendall tau *within* rounds: each round's
    predictions share one normalised scale, while scales of different rounds do not compare,
    so a tau pooled over rounds mixes scales (it is shown too, for reference). Predictions are
    higher-is-better scores, so for a ``min`` objective tau is taken against the negated metric:
    a good controller has tau near +1 either way.
    """
    from scipy.stats import kendalltau, spearmanr

    path = Path(path)
    p, t = np.asarray(predicted, float), np.asarray(true, float) * scale_of(true_metric)
    fig, ax = plt.subplots(figsize=(6, 5))
    colour = np.asarray(rounds) if rounds is not None else np.arange(len(p))
    sc = ax.scatter(p, t, c=colour, cmap="viridis", s=18, alpha=0.85)
    fig.colorbar(sc, ax=ax, label="round" if rounds is not None else "proposal order")
    stats = f"n = {len(p)}"
    t_score = t if mode == "max" else -t  # what the predictions rank: higher is better
    if rounds is not None:
        taus = within_round_taus(p, t_score, rounds)
        if taus:
            stats = f"Kendall τ within rounds: mean {np.mean(taus):.3f} over {len(taus)} rounds; n = {len(p)}"
        if len(p) >= 3:
            stats += f"\n(pooled over rounds τ = {kendalltau(p, t_score)[0]:.3f}: scales differ per round)"
    elif len(p) >= 3:
        tau, spear = kendalltau(p, t_score)[0], spearmanr(p, t_score)[0]
        stats = f"Kendall τ = {tau:.3f}, Spearman ρ = {spear:.3f}, n = {len(p)}"
    if mode == "min":
        stats += f"\n(τ against −{true_metric}: lower is better)"
    ax.set_title((title + "\n" if title else "") + stats, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"evaluated {axis_label(true_metric)}")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def within_round_taus(predicted: Sequence[float], true: Sequence[float], rounds: Sequence[int]) -> list[float]:
    """Kendall tau of predictions against truth inside each round with 3+ distinct values of both.

    >>> within_round_taus([1, 2, 3, 3, 2, 1], [1, 2, 3, 1, 2, 3], [0, 0, 0, 1, 1, 1])
    [1.0, -1.0]
    """
    from scipy.stats import kendalltau

    p, t, r = np.asarray(predicted, float), np.asarray(true, float), np.asarray(rounds)
    out = []
    for k in np.unique(r):
        sel = r == k
        if sel.sum() >= 3 and np.ptp(p[sel]) > 0 and np.ptp(t[sel]) > 0:
            out.append(float(kendalltau(p[sel], t[sel])[0]))
    return out


def plot_by_round(values: Sequence[float], groups: Sequence[int], path: str | os.PathLike, metric: str,
                  group_label: str = "round", title: str = "") -> Path:
    """Distribution of ``metric`` per group (search round): a box per group over its jittered points.

    Shows whether later rounds propose better architectures, which a best-so-far curve hides.
    """
    k = scale_of(metric)
    v, g = np.asarray(values, float) * k, np.asarray(groups)
    keep = np.isfinite(v)
    v, g = v[keep], g[keep]
    labels = sorted(set(g.tolist()))
    data = [v[g == lab] for lab in labels]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(labels) + 2.5), 4.3))
    ax.boxplot(data, positions=range(len(labels)), widths=0.6, showfliers=False,
               medianprops={"color": "#d62728", "lw": 1.6}, boxprops={"color": "#555555"})
    rng = np.random.default_rng(0)  # fixed jitter: the same run gives the same picture
    for i, d in enumerate(data):
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(d)), d, s=9, alpha=0.55, color="#1f77b4", zorder=3)
    step = max(1, len(labels) // 20)  # at most ~20 tick labels
    ax.set_xticks(range(0, len(labels), step), [str(lab) for lab in labels[::step]])
    ax.set_xlabel(group_label)
    ax.set_ylabel(axis_label(metric))
    ax.set_title(title or f"{metric} per {group_label}", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


# Supernet history columns: pool scores (per round) and the supernet's own training metric.
_POOL_KEYS = (("best", "pool best"), ("median", "pool median"),
              ("best_val_ppl", "pool best val_ppl"), ("median_val_ppl", "pool median val_ppl"))
_TRAIN_KEYS = ("train_acc", "train_ppl", "train_loss")


def plot_supernet_history(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, title: str = "",
                          score_metric: str = "val_acc") -> Path:
    """Per round: the pool's best and median score (left) and the supernet's training metric (right).

    Rows are per round (``round``, ``best``, ``median``, ``train_acc`` or ``train_ppl``...); rows of
    older runs that were per epoch are reduced to the last row of each round.
    """
    rows = _last_per_round(rows)
    x = [float(r.get("round", i + 1)) for i, r in enumerate(rows)]
    pool = [(key, label) for key, label in _POOL_KEYS if any(_num(r.get(key)) for r in rows)]
    train = next((key for key in _TRAIN_KEYS if any(_num(r.get(key)) for r in rows)), None)
    panels = int(bool(pool)) + int(train is not None)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(5.2 * max(panels, 1), 3.8), squeeze=False)
    axes = list(axes[0])
    if pool:
        ax = axes.pop(0)
        for (key, label), style in zip(pool, ("-o", "--s", "-o", "--s")):
            metric = score_metric if key in ("best", "median") else "val_ppl"
            ax.plot(x, [_col(r, key) * scale_of(metric) for r in rows], style, ms=3.5, label=label)
        ax.set_ylabel(axis_label(score_metric if pool[0][0] in ("best", "median") else "val_ppl"))
        ax.set_title("pool scores in the supernet", fontsize=9)
        _round_axis(ax)
    if train is not None:
        ax = axes.pop(0)
        ax.plot(x, [_col(r, train) * scale_of(train) for r in rows], "-o", ms=3.5, color="#2ca02c", label=train)
        ax.set_ylabel(axis_label(train))
        ax.set_title("supernet training", fontsize=9)
        _round_axis(ax)
    fig.suptitle(title or "supernet per round", fontsize=10)
    return _save(fig, path)


def _last_per_round(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if not rows or "epoch" not in rows[0] or "round" not in rows[0]:
        return list(rows)
    last: dict[Any, Mapping[str, Any]] = {}
    for r in rows:
        last[r["round"]] = r
    return list(last.values())


def _round_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax.set_xlabel("round")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and np.isfinite(x)


def _col(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key)
    return float(v) if _num(v) else np.nan


# Training-curve panels: metric families, each with its own axis.
_FAMILIES = (("accuracy (%)", "_acc"), ("perplexity", "_ppl"), ("loss", "_loss"))
_SPLIT_STYLES = {"train": "-", "val": "--", "test": ":"}


def plot_training_curves(trainings: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike,
                         title: str = "") -> Path:
    """Per-epoch histories (``nao.train`` ``metrics.json`` rows) of one or more trainings.

    One panel per metric family present (accuracy, perplexity, loss); one colour per training,
    one line style per split (train solid, val dashed, test dotted). A metric measured at few
    epochs (``test_acc`` on the last) shows as markers.
    """
    families = [(name, suffix) for name, suffix in _FAMILIES
                if any(k.endswith(suffix) for rows in trainings.values() for r in rows for k in r)]
    n = max(len(families), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 3.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (family, suffix) in zip(axes[0], families):
        for c, rows in enumerate(trainings.values()):
            for key in sorted({k for r in rows for k in r if k.endswith(suffix)}):
                _plot_metric(ax, rows, key, colours(c % 10), label=key if len(trainings) == 1 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(family)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(trainings) == 1:
            ax.legend(fontsize=8)
    if len(trainings) > 1:  # one legend for all panels: colours name trainings, line styles name splits
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colours(c % 10), lw=2, label=name) for c, name in enumerate(trainings)]
        handles += [Line2D([], [], color="#555555", ls=ls, label=split) for split, ls in _SPLIT_STYLES.items()]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title or "training", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _plot_metric(ax, rows: Sequence[Mapping[str, Any]], key: str, colour: Any, label: str | None) -> None:
    pts = [(float(r.get("epoch", i + 1)), _col(r, key)) for i, r in enumerate(rows) if _num(r.get(key))]
    if not pts:
        return
    xs, ys = zip(*pts)
    sparse = len(pts) == 1 or len(pts) < len(rows) / 2  # e.g. test_acc on the last epoch only
    ax.plot(xs, np.asarray(ys) * scale_of(key), _SPLIT_STYLES.get(key.split("_", 1)[0], "-."), color=colour,
            marker="o" if sparse else None, ms=5, label=label)
