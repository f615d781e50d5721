"""``nao proxies``: one tiny real run (real NB201 rows, real CIFAR-10), and its one-line errors (exit 2).

The benchmark is a handful of rows copied from the real table at test time; CIFAR-10 is read once per module
(about 3 s) and handed to every run through a memoised ``load_cifar``.
"""

from __future__ import annotations

import gzip
import json

import pytest

from nao.cli import main
from nao.proxies.measures import PROXIES
from nao.proxies.table import ProxyTable, partial_path
from nao.spaces import get_space


@pytest.fixture(scope="module")
def _cifar_cache():
    cache: dict = {}
    yield cache
    cache.clear()  # 150 MB of images: not kept for the rest of the session


@pytest.fixture()
def cifar_once(cifar_dir, _cifar_cache, monkeypatch):
    """``--data-dir`` for CIFAR-10; the binary batches are parsed once for the whole module."""
    import nao.data.cifar as cifar

    real = cifar.load_cifar

    def load(name, data_dir, download=False):
        key = (name, str(data_dir))
        if key not in _cifar_cache:
            _cifar_cache[key] = real(name, data_dir, download)
        return _cifar_cache[key]

    monkeypatch.setattr(cifar, "load_cifar", load)
    return cifar_dir


@pytest.fixture()
def tiny_benchmark(nb201_path, tmp_path):
    """The real table's header and its first 5 rows (distinct cells), as a gzip CSV in tmp_path."""
    with gzip.open(nb201_path, "rt", encoding="utf-8") as fh:
        header = fh.readline()
        rows, seen = [], set()
        while len(rows) < 5:
            line = fh.readline()
            if line.split(",")[0] not in seen:
                seen.add(line.split(",")[0])
                rows.append(line)
    path = tmp_path / "tiny.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(header + "".join(rows))
    return path


def _listing(folder):
    return sorted((p.name, p.stat().st_size) for p in folder.rglob("*"))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("nao proxies: error: "), err
    return err[0]


def test_tiny_run_writes_a_proxy_file(tiny_benchmark, cifar_once, tmp_path, capsys):
    out = tmp_path / "zc.csv.gz"
    code = main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(out), "--limit", "2", "--batch-size", "8",
                 "--data-dir", str(cifar_once)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {out}: 2 cells (2 scored now) x {len(PROXIES)} proxies" in captured.out
    assert out.exists() and not partial_path(out).exists()
    assert not out.with_name(out.name + ".tmp").exists()
    with gzip.open(out, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[0].split(",") == ["arch_str", *(f"zc_{n}" for n in PROXIES), "zc_time_s"]
    assert len(lines) == 3
    space = get_space("nb201")
    table = ProxyTable.load(out, space)
    assert table.names == list(PROXIES) and len(table.archs) == 2
    with gzip.open(tiny_benchmark, "rt") as fh:
        cells = {space.key(space.prune(space.parse(ln.split(",")[0]))) for ln in fh.read().splitlines()[1:]}
    assert all(space.key(a) in cells for a in table.archs)
    assert all(s > 0 for s in table.seconds)
    for name in ("params", "flops", "synflow", "naswot", "snip", "grad_norm"):
        assert (table.values[name] > 0).all(), name  # two real cells from the table's first rows


@pytest.mark.parametrize("extra, message", [
    (["--proxies", "foo"], "unknown zero-cost proxy 'foo'"),
    (["--proxies", "naswot,foo"], "unknown zero-cost proxy 'foo'"),
    (["--batch-size", "2"], "--batch-size 2: must be at least 4"),
    (["--image-size", "4"], "--image-size 4: must be at least 8"),
    (["--limit", "0"], "--limit 0: must be at least 1"),
    (["--num-classes", "1"], "--num-classes 1: must be at least 2"),
])
def test_bad_flags_fail_fast_and_write_nothing(tiny_benchmark, tmp_path, capsys, extra, message):
    out = tmp_path / "zc.csv.gz"
    before = _listing(tmp_path)
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(out), *extra]) == 2
    assert message in _one_error_line(capsys)
    assert _listing(tmp_path) == before


def test_batch_larger_than_the_data(tiny_benchmark, cifar_once, tmp_path, capsys):
    out = tmp_path / "zc.csv.gz"
    before = _listing(tmp_path)
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(out), "--batch-size", "100000",
                 "--data-dir", str(cifar_once)]) == 2
    assert "--batch-size 100000 is larger than the data (50000 images)" in _one_error_line(capsys)
    assert _listing(tmp_path) == before


def test_out_is_the_benchmark_itself(tiny_benchmark, capsys):
    data = tiny_benchmark.read_bytes()
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(tiny_benchmark), "--overwrite"]) == 2
    assert "is the benchmark table itself" in _one_error_line(capsys)
    assert tiny_benchmark.read_bytes() == data
    assert not partial_path(tiny_benchmark).exists()


def test_existing_out_needs_overwrite(tiny_benchmark, tmp_path, capsys):
    out = tmp_path / "zc.csv.gz"
    out.write_bytes(b"keep me")
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(out)]) == 2
    assert "exists: pass --overwrite" in _one_error_line(capsys)
    assert out.read_bytes() == b"keep me" and not partial_path(out).exists()


@pytest.mark.parametrize("name", ["zc.csv", "zc.gz", "zc.json"])
def test_out_must_be_a_gzip_csv(tiny_benchmark, tmp_path, capsys, name):
    before = _listing(tmp_path)
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(tmp_path / name)]) == 2
    assert "name it *.csv.gz" in _one_error_line(capsys)
    assert _listing(tmp_path) == before


def test_out_folder_must_exist(tiny_benchmark, tmp_path, capsys):
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(tmp_path / "no" / "zc.csv.gz")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert not (tmp_path / "no").exists()


def test_resume_with_other_flags_is_refused(tiny_benchmark, cifar_once, tmp_path, capsys):
    out = tmp_path / "zc.csv.gz"
    settings = {"table": str(tiny_benchmark.resolve()), "space": "nb201", "dataset": "cifar10", "image_size": 32,
                "num_classes": 10, "batch_size": 8, "seed": 1, "proxies": list(PROXIES)}
    journal = partial_path(out)
    journal.write_text(json.dumps({"settings": settings}) + "\n")
    assert main(["proxies", "--benchmark", str(tiny_benchmark), "--out", str(out), "--limit", "2", "--batch-size", "8",
                 "--data-dir", str(cifar_once)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"resuming from {journal}"
    assert len(err) == 2 and "scored with other settings (seed)" in err[1], err
    assert journal.read_text() == json.dumps({"settings": settings}) + "\n" and not out.exists()
