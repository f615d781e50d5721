"""Search curves: best-so-far objective, controller predictions against the truth.

>>> from nao.viz.curves import within_round_taus
>>> within_round_taus([1, 2, 3], [1, 2, 3], [0, 0, 0])
[1.0]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from nao.results import Result
from nao.viz.style import save as _save


def best_so_far(results: Sequence[Result], objective: str = "val_acc", report: str = "test_acc"):
    """Per query: the best ``objective`` so far and the ``report`` metric of that best result.

    Returns ``(best, reported)`` arrays of length ``len(results)`` (NaN before the first ok
    result; ``reported`` is ``None`` when no result has ``report``).
    """
    best = np.full(len(results), np.nan)
    reported = np.full(len(results), np.nan)
    top: Result | None = None
    for i, r in enumerate(results):
        if r.ok and objective in r.metrics and (top is None or r.metrics[objective] > top.metrics[objective]):
            top = r
        if top is not None:
            best[i] = top.metrics[objective]
            reported[i] = top.metrics.get(report, np.nan)
    has_report = any(report in r.metrics for r in results)
    return best, (reported if has_report else None)


def plot_best_so_far(results: Sequence[Result], path: str | os.PathLike, title: str = "",
                     objective: str = "val_acc", report: str = "test_acc") -> Path:
    """Best-so-far ``objective`` (percent) against unique queries; failed evaluations marked."""
    path = Path(path)
    x = np.arange(1, len(results) + 1)
    best, reported = best_so_far(results, objective, report)
    values = np.array([r.metrics.get(objective, np.nan) if r.ok else np.nan for r in results]) * 100
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.scatter(x, values, s=10, color="#9e9e9e", alpha=0.7, label=f"each evaluation ({objective})", zorder=2)
    ax.step(x, best * 100, where="post", color="#1f77b4", lw=2, label=f"best so far ({objective})", zorder=3)
    if reported is not None:
        ax.step(x, reported * 100, where="post", color="#ff7f0e", lw=1.8, ls="--",
                label=f"{report} of the best-so-far architecture", zorder=3)
    curves = np.concatenate([best, reported if reported is not None else []]) * 100
    finite = curves[np.isfinite(curves)]
    lo, hi = _zoom(finite, values[np.isfinite(values)])
    failed = [i + 1 for i, r in enumerate(results) if not r.ok]
    if failed:
        ax.scatter(failed, [lo + 0.02 * (hi - lo)] * len(failed), marker="x", color="#d62728", s=25,
                   label=f"failed ({len(failed)})", zorder=4, clip_on=False)
    hidden = int(np.sum(values < lo))
    if hidden:
        ax.text(0.01, 0.01, f"{hidden} evaluations below {lo:.1f}% not shown", transform=ax.transAxes,
                fontsize=8, color="#757575", va="bottom")
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, max(len(results), 1) + 1)
    ax.set_xlabel("unique architectures evaluated")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "search progress")
    ax.grid(alpha=0.3)
    # Below the plot: inside, it would hide points or failure marks whatever corner it took.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    return _save(fig, path)


def _zoom(curves: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """A y-range that shows the curves well: scattered bad evaluations may fall below it."""
    if curves.size == 0 and values.size == 0:
        return 0.0, 100.0
    pool = np.concatenate([curves, values])
    hi = float(np.max(pool))
    lo = float(min(np.min(curves) if curves.size else np.inf, np.percentile(values, 25) if values.size else np.inf))
    pad = max(0.5, 0.08 * (hi - lo))
    return lo - pad, hi + pad


def plot_predicted_vs_true(predicted: Sequence[float], true: Sequence[float], path: str | os.PathLike,
                           title: str = "", xlabel: str = "predicted (normalised score)",
                           rounds: Sequence[int] | None = None) -> Path:
    """Scatter of predictions against evaluated accuracy, coloured by round (or proposal order).

    With ``rounds``, the headline is the mean Kendall tau *within* rounds: each round's
    predictions share one normalised scale, while scales of different rounds do not compare,
    so a tau pooled over rounds mixes scales (it is shown too, for reference).
    """
    from scipy.stats import kendalltau, spearmanr

    path = Path(path)
    p, t = np.asarray(predicted, float), np.asarray(true, float) * 100
    fig, ax = plt.subplots(figsize=(6, 5))
    colour = np.asarray(rounds) if rounds is not None else np.arange(len(p))
    sc = ax.scatter(p, t, c=colour, cmap="viridis", s=18, alpha=0.85)
    fig.colorbar(sc, ax=ax, label="round" if rounds is not None else "proposal order")
    stats = f"n = {len(p)}"
    if rounds is not None:
        taus = within_round_taus(p, t, rounds)
        if taus:
            stats = f"Kendall τ within rounds: mean {np.mean(taus):.3f} over {len(taus)} rounds; n = {len(p)}"
        if len(p) >= 3:
            stats += f"\n(pooled over rounds τ = {kendalltau(p, t)[0]:.3f}: scales differ per round)"
    elif len(p) >= 3:
        tau, spear = kendalltau(p, t)[0], spearmanr(p, t)[0]
        stats = f"Kendall τ = {tau:.3f}, Spearman ρ = {spear:.3f}, n = {len(p)}"
    ax.set_title((title + "\n" if title else "") + stats, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("evaluated validation accuracy (%)")
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
