"""The picture of a ``nao bench --fidelity`` simulation: test accuracy against compute and against wall time.

Two panels from one :func:`nao.fidelity.bench.run_fidelity_bench` summary, every arm a line: the
200-epoch test accuracy of the best-validation architecture (of the highest rung reached) against
simulated GPU-hours, mean ± s.e. over the seeds as a band, and against simulated wall hours with
the simulated workers (mean; where each arm's curve ends, its runs ran out of compute). The
``--targets`` accuracies are dotted lines, so the compute each arm needs to reach one reads off
where its curve crosses it.

>>> import tempfile, os
>>> curve = {"x": [1.0, 2.0, 3.0], "mean": [93.0, 94.0, 94.3], "sem": [0.2, 0.1, 0.05]}
>>> summary = {"_settings": {"scheduler": "asha", "eta": 3.0, "sim_workers": 4, "seeds": 2,
...                          "benchmark": "t.csv.gz", "max_gpu_hours": 3.0, "promotion_cost": "restart"},
...            "_targets": [94.3], "nao-mf": {"curve_gpu_hours": curve,
...            "curve_wall_hours": {"x": [0.5, 1.0], "mean": [93.0, 94.3]}}}
>>> len(fidelity_figure(summary).axes)
2
>>> plot_fidelity_bench(summary, os.path.join(tempfile.mkdtemp(), "f.png")).name
'f.png'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from nao.errors import ConfigError
from nao.viz.style import save as _save

# (curve key, x label, panel title) per panel, left to right.
_PANELS = (
    ("curve_gpu_hours", "simulated compute (GPU-hours, the table's training times)", "against compute"),
    ("curve_wall_hours", "simulated wall time (hours)", "against wall time"),
)


def fidelity_figure(summary: dict[str, Any], title: str = ""):
    """The two-panel matplotlib figure of a fidelity-bench ``summary`` (its arms' ``curve_*`` entries)."""
    arms = {k: v for k, v in summary.items() if not k.startswith("_") and "curve_gpu_hours" in v}
    if not arms:
        raise ConfigError("fidelity bench summary has no arm curves ('curve_gpu_hours'); rerun nao bench --fidelity")
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), sharey=True)
    lows: list[float] = []
    tops: list[float] = list(summary.get("_targets") or [])
    for ax, (key, xlabel, panel_title) in zip(axes, _PANELS):
        for c, (arm, entry) in enumerate(arms.items()):
            curve = entry.get(key) or {}
            x = np.asarray(curve.get("x", []), dtype=float)
            mean = np.asarray(curve.get("mean", []), dtype=float)  # None (nothing reported yet) -> NaN
            if not len(x) or not np.isfinite(mean).any():
                continue
            colour = colours(c % 10)
            last = mean[np.isfinite(mean)][-1]
            ax.plot(x, mean, color=colour, lw=1.8, label=f"{arm} ({last:.2f})")
            if "sem" in curve:
                sem = np.nan_to_num(np.asarray(curve["sem"], dtype=float))
                ax.fill_between(x, mean - sem, mean + sem, color=colour, alpha=0.2, lw=0)
            finite = mean[np.isfinite(mean)]
            # The lowest mean after the first tenth: the first minutes' incumbents would squash the rest, but a
            # later dip (a synchronous scheduler's incumbent switching rungs) stays in view.
            lows.append(float(finite[len(finite) // 10:].min()))
            tops.append(float(finite.max()))
        for t in summary.get("_targets") or []:
            ax.axhline(t, color="black", ls=":", lw=1.0)
            ax.annotate(f"{t:.2f}", (1.0, t), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False,
                  title="mean at the end of the budget", title_fontsize=8)
    axes[0].set_ylabel("test accuracy (%) of the best-validation architecture")
    if lows and tops:
        lo, hi = min(lows + list(summary.get("_targets") or [])), max(tops)
        pad = max(0.05 * (hi - lo), 0.05)
        axes[0].set_ylim(lo - pad, hi + pad)
    fig.suptitle(title or _title(summary), fontsize=11)
    fig.tight_layout()
    return fig


def plot_fidelity_bench(summary: dict[str, Any], path: str | os.PathLike, title: str = "") -> Path:
    """Write :func:`fidelity_figure` of ``summary`` as a PNG at ``path``."""
    return _save(fidelity_figure(summary, title), path)


def _title(summary: dict[str, Any]) -> str:
    st = summary.get("_settings") or {}
    eta = st.get("eta")
    eta_text = f" (η {eta:.4g})" if isinstance(eta, (int, float)) else ""
    return (f"{st.get('benchmark', 'table')}: {st.get('scheduler', '?')}{eta_text}, {st.get('sim_workers', '?')} "
            f"simulated workers, promotion cost {st.get('promotion_cost', '?')}; mean ± s.e. over "
            f"{st.get('seeds', '?')} seeds")
