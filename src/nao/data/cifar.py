"""CIFAR-10 / CIFAR-100 from the official binary files, as uint8 tensors.

Reads ``cifar-10-batches-bin/`` (``data_batch_1..5.bin``, ``test_batch.bin``: records of
1 label byte + 3,072 pixel bytes) and ``cifar-100-binary/`` (``train.bin``, ``test.bin``:
coarse label byte, fine label byte, 3,072 pixel bytes; the fine label is used), either
unpacked or straight from the official ``.tar.gz`` without extracting it. Every file's size
is checked against the record count the format prescribes, so a truncated or foreign file
is rejected with its name. Images come back as one ``(N, 3, 32, 32)`` uint8 tensor, ready
to be moved to the device once and augmented there (:mod:`nao.data.augment`).

Downloads happen only when asked (:func:`download_cifar` or ``load_cifar(..., download=True)``)
and are checked against the MD5 sums published on https://www.cs.toronto.edu/~kriz/cifar.html.

>>> from nao.data.paths import data_root
>>> data = load_cifar("cifar10", data_root())  # doctest: +SKIP
>>> data.train.images.shape, data.test.images.dtype  # doctest: +SKIP
(torch.Size([50000, 3, 32, 32]), torch.uint8)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nao.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_BYTES = 3 * 32 * 32


@dataclass(frozen=True)
class CifarFormat:
    """Layout of one official binary release."""

    name: str
    title: str
    directory: str  # the folder inside the archive
    archive: str
    url: str
    md5: str
    train_files: tuple[tuple[str, int], ...]  # (file, records)
    test_files: tuple[tuple[str, int], ...]
    label_bytes: int
    label_index: int  # which label byte is the class
    num_classes: int
    meta_file: str

    @property
    def record_bytes(self) -> int:
        return self.label_bytes + IMAGE_BYTES


FORMATS: dict[str, CifarFormat] = {
    "cifar10": CifarFormat(
        name="cifar10",
        title="CIFAR-10",
        directory="cifar-10-batches-bin",
        archive="cifar-10-binary.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        md5="c32a1d4ab5d03f1284b67883e8d87530",
        train_files=tuple((f"data_batch_{i}.bin", 10_000) for i in range(1, 6)),
        test_files=(("test_batch.bin", 10_000),),
        label_bytes=1,
        label_index=0,
        num_classes=10,
        meta_file="batches.meta.txt",
    ),
    "cifar100": CifarFormat(
        name="cifar100",
        title="CIFAR-100",
        directory="cifar-100-binary",
        archive="cifar-100-binary.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        md5="03b5dce01913d631647c71ecec9e9cb8",
        train_files=(("train.bin", 50_000),),
        test_files=(("test.bin", 10_000),),
        label_bytes=2,
        label_index=1,
        num_classes=100,
        meta_file="fine_label_names.txt",
    ),
}


@dataclass
class ImageSet:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device))

    def take(self, index: torch.Tensor) -> ImageSet:
        """The examples at ``index`` (a 1-D long tensor), as a new set."""
        index = index.to(self.labels.device)
        return ImageSet(self.images[index], self.labels[index])


@dataclass
class CifarData:
    """The official train and test splits of one dataset."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        return FORMATS[self.name].num_classes


def get_format(name: str) -> CifarFormat:
    """The :class:`CifarFormat` for ``cifar10``/``cifar100`` (ConfigError otherwise)."""
    key = name.lower().replace("-", "")
    if key not in FORMATS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[key]


def parse_records(raw: bytes, fmt: CifarFormat, expected: int, origin: str) -> ImageSet:
    """Decode ``expected`` binary records; DataError naming ``origin`` if the size is wrong."""
    want = expected * fmt.record_bytes
    if len(raw) != want:
        what = "truncated" if len(raw) < want else "too long"
        raise DataError(
            f"{origin}: {len(raw):,} bytes, expected {want:,} ({expected:,} records of {fmt.record_bytes} bytes) "
            f"-- {what}; is it the {fmt.title} binary version ({fmt.archive})?"
        )
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(expected, fmt.record_bytes)  # (N, label+3072)
    labels = rows[:, fmt.label_index].astype(np.int64)
    if labels.max(initial=0) >= fmt.num_classes:
        raise DataError(f"{origin}: label {int(labels.max())} >= {fmt.num_classes}; not a {fmt.title} file")
    images = rows[:, fmt.label_bytes :].reshape(expected, 3, 32, 32)  # (N,3072) -> (N,3,32,32) planar RGB
    return ImageSet(torch.from_numpy(images.copy()), torch.from_numpy(labels))


def _concat(parts: list[ImageSet]) -> ImageSet:
    return ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def _class_names(text: str | None, fmt: CifarFormat) -> tuple[str, ...]:
    names = tuple(line.strip() for line in (text or "").splitlines() if line.strip())
    return names if len(names) == fmt.num_classes else tuple(str(i) for i in range(fmt.num_classes))


def _read_directory(folder: Path, fmt: CifarFormat) -> CifarData:
    def read(files: tuple[tuple[str, int], ...]) -> ImageSet:
        parts = []
        for fname, count in files:
            path = folder / fname
            if not path.is_file():
                raise DataError(f"{path}: missing ({fmt.title} needs {', '.join(f for f, _ in files)} in {folder})")
            parts.append(parse_records(path.read_bytes(), fmt, count, str(path)))
        return _concat(parts)

    meta = folder / fmt.meta_file
    classes = _class_names(meta.read_text() if meta.is_file() else None, fmt)
    return CifarData(fmt.name, read(fmt.train_files), read(fmt.test_files), classes, str(folder))


