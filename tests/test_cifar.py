"""CIFAR binary loaders (directory, archive, download) and on-device batch augmentation."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from nao.data import cifar
from nao.data.augment import AugmentConfig, BatchLoader, cutout, normalize, random_crop, random_flip
from nao.data.cifar import ImageSet, load_cifar, parse_records, split_train_val, subset
from nao.errors import ConfigError, DataError

# A miniature CIFAR-10 layout (same record format, a few records per file) keeps tests fast.
TINY = replace(
    cifar.FORMATS["cifar10"],
    train_files=tuple((f"data_batch_{i}.bin", 3) for i in range(1, 6)),
    test_files=(("test_batch.bin", 4),),
)
TINY100 = replace(cifar.FORMATS["cifar100"], train_files=(("train.bin", 6),), test_files=(("test.bin", 2),))


def _records(fmt, n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (n, fmt.record_bytes), dtype=np.uint8)
    rows[:, : fmt.label_bytes] = rng.integers(0, 10, (n, fmt.label_bytes))
    return rows.tobytes()


def _write_dir(root: Path, fmt) -> Path:
    folder = root / fmt.directory
    folder.mkdir(parents=True)
    for k, (fname, n) in enumerate(fmt.train_files + fmt.test_files):
        (folder / fname).write_bytes(_records(fmt, n, k))
    (folder / fmt.meta_file).write_text("\n".join(f"class{i}" for i in range(fmt.num_classes)))
    return folder


def _archive_bytes(fmt) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for k, (fname, n) in enumerate(fmt.train_files + fmt.test_files):
            raw = _records(fmt, n, k)
            info = tarfile.TarInfo(f"{fmt.directory}/{fname}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


@pytest.fixture(scope="module")
def real_cifar10(cifar_dir):
    return load_cifar("cifar10", cifar_dir)


def test_real_cifar10_shapes_and_balance(real_cifar10):
    d = real_cifar10
    assert d.train.images.shape == (50_000, 3, 32, 32) and d.train.images.dtype == torch.uint8
    assert d.test.labels.dtype == torch.int64 and len(d.test) == 10_000
    assert torch.equal(torch.bincount(d.test.labels), torch.full((10,), 1000))
    assert d.classes[0] == "airplane" and d.num_classes == 10
    mean = d.train.images[:5000].float().mean((0, 2, 3)) / 255  # planar RGB decoded correctly
    assert torch.allclose(mean, torch.tensor([0.491, 0.482, 0.447]), atol=0.01)


def test_directory_and_archive_give_the_same_data(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar.FORMATS, "cifar10", TINY)
    _write_dir(tmp_path / "a", TINY)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / TINY.archive).write_bytes(_archive_bytes(TINY))
    a, b = load_cifar("cifar10", tmp_path / "a"), load_cifar("cifar10", tmp_path / "b")
    assert len(a.train) == 15 and len(a.test) == 4
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert a.classes[1] == "class1"


def test_cifar100_uses_the_fine_label(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar.FORMATS, "cifar100", TINY100)
    folder = _write_dir(tmp_path, TINY100)
    raw = bytearray((folder / "test.bin").read_bytes())
    raw[0], raw[1] = 3, 77  # coarse 3, fine 77
    (folder / "test.bin").write_bytes(bytes(raw))
    d = load_cifar("cifar100", tmp_path)
    assert d.test.labels[0] == 77 and d.num_classes == 100


def test_truncated_file_is_rejected_by_name(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar.FORMATS, "cifar10", TINY)
    folder = _write_dir(tmp_path, TINY)
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"data_batch_3\.bin.*truncated"):
        load_cifar("cifar10", tmp_path)


def test_wrong_labels_are_rejected():
    fmt = TINY
    raw = bytearray(_records(fmt, 2, 0))
    raw[0] = 200
    with pytest.raises(DataError, match="label 200"):
        parse_records(bytes(raw), fmt, 2, "x.bin")


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar("cifar100", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "cifar-100-binary") in msg and "--download" in msg and "cifar-100-binary.tar.gz" in msg


def test_unknown_dataset_name():
    with pytest.raises(ConfigError, match="cifar10, cifar100"):
        load_cifar("mnist", ".")


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_verifies_md5_then_loads(tmp_path, monkeypatch):
    payload = _archive_bytes(TINY)
    fmt = replace(TINY, md5=hashlib.md5(payload).hexdigest())
    monkeypatch.setitem(cifar.FORMATS, "cifar10", fmt)
    urls = []
    monkeypatch.setattr(cifar.urllib.request, "urlopen", lambda url, timeout: urls.append(url) or _FakeResponse(payload))
    d = load_cifar("cifar10", tmp_path, download=True)
    assert urls == [fmt.url] and len(d.train) == 15 and (tmp_path / fmt.archive).is_file()


def test_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar.FORMATS, "cifar10", TINY)  # real MD5, fake bytes
    monkeypatch.setattr(cifar.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"not the archive"))
    with pytest.raises(DataError, match="MD5"):
        load_cifar("cifar10", tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def _set(n: int) -> ImageSet:
    return ImageSet(torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32).clone(), torch.arange(n))


def test_split_and_subset_are_seeded_and_disjoint():
    data = _set(100)
    tr, va = split_train_val(data, 10, torch.Generator().manual_seed(1))
    tr2, va2 = split_train_val(data, 10, torch.Generator().manual_seed(1))
    assert torch.equal(va.labels, va2.labels) and len(tr) == 90
    assert set(tr.labels.tolist()).isdisjoint(va.labels.tolist())
    assert len(subset(data, 7, torch.Generator().manual_seed(0))) == 7
    with pytest.raises(ConfigError):
        split_train_val(data, 100, torch.Generator())


def test_crop_flip_cutout_on_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(random_crop(x, 0, g), x)
    c = random_crop(x, 4, g)
    assert c.shape == x.shape and c.dtype == torch.uint8
    # Each crop is a shifted window of the zero-padded image: its content appears in the pad.
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    windows = padded.unfold(2, 32, 1).unfold(3, 32, 1)  # (B,C,9,9,32,32)
    assert all((windows[i] == c[i][:, None, None]).flatten(3).all(-1).all(0).any() for i in range(8))
    f = random_flip(x, g)
    assert all(torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(2)) for i in range(8))
    z = cutout(normalize(x), 16, g)
    holes = (z == 0).all(1).flatten(1).sum(1)
    assert (holes > 0).all() and (holes <= 256).all()


def test_batches_are_seeded_and_cover_the_epoch():
    data = _set(50)
    cfg = AugmentConfig(crop_padding=4, flip=True, cutout=8)
    seen = torch.cat([y for _, y in BatchLoader(data, 16, torch.Generator().manual_seed(3), cfg)])
    again = torch.cat([y for _, y in BatchLoader(data, 16, torch.Generator().manual_seed(3), cfg)])
    assert torch.equal(seen, again) and sorted(seen.tolist()) == list(range(50))
    assert len(BatchLoader(data, 16, torch.Generator(), cfg, drop_last=True)) == 3
    x, _ = next(iter(BatchLoader(data, 16)))
    assert x.dtype == torch.float32 and x.shape == (16, 3, 32, 32)
