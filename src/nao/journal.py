"""Append-only JSONL journal of evaluations, each record written through to the OS at once.

One JSON object per line: ``arch`` (the space's string form), ``tokens``, ``status``,
``metrics``, ``cost_s``, ``error``, ``info``, ``fidelity`` (epochs trained) and ``cost`` (compute in
the evaluator's unit; journals written before these two existed read back as ``None`` and 0). A torn last line (the process died while
writing) is dropped with a warning when the journal is read back (``repair=True`` also cuts
it from the file so that a resumed run appends cleanly).

Whole records: each record is one ``os.write`` of the complete line (newline included) to a file
opened with ``O_APPEND``, so it lands whole at the end, never interleaved with or glued to another;
a torn tail left by a crash (a write cut short) is cut off when the journal is opened for appending,
so the next record starts on a line of its own. Durability: every record reaches the operating
system before ``append`` returns, so a killed process (SIGKILL, OOM) never loses one. ``fsync`` (which only matters when the machine
itself goes down) costs ~0.5 ms, as much as a whole tabular evaluation, so it runs when
``fsync_every_s`` has passed since the previous one and on close: evaluations slower than that
(training, supernets) are fsynced one by one, a burst of cheap lookups once a second.

>>> import tempfile, os
>>> from nao.spaces import get_space
>>> from nao.results import Result
>>> space = get_space("nb201")
>>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
>>> with Journal(path, space) as j:
...     j.append(Result(space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), "ok", {"val_acc": 0.1}))
>>> [r.metrics for r in read_journal(path, space)]
[{'val_acc': 0.1}]
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from nao.errors import NaoError
from nao.results import Result
from nao.spaces.base import SearchSpace


def result_to_record(result: Result, space: SearchSpace) -> dict[str, Any]:
    """A JSON-serialisable dict for ``result``."""
    return {
        "arch": space.format(result.arch),
        "tokens": list(result.arch.tokens),
        "status": result.status,
        "metrics": result.metrics,
        "cost_s": result.cost_s,
        "error": result.error,
        "info": result.info,
        "fidelity": result.fidelity,
        "cost": result.cost,
    }


def record_to_result(record: dict[str, Any], space: SearchSpace) -> Result:
    """Inverse of :func:`result_to_record`."""
    arch = space.make(record["tokens"]) if "tokens" in record else space.parse(record["arch"])
    return Result(
        arch=arch,
        status=record["status"],
        metrics={k: float(v) for k, v in record.get("metrics", {}).items()},
        cost_s=float(record.get("cost_s", 0.0)),
        error=record.get("error"),
        info=dict(record.get("info", {})),
        fidelity=None if record.get("fidelity") is None else float(record["fidelity"]),
        cost=float(record.get("cost", 0.0)),
    )


class Journal:
    """Appends results to a JSONL file; each record reaches the OS before ``append`` returns.

    Args:
        path: the JSONL file (created with its parent directories; appended to if it exists).
        space: formats architectures.
        fsync_every_s: fsync when this long has passed since the previous fsync (``0``: after
            every record; ``None``: never, e.g. for throw-away runs); always on close.
    """

    def __init__(self, path: str | os.PathLike, space: SearchSpace, fsync_every_s: float | None = 1.0) -> None:
        self.path = Path(path)
        self.space = space
        self.fsync_every_s = fsync_every_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _cut_torn_tail(self.path, space)
        # Counting from the open, a burst of cheap records is fsynced once a second, not also on its first record.
        self._last_fsync = time.monotonic()
        self._dirty = False

    def append(self, result: Result) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: journal is closed")
        data = (json.dumps(result_to_record(result, self.space), sort_keys=True) + "\n").encode("utf-8")
        # One write of the whole line: in the OS page cache now, whole, and survives the death of this process.
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: cut what landed so no half record stays
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes); the record was not kept")
        self._dirty = True
        if self.fsync_every_s is not None and time.monotonic() - self._last_fsync >= self.fsync_every_s:
            self._sync()

    def _sync(self) -> None:
        os.fsync(self._fd)
        self._last_fsync = time.monotonic()
        self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            if self._dirty and self.fsync_every_s is not None:
                self._sync()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: str | os.PathLike, space: SearchSpace, repair: bool = False) -> list[Result]:
    """Results recorded in ``path``, in order.

    A last line that is not valid JSON (a torn write) is dropped with a warning; with
    ``repair=True`` it is also cut from the file so appends continue cleanly. A bad line
    anywhere else is corruption and raises :class:`NaoError` naming the line.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    results: list[Result] = []
    good_bytes = 0
    for i, line in enumerate(lines):
        is_last = all(not rest.strip() for rest in lines[i + 1 :])
        if not line.strip():
            good_bytes += len(line) + 1
            continue
        try:
            record = json.loads(line)
            results.append(record_to_result(record, space))
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError, TypeError, ValueError) as e:
            if is_last:
                warnings.warn(f"{path}: dropping torn last line {i + 1} ({e.__class__.__name__})", stacklevel=2)
                if repair:
                    with open(path, "r+b") as fh:
                        fh.truncate(good_bytes)
                break
            raise NaoError(f"{path}: line {i + 1} is not a valid journal record: {e}") from None
        good_bytes += len(line) + 1
    return results


def _cut_torn_tail(path: Path, space: SearchSpace) -> None:
    """Before appending: a last line without its newline is a write a crash cut short (or, whole but
    unterminated, one whose newline never came): cut the torn one, terminate the whole one, so the next
    record can never be glued to it."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        fh.seek(max(0, size - (1 << 20)))
        tail = fh.read()
    if tail.endswith(b"\n"):
        return
    start = tail.rfind(b"\n") + 1  # within the last MiB: a record is far shorter
    last = tail[start:]
    try:
        record_to_result(json.loads(last), space)
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError, TypeError, ValueError):
        warnings.warn(f"{path}: cutting a torn last record ({len(last)} bytes) before appending", stacklevel=3)
        with open(path, "r+b") as fh:
            fh.truncate(size - len(last))
        return
    with open(path, "ab") as fh:
        fh.write(b"\n")


def read_journal_for_resume(path: str | os.PathLike, space: SearchSpace) -> tuple[list[Result], list[str]]:
    """The journal of a run being resumed, a torn last line cut from the file (``repair=True``).

    Returns the results and the warnings for the run's log: a torn line is what a kill leaves,
    so it is reported, and callers log it once their ``search.log`` is open to record it.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = read_journal(path, space, repair=True)
    return results, [str(w.message) for w in caught]
