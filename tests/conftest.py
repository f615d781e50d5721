"""Shared fixtures: the offline data (one place decides skip or fail), a synthetic NB201 table, markers.

Data fixtures (``data_dir``, ``nb201_path``, ``nb201_table``, ``cifar_dir``, ``ptb_dir``) skip their test when
the data is absent, except under ``NAO_REQUIRE_DATA=1`` (set by ``.ci/run``), where a missing dataset is a
test error: CI must never turn green by skipping the tests that read real data. Tests never check for data
themselves; they ask for one of these fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes import write_synthetic_nb201
from nao.data.paths import data_root
from nao.threads import torch_threads


def _require_data() -> bool:
    return os.environ.get("NAO_REQUIRE_DATA", "").strip() not in ("", "0")


def require(path: Path, what: str) -> Path:
    """``path`` if it exists; otherwise skip the test, or fail it under ``NAO_REQUIRE_DATA=1``."""
    if path.exists():
        return path
    message = f"{what} not found at {path} (data root {data_root()}; set NAO_DATA, see ../shared/data/README.md)"
    if _require_data():
        pytest.fail(f"NAO_REQUIRE_DATA is set and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root (``$NAO_DATA`` or ``../shared/data``)."""
    return require(data_root(), "the data directory")


@pytest.fixture(scope="session")
def nb201_path(data_dir: Path) -> Path:
    """The real NAS-Bench-201 CIFAR-10 table (15,625 rows)."""
    return require(data_dir / "nasbench201" / "nb201_cifar10.csv.gz", "the NAS-Bench-201 table")


@pytest.fixture(scope="session")
def nb201_table(nb201_path: Path):
    from nao.evaluators.tabular import TabularBenchmark
    from nao.spaces import get_space

    return TabularBenchmark.load(nb201_path, get_space("nb201"))


@pytest.fixture(scope="session")
def cifar_dir(data_dir: Path) -> Path:
    """The CIFAR-10 directory (holds ``cifar-10-batches-bin``); pass it as ``--data-dir``."""
    root = data_dir / "cifar10"
    require(root / "cifar-10-batches-bin", "CIFAR-10 (binary version)")
    return root


@pytest.fixture(scope="session")
def ptb_dir(data_dir: Path) -> Path:
    """The Penn Treebank directory (``ptb.{train,valid,test}.txt``)."""
    root = data_dir / "ptb"
    for split in ("train", "valid", "test"):
        require(root / f"ptb.{split}.txt", "Penn Treebank")
    return root


@pytest.fixture(scope="session")
def synthetic_nb201(tmp_path_factory) -> Path:
    """A full 15,625-row table in NB201's file format with a learnable formula (see ``fakes``); no real data."""
    return write_synthetic_nb201(tmp_path_factory.mktemp("synthetic") / "nb201_synthetic.csv.gz")


def pytest_collection_modifyitems(config, items):
    # `@pytest.mark.gpu` tests need CUDA; they are the only tests allowed to skip on a CPU machine.
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu: needs a CUDA device (torch.cuda.is_available() is False)")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_cuda_surprises(monkeypatch):
    # Tests must pass on CPU-only machines; keep threads modest on the 2-core CI box.
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))


@pytest.fixture(autouse=True)
def _one_thread():
    # The test models are tiny and op-overhead bound: one torch thread is fastest, and two OpenMP
    # threads spin badly on a busy 2-core CI machine. Restored after each test.
    with torch_threads(1):
        yield
