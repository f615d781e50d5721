"""Score every distinct cell of a benchmark table with the zero-cost proxies; read such a proxy file back.

A proxy file is a gzip CSV: ``arch_str`` (the space's pruned form of a cell) and one ``zc_<proxy>`` column per
proxy, plus ``zc_time_s``, the measured seconds of scoring that cell (every proxy together, on the machine
that scored it). It lists each distinct pruned network once: table rows whose cells prune to one network share
its row. Scoring writes a journal beside the output (``OUT.partial.jsonl``, one line per cell, flushed) so a
killed run resumes without recomputing; the gzip appears atomically at the end and the journal is removed.

>>> from nao.proxies.table import proxy_column
>>> proxy_column("naswot")
'zc_naswot'
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nao.errors import BenchmarkFileError, NaoError
from nao.proxies.measures import PROXIES, ProxyBatch, check_names, score
from nao.spaces.base import Architecture, SearchSpace

PREFIX = "zc_"
TIME_COLUMN = "zc_time_s"


def proxy_column(name: str) -> str:
    """The proxy file's column for proxy ``name``."""
    return PREFIX + name


@dataclass(frozen=True)
class ScoringSettings:
    """What a proxy file's numbers depend on; a resume must match them exactly."""

    table: str
    space: str
    dataset: str
    image_size: int
    num_classes: int
    batch_size: int
    seed: int
    proxies: tuple[str, ...]


def build_scoring_network(space: SearchSpace, arch: Architecture, num_classes: int, seed: int,
                          image_size: int = 32) -> torch.nn.Module:
    """The untrained network a proxy scores: NB201's skeleton for ``nb201`` cells, the cell network otherwise."""
    if space.name == "nb201":
        from nao.nn.nb201 import NB201Network

        return NB201Network(space, arch, num_classes=num_classes, generator=torch.Generator().manual_seed(seed))
    from nao.spaces.cells import ConvCellSpace

    if isinstance(space, ConvCellSpace):
        from nao.nn.network import NetworkConfig
        from nao.runs.images import build_network

        return build_network(space, arch, NetworkConfig(), num_classes, image_size, seed)
    raise NaoError(f"zero-cost proxies need a network for space {space.name!r}; image proxies are defined for "
                   f"nb201 and the conv cell spaces (recurrent cells: see nao.proxies.lm)")


def image_batch(images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, image_size: int,
                num_classes: int) -> ProxyBatch:
    """A seeded random minibatch of uint8 images ``(N, 3, H, W)``, resized and normalised as training sees them."""
    from nao.data.augment import normalize

    if batch_size > len(labels):
        raise NaoError(f"--batch-size {batch_size} is larger than the data ({len(labels)} images)")
    if batch_size < 4:
        raise NaoError(f"--batch-size {batch_size}: the gradient proxies split the batch in two halves of >= 2")
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:batch_size]
    x = normalize(images[pick].float() / 255.0)
    if x.shape[-1] != image_size:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True,
                                            align_corners=False)
    y = labels[pick].long()
    if int(y.max()) >= num_classes:
        raise NaoError(f"the images have labels up to {int(y.max())}, more than --num-classes {num_classes}")
    return ProxyBatch(x.contiguous(), y)


def distinct_cells(space: SearchSpace, archs: Sequence[Architecture]) -> list[Architecture]:
    """The distinct pruned networks of ``archs``, in first-seen order."""
    seen: dict[Hashable, Architecture] = {}
    for a in archs:
        p = space.prune(a)
        seen.setdefault(space.key(p), p)
    return list(seen.values())


# -- worker side (one process per worker, one torch thread each) -----------------------------------------------
_WORKER: dict = {}


def _init_worker(space_name: str, batch: ProxyBatch, names: tuple[str, ...], num_classes: int, seed: int,
                 image_size: int, threads: int) -> None:
    from nao.spaces import get_space

    torch.set_num_threads(threads)
    _WORKER.update(space=get_space(space_name), batch=batch, names=names, num_classes=num_classes, seed=seed,
                   image_size=image_size)


def score_cell(space: SearchSpace, arch: Architecture, batch: ProxyBatch, names: Sequence[str], num_classes: int,
               seed: int, image_size: int = 32) -> tuple[dict[str, float], float]:
    """Build ``arch``'s untrained network (seeded) and score it: ``(scores, seconds)``; seconds include the build."""
    start = time.perf_counter()
    net = build_scoring_network(space, arch, num_classes, seed, image_size).to(batch.inputs.device)
    values = score(net, batch, names)
    return values, time.perf_counter() - start


