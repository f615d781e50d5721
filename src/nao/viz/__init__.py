"""Plots, cell diagrams and run reports (matplotlib, Agg backend only).

- :mod:`nao.viz.curves`: best-so-far objective against queries, the controller's predictions
  against the truth, per-round distributions, supernet history, training curves.
- :mod:`nao.viz.cells`: :func:`draw_architecture`, a cell diagram for every space with one.
- :mod:`nao.viz.report`: :func:`write_report`, all of the above for a run directory plus ``report.md``.

>>> from nao.viz import write_report, draw_architecture, plot_best_so_far
>>> callable(write_report)
True
"""

from __future__ import annotations

from nao.viz import style as _style  # noqa: F401 - selects the Agg backend before pyplot is used
from nao.viz.cells import draw_architecture
from nao.viz.curves import best_so_far, plot_best_so_far, plot_predicted_vs_true, within_round_taus
from nao.viz.report import write_report

__all__ = [
    "best_so_far",
    "draw_architecture",
    "plot_best_so_far",
    "plot_predicted_vs_true",
    "within_round_taus",
    "write_report",
]
