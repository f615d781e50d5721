"""The picture of a ``nao bench`` comparison: best-so-far against queries, every strategy, ± s.e. bands.

Two panels from one :func:`nao.bench.run_bench` summary: the search's own objective (the best
validation accuracy found) and what is reported for it (the test accuracy of that
best-validation architecture), each with the table's optimum, or the feasible optimum under
a constraint, as a horizontal line.

>>> import tempfile, os
>>> curve = {"val_mean": [80.0, 85.0, 90.0], "val_sem": [1.0, 0.5, 0.2],
...          "test_mean": [81.0, 86.0, 91.0], "test_sem": [1.0, 0.5, 0.2]}
>>> summary = {"random": {"3": {"per_seed": [91.0, 91.0]}}, "_curves": {"random": curve},
...            "_optimum": {"best_val": 91.6, "test_of_best_val": 93.4, "constraint": None}}
>>> fig = bench_figure(summary)
>>> len(fig.axes)
2
>>> plot_bench(summary, os.path.join(tempfile.mkdtemp(), "bench.png")).name
'bench.png'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from nao.errors import ConfigError
from nao.viz.style import save as _save

# (curve key, optimum key, panel title) per panel, left to right.
_PANELS = (
    ("val", "best_val", "search objective: best validation accuracy found"),
    ("test", "test_of_best_val", "reported: test accuracy of the best-validation architecture"),
)


def bench_figure(summary: dict[str, Any], title: str = ""):
    """The two-panel matplotlib figure of ``summary`` (needs its ``"_curves"``)."""
    curves = summary.get("_curves")
    if not curves:
        raise ConfigError("bench summary has no per-query curves ('_curves'); rerun nao bench to plot it")
    optimum = summary.get("_optimum") or summary.get("_constraint") or {}
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), sharex=True)
    for ax, (part, opt_key, panel_title) in zip(axes, _PANELS):
        tops: list[float] = []
        for c, (strategy, curve) in enumerate(curves.items()):
            mean = np.asarray(curve[f"{part}_mean"], dtype=float)  # None (no value yet) -> NaN
            sem = np.asarray(curve[f"{part}_sem"], dtype=float)
            x = np.arange(1, len(mean) + 1)
            colour = colours(c % 10)
            ax.plot(x, mean, color=colour, lw=1.8, label=f"{strategy} ({mean[-1]:.2f} ± {sem[-1]:.2f})")
            ax.fill_between(x, mean - sem, mean + sem, color=colour, alpha=0.2, lw=0)
            tops.append(float(np.nanmax(mean + sem)))
        if isinstance(optimum.get(opt_key), (int, float)):
            where = f"feasible optimum under {optimum['constraint']}" if optimum.get("constraint") else "table optimum"
            what = "" if part == "val" else ", test of the best-val row"
            ax.axhline(optimum[opt_key], color="black", ls="--", lw=1.1, label=f"{where} ({optimum[opt_key]:.2f}{what})")
            tops.append(float(optimum[opt_key]))
        ax.set_ylim(*_y_range(curves, part, max(tops)))
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("unique architectures queried")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        # Below the panel: inside, it would cover some strategy's band whatever corner it took.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False,
                  title="mean ± s.e. at the budget", title_fontsize=8)
    seeds = _seeds(summary)
    fig.suptitle(title or f"best so far, mean ± s.e. over {seeds} seeds", fontsize=11)
    fig.tight_layout()
    return fig


def plot_bench(summary: dict[str, Any], path: str | os.PathLike, title: str = "") -> Path:
    """Write :func:`bench_figure` of ``summary`` as a PNG at ``path``."""
    return _save(bench_figure(summary, title), path)


def _y_range(curves: dict[str, dict], part: str, top: float) -> tuple[float, float]:
    """From the lowest strategy mean a tenth of the way in (the first queries are random draws that
    would squash the rest) to just above the best curve or optimum."""
    lows = []
    for curve in curves.values():
        mean = np.asarray(curve[f"{part}_mean"], dtype=float)
        sem = np.asarray(curve[f"{part}_sem"], dtype=float)
        i = min(len(mean) - 1, max(0, len(mean) // 10))
        if np.isfinite(mean[i]):
            lows.append(mean[i] - np.nan_to_num(sem[i]))
    lo = min(lows) if lows else top - 10.0
    pad = max(0.05 * (top - lo), 0.1)
    return lo - pad, top + pad


def _seeds(summary: dict[str, Any]) -> int:
    for name, per in summary.items():
        if not name.startswith("_"):
            first = next(iter(per.values()), {})
            return len(first.get("per_seed", []))
    return 0
