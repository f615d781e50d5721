"""Test doubles shared by the test files: fake evaluators and a synthetic NAS-Bench-201 table.

Evaluators here are module-level classes so that process executors (spawn) can pickle them.

>>> from nao.spaces import get_space
>>> space = get_space("nb201")
>>> (r,) = TokenSum(space).evaluate([space.make([4] * 6)])
>>> r.metrics["val_acc"]
1.0
"""

from __future__ import annotations

import gzip
import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nao.evaluators.base import Evaluator
from nao.results import Result
from nao.spaces import get_space
from nao.spaces.base import Architecture, SearchSpace


class TokenSum(Evaluator):
    """Deterministic score in [0, 1]: larger token ids are better; ``test_acc`` is a constant search must not see."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.calls: list[Architecture] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        self.calls.extend(archs)
        top = max(self.space.vocab_size - 1, 1) * self.space.length
        return [Result(a, "ok", {"val_acc": sum(a.tokens) / top, "test_acc": 0.0}) for a in archs]


class ConvCount(Evaluator):
    """NB201: ``val_acc`` rewards convolutions (ties broken by the first edge); ``test_acc`` is constant."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.calls: list[Architecture] = []

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        self.calls.extend(archs)
        return [
            Result(a, "ok", {"val_acc": sum(t in (2, 3) for t in a.tokens) / 6 + 0.01 * a.tokens[0], "test_acc": 0.5})
            for a in archs
        ]


class FailsDegenerate(Evaluator):
    """Deterministic val/test accuracy from the tokens; architectures whose tokens are all equal fail.

    ``calls`` counts evaluated architectures (replayed ones must not be evaluated again).
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.calls = 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        self.calls += len(archs)
        out = []
        for a in archs:
            if len(set(a.tokens)) == 1:
                out.append(Result.failed(a, "degenerate"))
            else:
                v = (sum(a.tokens) + 0.1 * a.tokens[0]) / 30
                out.append(Result(a, "ok", {"val_acc": v, "test_acc": 1 - v}))
        return out


class Slow(Evaluator):
    """Wraps an evaluator and sleeps ``delay_s`` per batch (to make evaluations overlap or to kill midway)."""

    def __init__(self, inner: Evaluator, delay_s: float) -> None:
        self.inner, self.space, self.delay_s = inner, inner.space, delay_s

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        time.sleep(self.delay_s)
        return self.inner.evaluate(archs)


class Raising(Evaluator):
    """Raises ``ValueError`` for any batch holding an architecture whose first token is 0, else TokenSum."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        if any(a.tokens[0] == 0 for a in archs):
            raise ValueError(f"cannot train {archs[0].tokens}")
        return TokenSum(self.space).evaluate(archs)


# -- a synthetic NAS-Bench-201 table -------------------------------------------------------------------

# Per-op contribution (percent) of a live edge: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
_OP_GAIN = (0.0, 0.6, 1.8, 3.0, -0.8)
_RESIDUAL_BONUS = 3.0  # skip_connect on edge (3<-0), the residual edge of NB201's best cells


def synthetic_val_acc(space: SearchSpace, arch: Architecture) -> float:
    """The noise-free validation accuracy (percent) of the synthetic table.

    Computed on the pruned cell (dead edges do not count), so equivalent networks score alike; a cell with
    no input-to-output path scores chance (10%). The best cell is
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``.
    """
    tokens = space.prune(arch).tokens
    if not any(tokens):
        return 10.0
    score = 70.0 + sum(_OP_GAIN[t] for t in tokens)
    if tokens[3] == 1:
        score += _RESIDUAL_BONUS
    return score


def write_synthetic_nb201(path: str | os.PathLike, seed: int = 201) -> Path:
    """Write every NB201 cell (15,625 rows, NB201 order) in the benchmark file format, accuracies in percent.

    Seeded and deterministic: the same file for the same seed. Columns are those of the real table.
    """
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    lines = ["arch_str,val_acc,test_acc,val_acc_12ep,test_acc_12ep,train_time_s,params_m"]
    for tokens in itertools.product(range(space.vocab_size), repeat=space.length):
        arch = space.make(tokens)
        live = space.prune(arch).tokens
        noise = rng.normal(0.0, (0.25, 0.3, 1.0, 0.3, 20.0))
        val = synthetic_val_acc(space, arch) + noise[0]
        val12 = 10.0 + 0.8 * (val - 10.0) + noise[2]  # the 12-epoch column: lower, noisier, correlated
        convs3, convs1 = sum(t == 3 for t in live), sum(t == 2 for t in live)
        train_time = 900.0 + 250.0 * convs3 + 120.0 * convs1 + noise[4]
        params = 0.073 + 0.16 * convs3 + 0.02 * convs1
        lines.append(
            f"{space.format(arch)},{val:.4f},{val + 2.5 + noise[1]:.4f},{val12:.4f},{val12 + 2.0 + noise[3]:.4f},"
            f"{train_time:.4f},{params:.4f}"
        )
    path = Path(path)
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as fh:  # same bytes every time
        fh.write(("\n".join(lines) + "\n").encode())
    return path
