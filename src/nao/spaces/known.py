"""Published cell architectures, as facts with their sources (``--arch NAME`` resolves through them:
:func:`nao.spaces.resolve.resolve_arch`). Pure data: no network code here (cell specs for a network:
:func:`nao.nn.network.known_cells`).

Each entry is a DARTS-style genotype (``[(op, input), ...]``, two pairs per node; inputs
0/1 are the two previous cells) in the op names of its space, with where it was read.
NAO's integer encodings were converted with the op order of the code they come from
(noted per entry); the concat lists of NAO cells are the nodes no other node uses, as in
NAO's code.

>>> from nao.spaces.known import get_known, known_names
>>> "naonet-a" in known_names()
True
>>> k = get_known("darts-v2")
>>> len(k.normal) // 2, tuple(k.normal_concat)
(4, (2, 3, 4, 5))
"""

from __future__ import annotations

from dataclasses import dataclass

from nao.errors import ConfigError

Pairs = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class KnownArch:
    """A published cell pair.

    Attributes:
        name: lookup name (case-insensitive).
        space: the cell space preset it lives in.
        normal, reduce: genotype pairs; ``*_concat``: ids concatenated as the output.
        source: where the genotype was read.
        channels, layers: the paper's network size (F and N) for this cell.
        published_params_m: parameters (millions) the source reports at that size,
            ``None`` if no primary source was found.
        params_source: where that number comes from, and how sure it is.
    """

    name: str
    space: str
    normal: Pairs
    normal_concat: tuple[int, ...]
    reduce: Pairs
    reduce_concat: tuple[int, ...]
    source: str
    channels: int
    layers: int
    published_params_m: float | None
    params_source: str

    def genotype(self) -> str:
        """The DARTS ``Genotype(...)`` string of this architecture."""
        return (
            f"Genotype(normal={list(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={list(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )


KNOWN: dict[str, KnownArch] = {}


def _add(arch: KnownArch) -> None:
    KNOWN[arch.name.lower()] = arch


# NAONet-A: the best cell of NAO without weight sharing (Fig. 1 of the paper's appendix).
# Read from renqianluo/NAO_pytorch NAO_V1/train_NAONet_A_36_cifar10.sh:
#   fixed_arc="0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7"
# per node [input_a, op_a, input_b, op_b], normal cell then reduction cell, op ids of
# NAO_V1/model.py: 5 identity, 6 conv 1x1, 7 conv 3x3, 8 conv 1x3+3x1, 9 conv 1x7+7x1,
# 10/11/12 max pool 2/3/5, 13/14/15 avg pool 2/3/5 (the later "large" space numbers the same
# ops 0..10; train_NAONet_A_128 then reads "0 2 1 10 2 3 ..."). Cross-checked with the
# TensorFlow original renqianluo/NAO NAO/cnn/dag.NAONet.json: identical except reduction
# node 4, whose two inputs are swapped there ("node_2 conv 1x7+7x1, node_1 max_pool 2x2");
# the parameter count is the same either way. We follow the PyTorch sequence.
_add(
    KnownArch(
        name="NAONet-A",
        space="nao",
        normal=(
            ("conv_3x3", 0), ("avg_pool_5x5", 1),
            ("conv_1x3_3x1", 2), ("conv_3x3", 1),
            ("conv_1x1", 0), ("conv_3x3", 1),
            ("conv_1x3_3x1", 0), ("conv_3x3", 4),
            ("identity", 1), ("conv_3x3", 0),
        ),
        normal_concat=(3, 5, 6),
        reduce=(
            ("conv_3x3", 0), ("avg_pool_2x2", 1),
            ("conv_1x1", 0), ("avg_pool_3x3", 0),
            ("conv_1x7_7x1", 0), ("max_pool_2x2", 1),
            ("avg_pool_3x3", 0), ("conv_1x1", 2),
            ("max_pool_3x3", 1), ("conv_3x3", 0),
        ),
        reduce_concat=(3, 4, 5, 6),
        source="renqianluo/NAO_pytorch NAO_V1/train_NAONet_A_36_cifar10.sh (see comment in nao/spaces/known.py)",
        channels=36,
        layers=6,
        published_params_m=None,
        params_source=(
            "NAO paper Table 1 lists NAONet at several widths (F=36/64/128); its exact numbers could "
            "not be read from a primary source here, so none is asserted (see BENCHMARKS.md)"
        ),
    )
)

# NAONet-WS: the best cell of NAO with weight sharing, the paper's 3.53% / 2.5M model.
# Read from renqianluo/NAO NAO-WS/cnn/train_final.sh:
#   fixed_arc="0 1 0 4 2 2 1 3 1 0 2 0 2 3 1 3 1 2 0 4 1 1 0 3 2 3 2 3 1 0 0 1 0 4 2 4 2 3 2 3"
# op ids of NAO-WS/cnn/model.py (_fixed_layer): 0 sep conv 3x3, 1 sep conv 5x5,
# 2 avg pool 3x3, 3 max pool 3x3, 4 identity. The script trains it with
# child_num_layers=15 (N=5 normal cells per stage) and child_out_filters=36.
_add(
    KnownArch(
        name="NAONet-WS",
        space="nao-ws",
        normal=(
            ("sep_conv_5x5", 0), ("identity", 0),
            ("avg_pool_3x3", 2), ("max_pool_3x3", 1),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
            ("max_pool_3x3", 2), ("max_pool_3x3", 1),
            ("avg_pool_3x3", 1), ("identity", 0),
        ),
        normal_concat=(3, 4, 5, 6),
        reduce=(
            ("sep_conv_5x5", 1), ("max_pool_3x3", 0),
            ("max_pool_3x3", 2), ("max_pool_3x3", 2),
            ("sep_conv_3x3", 1), ("sep_conv_5x5", 0),
            ("identity", 0), ("identity", 2),
            ("max_pool_3x3", 2), ("max_pool_3x3", 2),
        ),
        reduce_concat=(3, 4, 5, 6),
        source="renqianluo/NAO NAO-WS/cnn/train_final.sh (see comment in nao/spaces/known.py)",
        channels=36,
        layers=5,
        published_params_m=2.5,
        params_source="renqianluo/NAO README.md, NAO-WS train_final.sh row: 'Parameter Size 2.5M'",
    )
)

# NAONet-B: the NAO-WS cell found by the PyTorch re-implementation (2.93% with cutout).
# Read from renqianluo/NAO_pytorch NAO_V1/train_NAONet_B_36_cifar10.sh:
#   fixed_arc="0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2"
# op ids of NAO_V1/operations.py OPERATIONS_small: 0 sep conv 3x3, 1 sep conv 5x5,
# 2 avg pool 3x3, 3 max pool 3x3, 4 identity. Trained at channels=36, layers=6.
_add(
    KnownArch(
        name="NAONet-B",
        space="nao-ws",
        normal=(
            ("sep_conv_5x5", 0), ("avg_pool_3x3", 0),
            ("sep_conv_5x5", 0), ("avg_pool_3x3", 2),
            ("max_pool_3x3", 1), ("avg_pool_3x3", 0),
            ("sep_conv_3x3", 4), ("max_pool_3x3", 1),
            ("sep_conv_5x5", 2), ("max_pool_3x3", 0),
        ),
        normal_concat=(3, 5, 6),
        reduce=(
            ("sep_conv_5x5", 1), ("sep_conv_3x3", 1),
            ("sep_conv_5x5", 2), ("identity", 2),
            ("sep_conv_3x3", 1), ("max_pool_3x3", 2),
            ("sep_conv_5x5", 3), ("avg_pool_3x3", 2),
            ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
        ),
        reduce_concat=(4, 5, 6),
        source="renqianluo/NAO_pytorch NAO_V1/train_NAONet_B_36_cifar10.sh (see comment in nao/spaces/known.py)",
        channels=36,
        layers=6,
        published_params_m=None,
        params_source="no parameter count published for NAONet-B",
    )
)

# DARTS-V2 (second-order DARTS), quark0/darts cnn/genotypes.py DARTS_V2 (= DARTS there).
# The same literal appears in the many forks of that file; the README's CIFAR-10 model
# (C=36, 20 cells, auxiliary head) has "3.349MB params" (auxiliary head excluded).
_add(
    KnownArch(
        name="DARTS-V2",
        space="darts",
        normal=(
            ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0),
            ("skip_connect", 0), ("dil_conv_3x3", 2),
        ),
        normal_concat=(2, 3, 4, 5),
        reduce=(
            ("max_pool_3x3", 0), ("max_pool_3x3", 1),
            ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2),
            ("skip_connect", 2), ("max_pool_3x3", 1),
        ),
        reduce_concat=(2, 3, 4, 5),
        source="quark0/darts cnn/genotypes.py (DARTS_V2)",
        channels=36,
        layers=6,
        published_params_m=3.349,
        params_source="quark0/darts README.md: 'Expected result: 2.63% test error rate (3.349MB params)'",
    )
)


def known_names() -> list[str]:
    """Lower-case names of all known architectures."""
    return sorted(KNOWN)


def get_known(name: str) -> KnownArch:
    """The :class:`KnownArch` called ``name`` (case-insensitive); ConfigError lists the names."""
    try:
        return KNOWN[name.strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown architecture name {name!r}; known: {', '.join(known_names())}") from None
