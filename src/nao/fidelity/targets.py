"""One training target per architecture from scores at several fidelities.

A multi-fidelity search knows most candidates only at a low rung and a few at the top. The
controller's predictor needs one number per architecture on one scale. Three ways:

* ``"top"``: only architectures with a top-rung score (drops every low-rung label);
* ``"raw"``: each architecture's score at its highest rung, as is (on NB201 a 12-epoch accuracy
  is ~15 points below a 200-epoch one, so every unpromoted candidate ranks below every promoted);
* ``"calibrated"`` (default): the top-rung score where there is one; otherwise the highest lower
  rung's score mapped onto the top rung's scale by a least-squares line fitted on the candidates
  scored at both (the expected top-rung score given the low one). Fewer than 3 such pairs: each
  rung z-scored on its own (then mapped to the top rung's mean and spread when it has two scores).

The line keeps the order within a rung (its slope is clipped at >= 0) and decides only how
unpromoted candidates interleave with promoted ones, which is what a predictor trained on the
mixed labels has to get right. Failed evaluations (``-inf``) are left out.

>>> s = {"a": {12: 0.70, 200: 0.90}, "b": {12: 0.60, 200: 0.85}, "c": {12: 0.50, 200: 0.80}, "d": {12: 0.65}}
>>> t = fidelity_targets(s)
>>> round(t["d"], 3), sorted(fidelity_targets(s, "top"))
(0.875, ['a', 'b', 'c'])
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import numpy as np

from nao.errors import ConfigError

TARGET_MODES = ("calibrated", "raw", "top")
_MIN_PAIRS = 3


def fidelity_targets(scores: Mapping[Hashable, Mapping[float, float]], mode: str = "calibrated",
                     top: float | None = None) -> dict[Hashable, float]:
    """``{candidate: target}`` from ``{candidate: {fidelity: score}}`` (higher is better).

    Args:
        scores: every finite score per candidate and fidelity (epochs).
        mode: ``calibrated``, ``raw`` or ``top`` (module docstring).
        top: the top fidelity (default: the highest one seen).
    """
    if mode not in TARGET_MODES:
        raise ConfigError(f"fidelity targets: unknown mode {mode!r}; choose from {', '.join(TARGET_MODES)}")
    clean = {c: {f: float(v) for f, v in by.items() if math.isfinite(v)} for c, by in scores.items()}
    clean = {c: by for c, by in clean.items() if by}
    if not clean:
        return {}
    top = max(f for by in clean.values() for f in by) if top is None else top
    if mode == "top":
        return {c: by[top] for c, by in clean.items() if top in by}
    if mode == "raw":
        return {c: by[max(by)] for c, by in clean.items()}
    maps = {f: _to_top(clean, f, top) for f in {f for by in clean.values() for f in by} if f != top}
    out = {}
    for c, by in clean.items():
        if top in by:
            out[c] = by[top]
        else:
            f = max(by)
            out[c] = maps[f](by[f])
    if len(maps) and not any(top in by for by in clean.values()):
        return {c: by[max(by)] for c, by in clean.items()}  # nothing at the top yet: a single scale
    return out


def _to_top(scores: Mapping[Hashable, Mapping[float, float]], low: float, top: float):
    """A monotone map from fidelity ``low``'s scores to the top fidelity's scale."""
    pairs = np.array([(by[low], by[top]) for by in scores.values() if low in by and top in by])
    lows = np.array([by[low] for by in scores.values() if low in by])
    tops = np.array([by[top] for by in scores.values() if top in by])
    if len(pairs) >= _MIN_PAIRS and np.ptp(pairs[:, 0]) > 0:
        slope, icpt = np.polyfit(pairs[:, 0], pairs[:, 1], 1)
        slope = max(float(slope), 0.0)
        if slope > 0:
            return lambda v: float(icpt + slope * v)
    mu, sd = float(lows.mean()), float(lows.std()) or 1.0
    if len(tops) >= 2 and float(tops.std()) > 0:
        return lambda v: float(tops.mean() + (v - mu) / sd * tops.std())
    return lambda v: (v - mu) / sd