def _work(tokens: tuple[int, ...]) -> tuple[tuple[int, ...], dict[str, float], float]:
    w = _WORKER
    arch = Architecture(w["space"].name, tokens)
    values, seconds = score_cell(w["space"], arch, w["batch"], w["names"], w["num_classes"], w["seed"],
                                 w["image_size"])
    return tokens, values, seconds


# -- driver ------------------------------------------------------------------------------------------------------
def partial_path(out: Path) -> Path:
    """The resume journal of a scoring run writing ``out``."""
    return out.with_name(out.name + ".partial.jsonl")


def _read_partial(path: Path, settings: ScoringSettings) -> dict[tuple[int, ...], tuple[dict[str, float], float]]:
    done: dict[tuple[int, ...], tuple[dict[str, float], float]] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    try:
        head = json.loads(lines[0])
        theirs = {**head["settings"], "proxies": tuple(head["settings"]["proxies"])}
    except (json.JSONDecodeError, IndexError, KeyError, TypeError, AttributeError):
        raise NaoError(f"{path}: not a scoring journal (remove it to start over)") from None
    if theirs != asdict(settings):
        diff = [k for k, v in asdict(settings).items() if theirs.get(k) != v]
        raise NaoError(f"{path} was scored with other settings ({', '.join(diff)}): resume with the same flags, "
                       f"or remove it to start over")
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            done[tuple(rec["tokens"])] = (dict(rec["scores"]), float(rec["seconds"]))
        except json.JSONDecodeError:
            continue  # the torn last line of a killed run: that cell is scored again
        except (KeyError, TypeError, ValueError):
            raise NaoError(f"{path}: line {line_no} is not a scoring record (remove the file to start over)") from None
    return done


def score_table(space: SearchSpace, archs: Sequence[Architecture], batch: ProxyBatch, settings: ScoringSettings,
                out: Path, workers: int = 1, progress: Callable[[int, int], None] | None = None) -> int:
    """Score the distinct pruned cells of ``archs`` into the proxy file ``out``; returns the cells scored now.

    Resumes from ``partial_path(out)`` when it exists (same ``settings`` required). ``progress(done, total)`` is
    called after every cell.
    """
    names = check_names(settings.proxies)
    cells = distinct_cells(space, archs)
    journal = partial_path(out)
    done = _read_partial(journal, settings)
    todo = [c.tokens for c in cells if c.tokens not in done]
    if not journal.exists():
        journal.write_text(json.dumps({"settings": asdict(settings)}) + "\n", encoding="utf-8")
    else:
        _cut_torn_tail(journal)
    total, count = len(cells), len(cells) - len(todo)
    if progress:
        progress(count, total)
    with open(journal, "a", encoding="utf-8") as fh:
        for tokens, values, seconds in _run(space, todo, batch, names, settings, workers):
            bad = [n for n, v in values.items() if not math.isfinite(v)]
            if bad:  # measures map degenerate networks to FLOOR; a NaN here is a bug, never a journal entry
                raise NaoError(f"proxy {bad[0]} gave a non-finite score for {space.format(Architecture(space.name, tokens))}")
            fh.write(json.dumps({"tokens": list(tokens), "scores": values, "seconds": seconds}) + "\n")
            fh.flush()
            done[tokens] = (values, seconds)
            count += 1
            if progress:
                progress(count, total)
    write_proxy_file(out, space, [(c, *done[c.tokens]) for c in cells], names)
    journal.unlink()
    return len(todo)


def _cut_torn_tail(journal: Path) -> None:
    """Drop a killed run's unfinished last line, so the next record starts a line of its own."""
    data = journal.read_bytes()
    if data and not data.endswith(b"\n"):
        journal.write_bytes(data[: data.rfind(b"\n") + 1])


def _run(space: SearchSpace, todo: list[tuple[int, ...]], batch: ProxyBatch, names: Sequence[str],
         settings: ScoringSettings, workers: int) -> Iterator[tuple[tuple[int, ...], dict[str, float], float]]:
    init = (space.name, batch, tuple(names), settings.num_classes, settings.seed, settings.image_size)
    if workers <= 1:
        _init_worker(*init, threads=torch.get_num_threads())
        for tokens in todo:
            yield _work(tokens)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ctx.Pool(workers, initializer=_init_worker, initargs=(*init, 1)) as pool:
        yield from pool.imap_unordered(_work, todo, chunksize=4)


