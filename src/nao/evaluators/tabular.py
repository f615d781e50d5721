"""Tabular evaluator: look architectures up in a benchmark table (NAS-Bench-201 format).

A benchmark file is a gzip CSV with an ``arch_str`` column the space can parse, a
``val_acc`` column in percent, and optionally ``test_acc``, ``val_acc_12ep``,
``test_acc_12ep``, ``train_time_s`` and ``params_m``. Accuracies are converted to
fractions when loaded. ``train_time_s`` (GPU seconds of the table's full, 200-epoch training)
becomes the result's ``cost_s``; its ``cost`` (unit ``gpu_s``) is that time scaled to the epochs
the lookup stands for: a 12-epoch query costs ``train_time_s * 12 / 200`` (:func:`column_epochs`).

>>> import os
>>> from nao.spaces import get_space
>>> from nao.data.paths import data_root
>>> path = os.path.join(data_root(), "nasbench201", "nb201_cifar10.csv.gz")
>>> table = TabularBenchmark.load(path, get_space("nb201"))  # doctest: +SKIP
>>> len(table)  # doctest: +SKIP
15625
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nao.errors import BenchmarkFileError, NaoError, NotInTableError
from nao.evaluators.base import Evaluator
from nao.registry import EVALUATORS
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace

#: Epochs behind a table's plain ``val_acc``/``test_acc`` and its ``train_time_s`` (NAS-Bench-201's schedule).
TABLE_EPOCHS = 200
REQUIRED_COLUMNS = ("arch_str", "val_acc")
PERCENT_COLUMNS = ("val_acc", "test_acc", "val_acc_12ep", "test_acc_12ep")
OTHER_COLUMNS = ("train_time_s", "params_m")


@dataclass
class TabularBenchmark:
    """An in-memory benchmark table: key -> metrics (fractions) and cost.

    Attributes:
        path: the file it was read from.
        space: the space whose keys index it.
        archs: the architectures in file order.
        metrics: column name -> array aligned with ``archs``.
        index: key -> row.
    """

    path: Path
    space: SearchSpace
    archs: list[Architecture]
    metrics: dict[str, np.ndarray]
    index: dict[Hashable, int]

    def __len__(self) -> int:
        return len(self.archs)

    def row(self, arch: Architecture) -> int:
        """The row of ``arch``; raises :class:`NotInTableError` naming the architecture."""
        try:
            return self.index[self.space.key(arch)]
        except KeyError:
            raise NotInTableError(
                f"architecture {self.space.format(arch)} is not in benchmark {self.path}"
            ) from None

    @classmethod
    def load(cls, path: str | os.PathLike, space: SearchSpace) -> TabularBenchmark:
        """Read and validate ``path``; every problem raises :class:`BenchmarkFileError`."""
        path = Path(path)
        text = _read_gzip_text(path)
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header:
            raise BenchmarkFileError(f"{path}: empty file (expected a CSV header with {', '.join(REQUIRED_COLUMNS)})")
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise BenchmarkFileError(f"{path}: missing column(s) {', '.join(missing)}; header is {','.join(header)}")
        cols = {c: header.index(c) for c in (*REQUIRED_COLUMNS, *PERCENT_COLUMNS, *OTHER_COLUMNS) if c in header}
        archs: list[Architecture] = []
        values: dict[str, list[float]] = {c: [] for c in cols if c != "arch_str"}
        index: dict[Hashable, int] = {}
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not x.strip() for x in row):
                continue
            if len(row) != len(header):
                raise BenchmarkFileError(f"{path}: line {line_no} has {len(row)} fields, header has {len(header)}")
            arch = _parse_arch(space, row[cols["arch_str"]], path, line_no)
            key = space.key(arch)
            if key in index:
                first = index[key] + 2
                raise BenchmarkFileError(
                    f"{path}: line {line_no} duplicates the architecture of line {first}: {row[cols['arch_str']]}"
                )
            index[key] = len(archs)
            archs.append(arch)
            for c in values:
                values[c].append(_number(row[cols[c]], c, path, line_no))
        if not archs:
            raise BenchmarkFileError(f"{path}: no rows after the header")
        metrics = {c: np.asarray(v, dtype=float) for c, v in values.items()}
        for c in PERCENT_COLUMNS:
            if c in metrics:
                metrics[c] = metrics[c] / 100.0  # the library works in fractions
        return cls(path, space, archs, metrics, index)


def _read_gzip_text(path: Path) -> str:
    if not path.exists():
        raise BenchmarkFileError(f"{path}: benchmark file not found")
    if path.is_dir():
        raise BenchmarkFileError(f"{path}: is a directory, expected a .csv.gz file")
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as e:
        raise BenchmarkFileError(f"{path}: not a readable gzip file ({e})") from None
    except UnicodeDecodeError as e:
        raise BenchmarkFileError(f"{path}: not UTF-8 text inside the gzip ({e})") from None


def _parse_arch(space: SearchSpace, text: str, path: Path, line_no: int) -> Architecture:
    try:
        return space.parse(text)
    except NaoError as e:
        raise BenchmarkFileError(f"{path}: line {line_no}: cannot parse arch_str for space {space.name!r}: {e}") from None


def _number(text: str, column: str, path: Path, line_no: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BenchmarkFileError(f"{path}: line {line_no}: column {column} is not a number: {text!r}") from None
    if math.isnan(value) and column in REQUIRED_COLUMNS:
        raise BenchmarkFileError(f"{path}: line {line_no}: column {column} is NaN")
    return value


def column_epochs(metric: str, table_epochs: float = TABLE_EPOCHS) -> float:
    """Epochs a table column stands for: its ``_<N>ep`` suffix, else the table's own schedule.

    >>> column_epochs("val_acc_12ep"), column_epochs("val_acc")
    (12.0, 200.0)
    """
    m = re.search(r"_(\d+)ep$", metric)
    return float(m.group(1)) if m else float(table_epochs)


@EVALUATORS.register("tabular")
class TabularEvaluator(Evaluator):
    """Answers queries from a :class:`TabularBenchmark` (metrics as fractions).

    Args:
        space: the search space.
        benchmark: a loaded table, or a path to load.
        epochs: the fidelity a lookup stands for (recorded as each result's ``fidelity``; 12 when
            the search optimises ``val_acc_12ep``): ``cost`` is ``train_time_s * epochs / table_epochs``.
        table_epochs: the epochs ``train_time_s`` was measured for.
    """

    batch_size = 1  # lookups are free; strategies see every result before their next ask
    cost_unit = "gpu_s"

    def __init__(self, space: SearchSpace, benchmark: TabularBenchmark | str | os.PathLike,
                 epochs: float = TABLE_EPOCHS, table_epochs: float = TABLE_EPOCHS) -> None:
        self.space = space
        self.table = benchmark if isinstance(benchmark, TabularBenchmark) else TabularBenchmark.load(benchmark, space)
        self.epochs = float(epochs)
        self.table_epochs = float(table_epochs)

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        out = []
        for arch in archs:
            row = self.table.row(arch)
            metrics = {c: float(v[row]) for c, v in self.table.metrics.items() if c not in OTHER_COLUMNS}
            if "params_m" in self.table.metrics:
                metrics["params_m"] = float(self.table.metrics["params_m"][row])
            cost_s = float(self.table.metrics["train_time_s"][row]) if "train_time_s" in self.table.metrics else 0.0
            out.append(Result(arch, "ok", metrics, cost_s, fidelity=self.epochs,
                              cost=cost_s * self.epochs / self.table_epochs))
        return out