def _read_archive(path: Path, fmt: CifarFormat) -> CifarData:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}

            def member_bytes(fname: str) -> bytes | None:
                m = members.get(f"{fmt.directory}/{fname}")
                f = tar.extractfile(m) if m is not None else None
                return f.read() if f is not None else None

            def read(files: tuple[tuple[str, int], ...]) -> ImageSet:
                parts = []
                for fname, count in files:
                    raw = member_bytes(fname)
                    if raw is None:
                        raise DataError(f"{path}: member {fmt.directory}/{fname} missing; not the {fmt.title} binary archive")
                    parts.append(parse_records(raw, fmt, count, f"{path}:{fmt.directory}/{fname}"))
                return _concat(parts)

            train, test = read(fmt.train_files), read(fmt.test_files)
            meta = member_bytes(fmt.meta_file)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{path}: not a readable .tar.gz ({e})") from None
    classes = _class_names(meta.decode("utf-8", "replace") if meta else None, fmt)
    return CifarData(fmt.name, train, test, classes, str(path))


def candidate_paths(fmt: CifarFormat, data_dir: Path) -> list[Path]:
    """Where :func:`load_cifar` looks, in order: unpacked folders, then archives."""
    roots = [data_dir, data_dir / fmt.name]
    return [r / fmt.directory for r in roots] + [r / fmt.archive for r in roots]


def load_cifar(name: str, data_dir: str | os.PathLike, download: bool = False) -> CifarData:
    """Load ``cifar10``/``cifar100`` from ``data_dir`` (see :func:`candidate_paths`).

    With ``download=True`` and nothing found, fetches the official archive into
    ``data_dir`` first. Raises :class:`DataError` saying where it looked and how to get
    the data when it is absent.
    """
    fmt = get_format(name)
    data_dir = Path(data_dir)
    for path in candidate_paths(fmt, data_dir):
        if path.is_dir():
            return _read_directory(path, fmt)
        if path.is_file():
            return _read_archive(path, fmt)
    if download:
        return _read_archive(download_cifar(fmt.name, data_dir), fmt)
    looked = ", ".join(str(p) for p in candidate_paths(fmt, data_dir))
    raise DataError(
        f"{fmt.title} not found; looked for {looked}. Pass --download to fetch {fmt.url} "
        f"({fmt.archive}, MD5 {fmt.md5}), or unpack it into --data-dir"
    )


def md5sum(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def download_cifar(name: str, data_dir: str | os.PathLike) -> Path:
    """Download the official archive of ``name`` into ``data_dir`` and verify its MD5.

    The file is written under a temporary name and renamed only after the checksum
    matches, so an interrupted download never looks like data.
    """
    fmt = get_format(name)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / fmt.archive
    if target.is_file() and md5sum(target) == fmt.md5:
        return target
    log.info("downloading %s from %s", fmt.title, fmt.url)
    fd, tmp_name = tempfile.mkstemp(prefix=fmt.archive + ".", suffix=".part", dir=data_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(fmt.url, timeout=60) as resp:
            shutil.copyfileobj(resp, out)
        got = md5sum(tmp)
        if got != fmt.md5:
            raise DataError(f"{fmt.url}: downloaded file has MD5 {got}, expected {fmt.md5}; try again")
        tmp.replace(target)
    except OSError as e:
        raise DataError(f"could not download {fmt.url} to {data_dir}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def split_train_val(data: ImageSet, val_size: int, generator: torch.Generator) -> tuple[ImageSet, ImageSet]:
    """A seeded random split into (train, validation) with ``val_size`` validation images."""
    n = len(data)
    if not 0 < val_size < n:
        raise ConfigError(f"validation size must be between 1 and {n - 1}, got {val_size}")
    perm = torch.randperm(n, generator=generator)
    return data.take(perm[val_size:]), data.take(perm[:val_size])


def subset(data: ImageSet, size: int, generator: torch.Generator) -> ImageSet:
    """A seeded random subset of ``size`` examples (all of them if ``size >= len``)."""
    if size <= 0:
        raise ConfigError(f"subset size must be positive, got {size}")
    if size >= len(data):
        return data
    return data.take(torch.randperm(len(data), generator=generator)[:size])


def downsample(data: ImageSet, size: int) -> ImageSet:
    """The images of ``data`` shrunk to ``size`` x ``size`` by area averaging (still uint8).

    CPU-sized searches use 16x16 CIFAR (as NAS-Bench-201 uses 16x16 ImageNet): a quarter of the
    pixels, so a quarter of the compute, while the classes stay recognisable. ``size`` must divide
    the current side, so every output pixel averages the same whole block of inputs.

    >>> tiny = ImageSet(torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).repeat(1, 3, 1, 1), torch.zeros(1))
    >>> downsample(tiny, 2).images[0, 0].tolist()
    [[2, 4], [10, 12]]
    """
    side = int(data.images.shape[-1])
    if size <= 0 or side % size:
        raise ConfigError(f"image size {size} must be a positive divisor of the images' {side}x{side} pixels")
    if size == side:
        return data
    k = side // size
    pooled = torch.nn.functional.avg_pool2d(data.images.float(), kernel_size=k)
    return ImageSet(pooled.round_().to(torch.uint8), data.labels)
