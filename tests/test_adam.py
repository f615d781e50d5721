"""The controller's Adam matches torch.optim.Adam step for step."""

import pytest
import torch

from nao.controller.adam import Adam


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1))


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_matches_torch_adam(weight_decay: float) -> None:
    ours, ref = _model(0), _model(0)
    opt = Adam(ours.parameters(), lr=3e-2, weight_decay=weight_decay)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=3e-2, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(1)
    for _ in range(25):
        x, y = torch.randn(16, 5, generator=gen), torch.randn(16, 1, generator=gen)
        for model, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(model(x), y).backward()
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the update really moved the weights (a no-op optimizer would match nothing above)
    assert not torch.allclose(next(ours.parameters()), next(_model(0).parameters()))


def test_params_without_grad_are_left_alone() -> None:
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert torch.equal(b.detach(), torch.ones(3)) and not torch.equal(a.detach(), torch.ones(3))


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="lr="):
        Adam([torch.nn.Parameter(torch.ones(1))], lr=0.0)
    with pytest.raises(ValueError, match="no parameters"):
        Adam([torch.ones(1)])
