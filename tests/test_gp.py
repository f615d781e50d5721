"""The GP on controller embeddings (:mod:`nao.controller.gp`): posterior, EI in log space, grid fit."""

from __future__ import annotations

import math

import pytest
import torch

from nao.controller.gp import fit_gp, log_expected_improvement


def _points(n: int, dim: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)  # unit norm, like the controller's embeddings


def test_posterior_follows_the_labels_near_them_and_reverts_to_the_mean_far_away():
    x = _points(30)
    y = x[:, 0] * 3.0 + 1.0  # a smooth function of the embedding
    gp = fit_gp(x, y)
    mean, std = gp.posterior(x)
    ys = (y - y.mean()) / y.std()
    assert torch.corrcoef(torch.stack([mean, ys]))[0, 1] > 0.95
    far = torch.full((1, 4), 50.0, dtype=torch.float64)
    far_mean, far_std = gp.posterior(far)
    assert abs(float(far_mean)) < 1e-3  # the constant prior mean of standardised labels
    assert float(far_std) == pytest.approx(1.0, abs=1e-6)
    assert float(std.max()) < 0.5


def test_expected_improvement_prefers_the_unknown_over_the_known_mediocre():
    x = _points(20)
    y = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
    gp = fit_gp(x, y)
    # A training point with a middling label is known: almost no chance to improve on the best.
    # A far point is an average cell with full uncertainty: some chance.
    known, far = x[10:11], torch.full((1, 4), 50.0, dtype=torch.float64)
    assert float(gp.log_ei(far)) > float(gp.log_ei(known))


def test_log_expected_improvement_is_exact_where_direct_and_finite_and_monotone_in_the_tail():
    z = torch.linspace(-5.0, 3.0, 81, dtype=torch.float64)
    phi = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    direct = torch.log(z * torch.special.ndtr(z) + phi)  # torch's ndtr is exact above -6
    assert torch.allclose(log_expected_improvement(z), direct, atol=1e-9)
    # Reference values (scipy: log(z ndtr(z) + φ(z))) where torch's ndtr is not.
    ref = torch.tensor([-37.12236426169216, -55.5531220361216, -206.91783850941368, -457.72465376054663])
    got = log_expected_improvement(torch.tensor([-8.0, -10.0, -20.0, -30.0], dtype=torch.float64))
    assert torch.allclose(got, ref.to(torch.float64), atol=1e-6)
    tail = log_expected_improvement(torch.tensor([-80.0, -40.0, -20.5, -19.5, -10.0], dtype=torch.float64))
    assert torch.isfinite(tail).all()
    assert (tail.diff() > 0).all()  # strictly increasing: far-below candidates keep an order


def test_duplicated_embeddings_and_constant_labels_still_fit():
    x = torch.cat([_points(5), _points(5)])  # every embedding twice (equivalent cells)
    gp = fit_gp(x, torch.ones(10, dtype=torch.float64))
    mean, std = gp.posterior(_points(3, seed=1))
    assert torch.isfinite(mean).all() and torch.isfinite(std).all()
    with pytest.raises(ValueError, match="two"):
        fit_gp(x[:1], torch.ones(1))


def test_the_grid_point_is_the_one_with_the_highest_marginal_likelihood_and_subsampling_keeps_it(monkeypatch):
    import nao.controller.gp as gp_module

    x = _points(60, seed=3)
    y = torch.sin(4 * x[:, 0]) + 0.05 * torch.randn(60, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gp = fit_gp(x, y)
    ys = (y - y.mean()) / y.std()
    dist = torch.cdist(x, x)
    scores = {(ln, nz): gp_module._fit_one(x, ys, dist, ln, nz)[0]
              for ln in [f * float(dist[~torch.eye(60, dtype=torch.bool)].median()) for f in gp_module.LENGTH_FACTORS]
              for nz in gp_module.NOISE_SHARES}
    assert (gp.length, gp.noise) == pytest.approx(max(scores, key=scores.get))
    # Scoring the grid on every other label (a large pool) picks a point, then fits on all labels.
    monkeypatch.setattr(gp_module, "GRID_LABELS", 30)
    sub = fit_gp(x, y)
    assert sub.x.shape[0] == 60 and (sub.length, sub.noise) in scores


def test_linear_prior_mean_carries_the_posterior_far_from_the_data():
    # Labels are exactly 2 * covariate: the ridge prior explains them, and a point far from every training
    # embedding reverts to that prior (not to the average label, as a constant-mean GP would).
    import torch

    from nao.controller.gp import fit_gp

    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1]], dtype=torch.float64)
    cov = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    gp = fit_gp(x, 2.0 * cov[:, 0], cov)
    far = torch.tensor([[50.0, 50.0]], dtype=torch.float64)
    high, _ = gp.posterior(far, torch.tensor([[3.0]], dtype=torch.float64))
    low, _ = gp.posterior(far, torch.tensor([[0.0]], dtype=torch.float64))
    assert float(high) > float(low) + 1.0
    plain = fit_gp(x, 2.0 * cov[:, 0])
    assert abs(float(plain.posterior(far)[0])) < 1e-6  # constant prior mean: the standardised average
    with pytest.raises(ValueError, match="covariates"):
        gp.posterior(far)
