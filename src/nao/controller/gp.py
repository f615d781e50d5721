"""A Gaussian process on the controller's architecture embeddings: a predictor that knows what it has not seen.

NAO's MLP predictor extrapolates: a basin none of its labels lie in is scored by the pattern of
the basins it has seen, often poorly, and with no sign that the score is a guess (BENCHMARKS.md,
"NAO's tail on the 12-epoch landscape": stuck runs rank the optimum 124th-140th of 151 cells).
A GP on the same embeddings keeps the encoder's geometry, which training made predictive, and
adds a posterior variance that grows away from the evaluated cells, so expected improvement
(EI) can prefer an unexplored region over the last few cells of an exhausted one.

Choices, each by principle rather than by a search over values:

* constant prior mean (the labels are standardised): far from the data the GP reverts to an
  average cell with full prior uncertainty instead of inheriting the MLP's extrapolation;
* Matérn-5/2 kernel on Euclidean distances between unit-norm embeddings; the length scale and
  the noise share are chosen by maximising the log marginal likelihood over a small fixed grid
  (the length scale as multiples of the median pairwise distance, so the grid follows the
  embedding's own scale);
* EI relative to the best standardised label, ranked in log space (a stable form of log EI), so
  candidates far below the incumbent still get a strict order instead of ties at zero.

>>> import torch
>>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
>>> gp = fit_gp(x, torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64))
>>> mean, std = gp.posterior(torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64))
>>> bool(std[0] < std[1])  # a seen point is known better than a far one
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Length scales tried, as multiples of the median pairwise distance of the training embeddings.
LENGTH_FACTORS = (0.25, 0.5, 1.0, 2.0)
# Noise variance tried, as a share of the (unit) signal variance of the standardised labels.
NOISE_SHARES = (1e-3, 1e-2, 1e-1)
# The grid is scored on at most this many labels (evenly spaced in the given order): each grid
# point costs a Cholesky factorisation, O(n^3), and a multi-fidelity search holds thousands of
# labels; the chosen point is then fitted once on all of them.
GRID_LABELS = 512


@dataclass
class GaussianProcess:
    """An exact GP fitted to standardised labels; :meth:`posterior` and :meth:`log_ei` read it."""

    x: torch.Tensor  # (N, D) training embeddings
    alpha: torch.Tensor  # (N,) K^-1 (y - mean)
    chol: torch.Tensor  # (N, N) lower Cholesky factor of K + noise I
    length: float
    noise: float
    best: float  # best standardised training label
    beta: torch.Tensor | None = None  # (P + 1,) linear prior mean on covariates (intercept last); None: constant 0

    def prior_mean(self, covariates: torch.Tensor | None, n: int) -> torch.Tensor:
        """The prior mean at ``n`` points with ``covariates`` (n, P) (zeros for a constant-mean GP)."""
        if self.beta is None:
            return torch.zeros(n, dtype=self.x.dtype)
        if covariates is None:
            raise ValueError("this GP has a linear prior mean: give the covariates of the points")
        return _design(covariates.to(self.x.dtype)) @ self.beta

    def posterior(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and standard deviation (standardised scale) at ``x`` (B, D) (with a linear prior
        mean, ``covariates`` (B, P) of the same points)."""
        x = x.to(self.x.dtype)
        k = matern52(torch.cdist(x, self.x), self.length)  # (B, N)
        mean = self.prior_mean(covariates, x.shape[0]) + k @ self.alpha
        v = torch.linalg.solve_triangular(self.chol, k.T, upper=False)  # (N, B)
        var = (1.0 - (v * v).sum(dim=0)).clamp_min(1e-12)
        return mean, var.sqrt()

    def log_ei(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """log expected improvement over the best training label at ``x`` (B, D)."""
        mean, std = self.posterior(x, covariates)
        return log_expected_improvement((mean - self.best) / std) + std.log()


def matern52(dist: torch.Tensor, length: float) -> torch.Tensor:
    """Matérn-5/2 correlation of distances ``dist`` at length scale ``length`` (unit variance)."""
    r = math.sqrt(5.0) * dist / length
    return (1.0 + r + r * r / 3.0) * torch.exp(-r)


def log_expected_improvement(z: torch.Tensor) -> torch.Tensor:
    """``log(z Φ(z) + φ(z))``, stable for very negative ``z`` (EI of a unit-variance Gaussian)."""
    log_phi = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
    # The direct form loses about z² ulps to cancellation (1e-13 at z = -20) and underflows near -38.
    # Φ through erfc: torch.special.ndtr computes 1 - Φ(-z) and is wrong below z = -6 (0 at -10).
    cdf = 0.5 * torch.special.erfc(-z / math.sqrt(2.0))
    direct = torch.log((z * cdf + torch.exp(log_phi)).clamp_min(1e-300))
    # Below that, z Φ(z) + φ(z) = φ(z) / z² (1 - 3/z² + 15/z⁴ - 105/z⁶ + ...), truncated at 1e-7.
    w = 1.0 / z.clamp(max=-1.0) ** 2
    tail = log_phi + torch.log(w) + torch.log1p(w * (-3.0 + w * (15.0 - 105.0 * w)))
    return torch.where(z > -20.0, direct, tail)


def _fit_one(x: torch.Tensor, y: torch.Tensor, dist: torch.Tensor, length: float, noise: float):
    n = x.shape[0]
    k = matern52(dist, length) + noise * torch.eye(n, dtype=x.dtype)
    chol, info = torch.linalg.cholesky_ex(k)
    if int(info) != 0:
        return None
    alpha = torch.cholesky_solve(y.unsqueeze(1), chol).squeeze(1)
    # log p(y) = -y^T alpha / 2 - sum(log diag L) - n/2 log(2 pi)
    lml = -0.5 * float(y @ alpha) - float(torch.log(torch.diagonal(chol)).sum()) - 0.5 * n * math.log(2 * math.pi)
    return lml, chol, alpha


def _design(covariates: torch.Tensor) -> torch.Tensor:
    """``[covariates, 1]``: the linear prior mean's design matrix (n, P + 1)."""
    return torch.cat([covariates, torch.ones(covariates.shape[0], 1, dtype=covariates.dtype)], dim=1)


# Ridge penalty of the linear prior mean's slopes (standardised labels): keeps a prior fitted on a handful of
# labels from swinging on one outlier.
PRIOR_RIDGE = 1.0


def fit_gp(x: torch.Tensor, y: torch.Tensor, covariates: torch.Tensor | None = None) -> GaussianProcess:
    """Fit a GP to embeddings ``x`` (N, D) and labels ``y`` (N,) (higher is better).

    The labels are standardised here; length scale and noise are the grid point with the highest
    log marginal likelihood (scored on at most :data:`GRID_LABELS` of them). Deterministic: no
    random restarts. The median distance uses all labels; its O(n^2) is small beside the fit.
    With ``covariates`` (N, P) the prior mean is linear in them (ridge regression of the standardised
    labels, fitted first), and the GP models what it leaves: far from every label the posterior reverts
    to that prior instead of to the average cell (a zero-cost aggregate as covariate makes an unexplored
    region as good as its proxies say).
    """
    if x.shape[0] < 2:
        raise ValueError("a GP needs at least two labelled embeddings")
    x, y = x.to(torch.float64), y.to(torch.float64)
    std = float(y.std())
    y = (y - y.mean()) / (std if std > 0 else 1.0)
    beta = None
    if covariates is not None:
        design = _design(covariates.to(torch.float64))
        penalty = PRIOR_RIDGE * torch.eye(design.shape[1], dtype=torch.float64)
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        beta = torch.linalg.solve(design.T @ design + penalty, design.T @ y)
        best_label = float(y.max())
        y = y - design @ beta
    else:
        best_label = None
    dist = torch.cdist(x, x)
    off = dist[~torch.eye(x.shape[0], dtype=torch.bool)]
    median = float(off.median()) if off.numel() else 1.0
    median = median if median > 0 else 1.0
    sub = torch.linspace(0, x.shape[0] - 1, min(x.shape[0], GRID_LABELS)).round().long().unique()
    best = None
    for factor in LENGTH_FACTORS:
        for noise in NOISE_SHARES:
            fitted = _fit_one(x[sub], y[sub], dist[sub][:, sub], factor * median, noise)
            if fitted is not None and (best is None or fitted[0] > best[0]):
                best = (fitted[0], factor * median, noise)
    # Every grid point singular (duplicated embeddings and tiny noise): a noisy kernel works.
    length, noise = (best[1], best[2]) if best is not None else (median, 1.0)
    fitted = _fit_one(x, y, dist, length, noise)
    if fitted is None:
        length, noise = median, 1.0
        fitted = _fit_one(x, y, dist, length, noise)
    assert fitted is not None
    _, chol, alpha = fitted
    best = float(y.max()) if best_label is None else best_label
    return GaussianProcess(x=x, alpha=alpha, chol=chol, length=length, noise=noise, best=best, beta=beta)