def write_proxy_file(out: Path, space: SearchSpace, rows: Sequence[tuple[Architecture, dict[str, float], float]],
                     names: Sequence[str]) -> None:
    """Write the gzip CSV atomically (temporary file, then rename)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arch_str", *(proxy_column(n) for n in names), TIME_COLUMN])
    for arch, values, seconds in rows:
        w.writerow([space.format(arch), *(f"{float(values[n]):.9g}" for n in names), f"{seconds:.6f}"])
    tmp = out.with_name(out.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, out)


@dataclass
class ProxyTable:
    """A proxy file in memory: pruned key -> row; ``values[name]`` aligned with ``archs``; ``seconds`` per cell."""

    path: Path
    space: SearchSpace
    archs: list[Architecture]
    values: dict[str, np.ndarray]
    seconds: np.ndarray
    index: dict[Hashable, int]

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def row(self, arch: Architecture) -> int:
        """The row of ``arch``'s pruned network; a missing cell raises :class:`BenchmarkFileError`."""
        try:
            return self.index[self.space.key(self.space.prune(arch))]
        except KeyError:
            raise BenchmarkFileError(f"{self.path}: no proxy scores for {self.space.format(arch)}") from None

    def scores(self, arch: Architecture) -> dict[str, float]:
        r = self.row(arch)
        return {n: float(v[r]) for n, v in self.values.items()}

    def check_covers(self, archs: Sequence[Architecture], what: str) -> None:
        """Every cell of ``archs`` (e.g. a benchmark table's) has scores here, or one clear error."""
        missing = [a for a in archs if self.space.key(self.space.prune(a)) not in self.index]
        if missing:
            raise BenchmarkFileError(f"{self.path} does not match {what}: {len(missing)} of its cells have no proxy "
                                     f"scores (first: {self.space.format(missing[0])}); score it with nao proxies")

    @classmethod
    def load(cls, path: str | os.PathLike, space: SearchSpace) -> ProxyTable:
        """Read and validate a proxy file; every problem raises :class:`BenchmarkFileError` naming it."""
        from nao.evaluators.tabular import _parse_arch, _read_gzip_text

        path = Path(path)
        if not path.is_file():
            raise BenchmarkFileError(f"{path}: proxy file not found (write one with nao proxies --benchmark TABLE --out FILE)")
        reader = csv.reader(io.StringIO(_read_gzip_text(path)))
        header = [h.strip() for h in next(reader, [])]
        if "arch_str" not in header or TIME_COLUMN not in header:
            raise BenchmarkFileError(f"{path}: not a proxy file (needs arch_str and {TIME_COLUMN}; header is "
                                     f"{','.join(header)})")
        names = [h[len(PREFIX):] for h in header if h.startswith(PREFIX) and h != TIME_COLUMN]
        unknown = [n for n in names if n not in PROXIES]
        if not names or unknown:
            raise BenchmarkFileError(f"{path}: unknown proxy column {PREFIX}{unknown[0] if unknown else ''}; "
                                     f"proxies: {', '.join(PROXIES)}")
        cols = {n: header.index(proxy_column(n)) for n in names}
        archs, index = [], {}
        vals: dict[str, list[float]] = {n: [] for n in names}
        secs: list[float] = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise BenchmarkFileError(f"{path}: line {line_no} has {len(row)} fields, header has {len(header)}")
            arch = space.prune(_parse_arch(space, row[header.index("arch_str")], path, line_no))
            index.setdefault(space.key(arch), len(archs))
            archs.append(arch)
            for n, c in cols.items():
                vals[n].append(_finite(row[c], proxy_column(n), path, line_no))
            secs.append(_finite(row[header.index(TIME_COLUMN)], TIME_COLUMN, path, line_no))
        if not archs:
            raise BenchmarkFileError(f"{path}: no rows after the header")
        return cls(path, space, archs, {n: np.asarray(v) for n, v in vals.items()}, np.asarray(secs), index)


def _finite(text: str, column: str, path: Path, line_no: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BenchmarkFileError(f"{path}: line {line_no}: column {column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise BenchmarkFileError(f"{path}: line {line_no}: column {column} is not finite: {text!r}")
    return value
