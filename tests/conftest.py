"""Shared fixtures: the offline data directory and the NB201 table (loaded once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nao.data.paths import data_root
from nao.threads import torch_threads


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not root.exists():
        pytest.skip(f"data directory {root} not found (set NAO_DATA)")
    return root


@pytest.fixture(scope="session")
def nb201_path(data_dir: Path) -> Path:
    path = data_dir / "nasbench201" / "nb201_cifar10.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def nb201_table(nb201_path: Path):
    from nao.evaluators.tabular import TabularBenchmark
    from nao.spaces import get_space

    return TabularBenchmark.load(nb201_path, get_space("nb201"))


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
