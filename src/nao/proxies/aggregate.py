"""One label-free score from several zero-cost proxies, and proxies as predictor features.

**The aggregate** (:func:`aggregate`) is the sum over proxies of ``log(rank / n)``, each proxy's rank taken
within the population being compared (1 = worst, ``n`` = best; ties share their mean rank). It is AZ-NAS's
non-linear rank aggregation (Lee & Ham, CVPR'24): a log-rank sum needs no labels and no scale matching between
proxies whose values span 10 orders of magnitude (SynFlow) or sit near a constant (jacov); unlike a mean rank it
punishes a cell that any one proxy ranks near the bottom, which is what a cut or starved network looks like.

**Its default members** (:data:`AGGREGATE_PROXIES`) are one proxy per kind of evidence, so no kind is counted
twice: the ReLU codes' expressivity (``naswot``), the input Jacobian's decorrelation (``jacov``), the gradients'
signal-to-noise (``zico``), the data-free path saliency (``synflow``) and the network's size (``flops``).
``params`` duplicates ``flops`` (Spearman ~0.99 on NB201), ``snip`` and ``grad_norm`` measure the same loss
gradients as ``zico`` without its noise normalisation. The choice is by kind, made before looking at labels;
BENCHMARKS.md measures it and the alternatives.

>>> import numpy as np
>>> values = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0]])  # 3 cells x 2 proxies
>>> np.round(aggregate(values), 3).tolist()  # log(1/3)+log(1/3), log(2/3)+log(3/3), log(3/3)+log(2/3)
[-2.197, -0.405, -0.405]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

#: The aggregate's members: one proxy per kind of evidence (see the module docstring).
AGGREGATE_PROXIES: tuple[str, ...] = ("naswot", "jacov", "zico", "synflow", "flops")


def aggregate(values: np.ndarray) -> np.ndarray:
    """The log-rank sum of a ``(cells, proxies)`` array within its own rows (higher is better)."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"aggregate needs a (cells, proxies) array, got shape {values.shape}")
    n = values.shape[0]
    if n == 0:
        return np.zeros(0)
    ranks = np.column_stack([rankdata(values[:, j]) for j in range(values.shape[1])])  # 1 = worst
    return np.log(ranks / n).sum(axis=1)


def columns(names: Sequence[str], members: Sequence[str] = AGGREGATE_PROXIES) -> list[int]:
    """Indices of ``members`` in ``names`` (a proxy file's order); a missing member raises ``KeyError``."""
    missing = [m for m in members if m not in names]
    if missing:
        raise KeyError(f"the aggregate needs proxy {missing[0]!r}; available: {', '.join(names)}")
    return [list(names).index(m) for m in members]


def quantile_features(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each column of ``values`` as its quantile (0..1) among the same column of ``reference``.

    Predictor features must not depend on a proxy's scale; quantiles against the cells a run has scored make
    every proxy a number in [0, 1] with the same meaning.

    >>> quantile_features(np.array([[2.0], [0.0]]), np.array([[1.0], [2.0], [3.0]])).ravel().tolist()
    [0.5, 0.0]
    """
    values, reference = np.atleast_2d(values), np.atleast_2d(reference)
    out = np.empty_like(values, dtype=float)
    for j in range(values.shape[1]):
        ref = np.sort(reference[:, j])
        lo = np.searchsorted(ref, values[:, j], side="left")
        hi = np.searchsorted(ref, values[:, j], side="right")
        out[:, j] = (lo + hi) / 2 / max(len(ref), 1)
    return out
