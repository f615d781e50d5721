"""Run directories: everything a search leaves behind, readable by anyone.

Layout::

    DIR/config.json     the resolved configuration (flags and defaults)
    DIR/manifest.json   package version, git revision, seed, command line, start time
    DIR/journal.jsonl   one JSON object per unique evaluation (see nao.journal)
    DIR/best.json       the best architecture by validation accuracy, with its metrics
    DIR/search.log      the log of the run: settings, one line per evaluation, warnings
    DIR/predictions.json  the controller's prediction for each architecture it proposed (nao strategy)
    DIR/tensorboard/    TensorBoard scalars (``--tensorboard``)
    DIR/report/         plots and report.md (``nao report DIR``)
    DIR/.lock           held by the process writing the run (:class:`RunLock`)

>>> import tempfile
>>> rd = RunDir.create(tempfile.mkdtemp() + "/run", {"seed": 0})  # this process is now its one writer
>>> sorted(p.name for p in rd.path.iterdir())
['.lock', 'config.json', 'manifest.json']
>>> rd.unlock()
>>> RunDir.open(rd.path).config()
{'seed': 0}
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nao import __version__
from nao.errors import ConfigError
from nao.results import Objective, Result, Tally
from nao.spaces.base import SearchSpace


def git_revision() -> str | None:
    """The git commit of the installed source tree, if it is a checkout."""
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class RunLock:
    """The one-writer rule of a run directory: an exclusive ``fcntl`` lock on ``DIR/.lock``, held by the
    process writing the run for as long as it runs. The kernel drops it when that process dies (kill -9
    included), so a stale lock never blocks a resume; a live one refuses a second writer in one line.
    """

    NAME = ".lock"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`ConfigError` naming the process that holds it."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"{self.path.parent} is in use by a running process (pid {holder}); a run directory "
                              f"has one writer at a time: wait for it to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Let the next writer in (the file stays: the lock is on it, not its existence)."""
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass
class RunDir:
    """A run directory on disk."""

    path: Path
    #: Held while this process writes the run (:meth:`create` / :meth:`lock`); see :class:`RunLock`.
    writer: RunLock | None = field(default=None, compare=False, repr=False)

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any]) -> RunDir:
        """Make ``path`` (must not already hold a run), take its writer lock, write config + manifest."""
        path = Path(path)
        if (path / "config.json").exists():
            raise ConfigError(f"--out {path} already holds a run; use --resume {path} or choose another directory")
        path.mkdir(parents=True, exist_ok=True)
        rd = cls(path)
        rd.lock()
        if (path / "config.json").exists():  # another process created it between the check and the lock
            rd.unlock()
            raise ConfigError(f"--out {path} already holds a run; use --resume {path} or choose another directory")
        rd.write_json("config.json", config)
        rd.write_json(
            "manifest.json",
            {
                "nao_version": __version__,
                "git_revision": git_revision(),
                "seed": config.get("seed"),
                "command": sys.argv,
                "python": platform.python_version(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        return rd

    @classmethod
    def open(cls, path: str | os.PathLike, flag: str = "--resume") -> RunDir:
        """An existing run directory (ConfigError naming ``flag`` and ``path`` if it is not a run)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{flag} {path}: not a run directory (no config.json)")
        return cls(path)

    def lock(self) -> RunDir:
        """Become the run's one writer (:class:`RunLock`); ConfigError if a live process already is."""
        if self.writer is None:
            writer = RunLock(self.path)
            writer.acquire()
            self.writer = writer
        return self

    def unlock(self) -> None:
        """Release the writer lock taken by :meth:`lock` or :meth:`create`."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def note_resume(self, config: dict[str, Any]) -> None:
        """Record a resume: the (possibly updated) config and who resumed it, when, from which revision."""
        self.write_json("config.json", config)
        manifest = self.read_json("manifest.json", default={})
        manifest.setdefault("resumes", []).append(
            {"command": sys.argv, "git_revision": git_revision(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        )
        self.write_json("manifest.json", manifest)

    def read_json(self, name: str, default: Any = None) -> Any:
        """A JSON file of the run, ``default`` if absent; ConfigError naming the file if unreadable."""
        path = self.path / name
        if not path.exists():
            return default
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None

    def config(self) -> dict[str, Any]:
        config = self.read_json("config.json")
        if not isinstance(config, dict):
            raise ConfigError(f"{self.path / 'config.json'}: expected a JSON object, got {type(config).__name__}")
        return config

    def write_json(self, name: str, obj: Any) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, self.path / name)

    def write_predictions(self, strategy: Any, space: SearchSpace) -> None:
        """``predictions.json`` from a strategy that predicts accuracy (``history_predictions``), if any.

        Each entry pairs the controller's prediction for an architecture it proposed with the
        evaluated objective. Predictions are in the normalised target scale of the round that
        made them, so their order, not their value, is what compares with the truth.
        """
        pairs = getattr(strategy, "history_predictions", None)
        if not pairs:
            return
        rounds = getattr(strategy, "proposal_round", None)
        self.write_json(
            "predictions.json",
            {
                "scale": "per-round normalised predictor output (compare ranks, not values)",
                "predictions": [
                    {"arch": space.format(a), "tokens": list(a.tokens), "predicted": float(p), "true": float(t),
                     **({"round": rounds(a)} if rounds is not None else {})}
                    for a, p, t in pairs
                ],
            },
        )

    def write_best(self, best: Result | None, space: SearchSpace, n_evaluated: int,
                   objective: Objective | str = "val_acc") -> None:
        """``best.json``: the best result by the run's objective (which it names)."""
        head = {"n_evaluated": n_evaluated, "objective": Objective.of(objective).to_dict()}
        if best is None:
            self.write_json("best.json", {"arch": None, "metrics": {}, **head})
            return
        self.write_json("best.json", {"arch": space.format(best.arch), "space": space.name,
                                      "tokens": list(best.arch.tokens), "metrics": best.metrics, **head})


def refuse_changed_flags(where: str | os.PathLike, given: Mapping[str, Any], saved: Mapping[str, Any],
                         out: str | os.PathLike | None = None) -> None:
    """``--resume DIR`` checks: a flag given (not None) with a value other than the run's, or another
    ``--out``, raises :class:`ConfigError` naming it; ``given`` and ``saved`` map flag names
    (``seed``, ``image_size``...) to values."""
    for key, value in given.items():
        if value is not None and value != saved.get(key):
            raise ConfigError(f"--resume {where}: --{key.replace('_', '-')} {value} conflicts with the run's "
                              f"{key} {saved.get(key)}")
    if out and Path(out).resolve() != Path(where).resolve():
        raise ConfigError(f"--resume {where}: --out {out} conflicts; a resumed run continues in its own directory")


def check_tensorboard() -> None:
    """Raise ConfigError unless TensorBoard logging is available (checked before a run starts)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"--tensorboard needs the tensorboard package ({e}); pip install 'nao[tensorboard]'") from None


def tensorboard_writer(logdir: str | os.PathLike):
    """A TensorBoard ``SummaryWriter`` for ``logdir``; ConfigError if tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError(f"--tensorboard needs the tensorboard package ({e}); pip install 'nao[tensorboard]'") from None
    return SummaryWriter(str(logdir))


class _LogFile(logging.Handler):
    """``search.log``: log records of the library plus the run's own lines, in one buffered file.

    Lines are flushed at most once a second (and at once for warnings, and on close): the
    journal, not the log, is what a resume relies on, and a flush per cheap evaluation would
    cost as much as the evaluation.
    """

    def __init__(self, path: Path, flush_every_s: float = 1.0) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._fh = open(path, "a", encoding="utf-8")
        self.flush_every_s = flush_every_s
        self._last_flush = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        self.write(self.format(record), record.levelno)

    def write(self, line: str, level: int = logging.INFO) -> None:
        self._fh.write(line + "\n")
        now = time.monotonic()
        if level >= logging.WARNING or now - self._last_flush >= self.flush_every_s:
            self._fh.flush()
            self._last_flush = now

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        super().close()


def _stamp() -> str:
    """The timestamp format of logging's ``asctime``, so both kinds of line read alike."""
    now = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now % 1 * 1000):03d}"


class RunLog:
    """``search.log`` (and optionally TensorBoard scalars) of a run, fed one result at a time.

    One line per evaluation goes to the file only, so the console keeps just the progress bar;
    warnings of the library (``nao.*``: retries, failed evaluations) reach the file too, at the
    console's level.

    Args:
        rundir: the run directory (``search.log`` is appended to, so a resumed run continues it).
        space: formats architectures.
        objective: the run's objective (the Study's): what is logged and how ``best=`` is chosen.
        tensorboard: also write ``tensorboard/`` scalars: each result's objective and the best so far.
        skip: results already logged by an earlier process (a resume's replay): counted, not logged again.

    Use it as a Study callback: ``Study(..., callbacks=[runlog])``.
    """

    def __init__(
        self,
        rundir: RunDir,
        space: SearchSpace,
        objective: Objective | str = "val_acc",
        tensorboard: bool = False,
        skip: Iterable[Result] = (),
    ) -> None:
        self.space = space
        self.objective = Objective.of(objective)
        self.tally = Tally(self.objective, skip)
        self._writer = tensorboard_writer(rundir.path / "tensorboard") if tensorboard else None
        self._file = _LogFile(rundir.path / "search.log")
        logging.getLogger("nao").addHandler(self._file)

    def info(self, message: str, *args: Any) -> None:
        """A line in the log file (``message % args``)."""
        self._file.write(f"{_stamp()} INFO nao.run: {message % args if args else message}")

    def __call__(self, result: Result) -> None:
        value, new = self.tally.add(result)
        if not new:
            return
        step, best = self.tally.step, self.tally.best
        arch = self.space.format(result.arch)
        if value is None:
            self._file.write(f"{_stamp()} WARNING nao.run: #{step} failed ({result.error}): {arch}", logging.WARNING)
        else:
            self._file.write(f"{_stamp()} INFO nao.run: #{step} {self.objective.metric}={value:.4f} best={best:.4f} "
                             f"cost={result.cost_s:.1f}s {arch}")
        if self._writer is not None:
            if value is not None:
                self._writer.add_scalar(f"search/{self.objective.metric}", value, step)
            if best is not None:
                self._writer.add_scalar(f"search/best_{self.objective.metric}", best, step)

    def close(self) -> None:
        logging.getLogger("nao").removeHandler(self._file)
        self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
