"""Quality measures of a controller: ranking of predictions and reconstruction of sequences.

>>> kendall_tau([1, 2, 3], [10, 20, 30]), pairwise_accuracy([1, 2, 3], [30, 20, 10])
(1.0, 0.0)
>>> import numpy as np
>>> reconstruction_accuracy(np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 0]]))
{'exact': 0.5, 'per_token': 0.75}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def kendall_tau(predicted: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b between predicted and true scores (0.0 if either is constant)."""
    p, t = np.asarray(predicted, float), np.asarray(true, float)
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    from scipy.stats import kendalltau  # scipy.stats costs ~1 s to import: only when used

    return float(kendalltau(p, t).statistic)


def pairwise_accuracy(predicted: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float:
    """Fraction of pairs with different true scores that the predictions order correctly.

    A predicted tie counts as half right. O(n^2) memory; fine for a few thousand items.
    """
    p, t = np.asarray(predicted, float), np.asarray(true, float)
    dt = np.sign(t[:, None] - t[None, :])  # (n, n)
    dp = np.sign(p[:, None] - p[None, :])
    upper = np.triu(np.ones_like(dt, dtype=bool), k=1) & (dt != 0)
    if not upper.any():
        return 0.0
    right = (dp[upper] == dt[upper]).sum() + 0.5 * (dp[upper] == 0).sum()
    return float(right / upper.sum())


def reconstruction_accuracy(true_tokens: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """Exact-sequence and per-token match rates between (B, L) token arrays."""
    a, b = np.asarray(true_tokens), np.asarray(decoded)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    same = a == b
    return {"exact": float(same.all(axis=1).mean()), "per_token": float(same.mean())}
