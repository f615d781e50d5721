"""Ops table, cell networks, parameter/FLOP counts and the known architectures."""

from __future__ import annotations

import pytest
import torch

from nao.nn.network import (
    CellNetwork,
    CellSpec,
    NetworkConfig,
    build_network,
    count_flops,
    count_parameters,
    drop_path,
    known_cells,
)
from nao.nn.ops import OPS, FactorizedReduce, Pool, make_op
from nao.spaces.known import get_known, known_names
from nao.spaces.resolve import resolve_arch


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in,c_out", [(4, 4), (4, 6)])
def test_op_contract_shape_and_grad(name, stride, c_in, c_out):
    op = make_op(name, c_in, c_out, stride, affine=True)
    x = torch.randn(2, c_in, 7, 7, requires_grad=True)  # odd size exercises the padding rules
    y = op(x)
    assert y.shape == (2, c_out, -(-7 // stride), -(-7 // stride))
    if name != "none":
        y.sum().backward()
        assert x.grad is not None


def test_ops_cover_every_preset_op():
    from nao.spaces import get_space

    for space in ("nao", "nao-ws", "darts"):
        assert set(get_space(space).ops) <= set(OPS), space


def test_unknown_op_names_the_choices():
    with pytest.raises(KeyError, match="sep_conv_3x3"):
        make_op("conv_9x9", 4, 4, 1)


def test_even_pools_keep_size_and_average_ignores_padding():
    x = torch.ones(1, 2, 8, 8)
    assert torch.equal(Pool("avg", 2, 1)(x), x)  # padded cells must not dilute the mean
    assert torch.equal(Pool("avg", 5, 1)(x), x)
    y = Pool("max", 2, 2)(-x)  # -inf padding never wins a max
    assert y.shape == (1, 2, 4, 4) and torch.equal(y, -torch.ones(1, 2, 4, 4))


def test_factorized_reduce_halves_odd_sizes_and_splits_channels():
    fr = FactorizedReduce(3, 5)
    assert fr(torch.randn(2, 3, 9, 9)).shape == (2, 5, 5, 5)


def test_drop_path_zeroes_whole_examples_and_rescales():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        y = drop_path(torch.ones(4000, 1, 2, 2), torch.tensor(0.25))
    per_example = y.flatten(1)
    assert torch.allclose(per_example.unique(), torch.tensor([0.0, 1.0 / 0.75]))
    assert abs(per_example.mean().item() - 1.0) < 0.05


def _tiny(name="darts-v2", **kw):
    normal, reduce = known_cells(name)
    cfg = NetworkConfig(channels=kw.pop("channels", 4), layers=kw.pop("layers", 1), **kw)
    return CellNetwork(normal, reduce, cfg, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", known_names())
def test_known_networks_forward_backward(name):
    net = _tiny(name, auxiliary=True, drop_path=0.3, dropout=0.1)
    net.set_drop_path(0.5)
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and aux.shape == (2, 10)
    (logits.sum() + aux.sum()).backward()
    net.eval()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert aux is None and logits.shape == (2, 10)


def test_network_layout_and_concat_of_cell_inputs():
    # Input 0 is never read, so NAO's rule puts it in the concat; in the reduction cell it
    # must be factorized-reduced to the new resolution before the concatenation.
    cell = CellSpec.from_pairs([("max_pool_3x3", 1), ("identity", 1)] * 5, concat=[0, 6])
    cell = CellSpec.from_nodes(cell.nodes, [0, 2, 3, 4, 5, 6])
    net = CellNetwork(cell, cell, NetworkConfig(channels=4, layers=2, auxiliary=False))
    assert len(net.cells) == 3 * 2 + 2 and net.reduction_ids == (2, 5)
    assert "0" in net.cells[2].concat_reduce and not net.cells[0].concat_reduce
    assert net.eval()(torch.randn(1, 3, 32, 32))[0].shape == (1, 10)


def test_cell_spec_rejects_forward_references():
    with pytest.raises(ValueError, match="node 2 reads id 3"):
        CellSpec.from_pairs([("identity", 3), ("identity", 0)], concat=[2])


def test_initialisation_is_seeded():
    a, b = _tiny(), _tiny()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_drop_path_schedule_grows_with_depth_and_progress():
    net = _tiny(drop_path=0.2)
    net.set_drop_path(0.5)
    p = net.drop_prob
    assert p[0] < p[-1] and abs(p[-1].item() - 0.1) < 1e-6
    net.set_drop_path(0.0)
    assert net.drop_prob.sum() == 0


def test_parameter_count_excludes_auxiliary_head_by_default():
    net = _tiny(auxiliary=True)
    aux = sum(p.numel() for p in net.auxiliary_head.parameters())
    assert count_parameters(net, include_auxiliary=True) - count_parameters(net) == aux


# Published sizes, primary sources in nao/spaces/known.py. DARTS-V2's released model has
# 3.349M parameters and 528M multiply-adds (quark0/darts README; GDAS's genotype notes).
def test_darts_v2_parameter_and_flop_parity():
    k = get_known("darts-v2")
    normal, reduce = known_cells("darts-v2")
    net = CellNetwork(normal, reduce, NetworkConfig(channels=k.channels, layers=k.layers, auxiliary=True))
    assert abs(count_parameters(net) / 1e6 - 3.349) / 3.349 < 0.005
    assert abs(count_flops(net) / 1e6 - 528) / 528 < 0.01


def test_naonet_ws_parameter_parity_with_the_tensorflow_child():
    k = get_known("naonet-ws")
    normal, reduce = known_cells("naonet-ws")
    cfg = NetworkConfig(channels=k.channels, layers=k.layers, extra_input_conv=True)
    assert abs(count_parameters(CellNetwork(normal, reduce, cfg)) / 1e6 - 2.5) / 2.5 < 0.02


def test_build_network_from_a_space_architecture():
    space, arch = resolve_arch("naonet-a")
    net = build_network(space, arch, NetworkConfig(channels=4, layers=1, auxiliary=False))
    normal, reduce = known_cells("naonet-a")
    assert net.cells[0].spec == normal and net.cells[1].spec == reduce
    assert net.cells[0].spec.concat == (3, 5, 6)
