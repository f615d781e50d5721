"""A run you can browse: the journal mirrored into Optuna's journal storage, served by optuna-dashboard.

Each journal record becomes one Optuna trial, in order: the architecture's tokens are its
parameters (one categorical per position over the tokens the space allows there, named by
what the position encodes), the run's objective is its value with the study's direction
(``val_acc``: maximise, ``val_ppl``: minimise), and the architecture string, the metrics
(test metrics too: this is a report, not the search) and the evaluation's cost are user
attributes. A failed evaluation, or one without a finite objective value, is a FAIL trial
with the error as an attribute. Values stay in the journal's units (accuracies as fractions).

Needs the ``[dashboard]`` extra (``optuna``; ``optuna-dashboard`` to serve).

>>> import tempfile, numpy as np
>>> from nao.journal import Journal
>>> from nao.rundir import RunDir
>>> from nao.spaces import get_space
>>> space = get_space("nb201")
>>> param_names(space)[:2]
['0:edge 0->1', '1:edge 0->2']
>>> run = RunDir.create(tempfile.mkdtemp() + "/run", {"space": "nb201", "objective": "val_acc"})
>>> with Journal(run.journal_path, space) as j:
...     j.append(Result(space.sample(np.random.default_rng(0)), "ok", {"val_acc": 0.9}))
...     j.append(Result.failed(space.sample(np.random.default_rng(1)), "out of memory"))
>>> export_storage(run.path, run.path / "optuna.log")
2
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nao.errors import ConfigError
from nao.results import Objective, Result
from nao.spaces.base import SearchSpace

#: What to install when the extra is missing (named in the error).
PIP_HINT = 'pip install "nao[dashboard]" (from a checkout: pip install -e ".[dashboard]")'


def require(*modules: str) -> None:
    """Import ``modules`` or raise :class:`ConfigError` naming the pip command of the ``[dashboard]`` extra."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ConfigError(f"{name.replace('_', '-')} is not installed; {PIP_HINT}") from None


def param_names(space: SearchSpace) -> list[str]:
    """One parameter name per token position, prefixed by the position so they sort in order."""
    width = len(str(space.length - 1))
    names = []
    for i in range(space.length):
        names.append(f"{i:0{width}d}:{_position_label(space, i)}")
    return names


def _position_label(space: SearchSpace, i: int) -> str:
    """What token position ``i`` encodes, in the space's own terms (``"token"`` when it says nothing)."""
    from nao.spaces.cells import ConvCellSpace
    from nao.spaces.nb201 import NB201_EDGES, NB201Space
    from nao.spaces.rnn import RNNCellSpace

    if isinstance(space, NB201Space):
        target, source = NB201_EDGES[i]
        return f"edge {source}->{target}"
    if isinstance(space, ConvCellSpace):
        slot = space.slot(i)
        return f"{slot.cell} node{slot.node + 2} {slot.branch} {slot.kind}"
    if isinstance(space, RNNCellSpace):
        return f"node{i // 2 + 1} {'input' if i % 2 == 0 else 'activation'}"
    return "token"


@dataclass(frozen=True)
class RunJournal:
    """What the mirror needs from a run directory."""

    path: Path
    name: str
    space: SearchSpace
    objective: Objective
    config: dict[str, Any]

    @classmethod
    def open(cls, run_dir: str | os.PathLike, flag: str = "DIR") -> RunJournal:
        """A run directory (ConfigError naming ``flag`` and the path if it is not one)."""
        from nao.rundir import RunDir
        from nao.spaces import get_space
        from nao.viz.rundata import objective_for

        rundir = RunDir.open(run_dir, flag=flag)
        config = rundir.config()
        space = get_space(str(config.get("space") or "nb201"))
        objective = objective_for(config, _read(rundir.journal_path, space))
        return cls(rundir.journal_path, rundir.path.resolve().name, space, objective, config)

    def results(self) -> list[Result]:
        """The journal as it is now."""
        return _read(self.path, self.space)


def _read(path: Path, space: SearchSpace) -> list[Result]:
    """The journal; a torn last line (a run still writing it) is skipped quietly and read on the next pass."""
    from nao.journal import read_journal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_journal(path, space)


def trial_of(result: Result, run: RunJournal, names: Sequence[str]):
    """The Optuna ``FrozenTrial`` of one journal record."""
    import optuna

    space = run.space
    params, dists = {}, {}
    for i, (name, token) in enumerate(zip(names, result.arch.tokens)):
        choices = tuple(space.token_name(int(t)) for t in space.allowed_tokens(i))
        dists[name] = optuna.distributions.CategoricalDistribution(choices)
        params[name] = space.token_name(token)
    attrs: dict[str, Any] = {"arch": space.format(result.arch), "status": result.status, "cost_s": result.cost_s}
    attrs.update({k: float(v) for k, v in result.metrics.items()})
    attrs.update({f"info_{k}": v for k, v in result.info.items() if isinstance(v, (int, float, str, bool))})
    value = run.objective.value(result)
    complete = value is not None and not math.isnan(value)  # optuna-dashboard refuses NaN values
    if not complete:
        attrs["error"] = result.error or f"no {run.objective.metric} recorded"
    state = optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.FAIL
    return optuna.trial.create_trial(state=state, value=value if complete else None, params=params,
                                     distributions=dists, user_attrs=attrs)


def _batched_file_backend(path: str):
    """A journal backend whose logs are read from memory and written to a JournalFileBackend in batches.

    ``JournalFileBackend`` fsyncs once per log, i.e. per trial: mirroring 1000 records took ~7 s of
    fsyncs. This one holds the logs (this process is the storage's only writer) and hands them to the
    file backend in one ``append_logs`` call, one fsync, per :meth:`flush`.
    """
    from optuna.storages.journal import BaseJournalBackend, JournalFileBackend

    class Batched(BaseJournalBackend):
        def __init__(self) -> None:
            self.file = JournalFileBackend(path)
            self.logs: list[dict[str, Any]] = []
            self.written = 0

        def read_logs(self, log_number_from: int):  # noqa: ANN202 - Optuna's signature
            return self.logs[log_number_from:]

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            self.logs.extend(logs)

        def flush(self) -> None:
            if self.written < len(self.logs):
                self.file.append_logs(self.logs[self.written:])
                self.written = len(self.logs)

    return Batched()


class Mirror:
    """An Optuna journal storage holding one study, the run's, kept level with its journal by :meth:`sync`.

    Args:
        run: the run read by :meth:`RunJournal.open`.
        storage_path: the Optuna journal file (created; it must not hold a study of the same name).
    """

    def __init__(self, run: RunJournal, storage_path: str | os.PathLike) -> None:
        import optuna
        from optuna.storages import JournalStorage

        self.run = run
        self._backend = _batched_file_backend(str(storage_path))
        self.storage = JournalStorage(self._backend)
        direction = "maximize" if run.objective.mode == "max" else "minimize"
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not Optuna's "A new study created" line
        try:
            self.study = optuna.create_study(storage=self.storage, study_name=run.name, direction=direction)
        finally:
            optuna.logging.set_verbosity(verbosity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names([run.objective.metric])  # the dashboard's axis says val_acc, not "Objective 0"
        for key in ("kind", "space", "strategy", "seed", "budget", "constraint"):
            if run.config.get(key) is not None:
                self.study.set_user_attr(key, run.config[key])
        self.study.set_user_attr("objective", f"{run.objective.metric} ({run.objective.mode})")
        self.names = param_names(run.space)
        self.count = 0
        self._backend.flush()

    def sync(self) -> int:
        """Add the journal records not mirrored yet (written to the file at once); returns how many."""
        new = self.run.results()[self.count:]
        self.study.add_trials([trial_of(r, self.run, self.names) for r in new])
        self._backend.flush()
        self.count += len(new)
        return len(new)


def export_storage(run_dir: str | os.PathLike, out: str | os.PathLike) -> int:
    """Write the run's journal as an Optuna journal-storage file ``out``; returns the number of trials.

    Written beside ``out`` and renamed into place, so ``out`` is either the whole mirror or untouched.
    """
    require("optuna")
    run = RunJournal.open(run_dir)
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--export-only {out}: is a directory")
    if not out.parent.is_dir():
        raise ConfigError(f"--export-only {out}: folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        mirror = Mirror(run, tmp)
        mirror.sync()
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return mirror.count


def bind(host: str, port: int):
    """A threaded WSGI server bound to ``host:port`` (ConfigError when the port is taken), app set later."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True  # a browser's open connection never blocks shutdown

    class _Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:  # no line per request on the terminal
            pass

    try:
        return make_server(host, port, _not_ready, server_class=_Server, handler_class=_Quiet)
    except OSError as e:
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); "
                          f"choose another with --port") from None


def _not_ready(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


class Dashboard:
    """optuna-dashboard over a mirror of a run, served from a background thread.

    The mirror lives in a temporary folder removed by :meth:`close`; while serving, new
    journal records are added every ``follow_s`` seconds (a search still running shows up as it goes).

    Args:
        run_dir: the run directory.
        host, port: where to listen (``port=0``: any free port; see :attr:`url`).
        follow_s: how often to look for new records (``None``: never).
    """

    def __init__(self, run_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8080,
                 follow_s: float | None = 2.0) -> None:
        require("optuna", "optuna_dashboard")
        import optuna_dashboard

        run = RunJournal.open(run_dir)
        self.server = bind(host, port)  # before any file is written: a taken port leaves nothing behind
        self._tmp = tempfile.TemporaryDirectory(prefix="nao-dashboard-")
        try:
            self.mirror = Mirror(run, Path(self._tmp.name) / "optuna.log")
            self.mirror.sync()
            self.server.set_app(optuna_dashboard.wsgi(self.mirror.storage))
        except BaseException:
            self.server.server_close()
            self._tmp.cleanup()
            raise
        self.follow_s = follow_s
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                          daemon=True)]
        if follow_s:
            self._threads.append(threading.Thread(target=self._follow, daemon=True))

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/dashboard/"

    def start(self) -> Dashboard:
        for t in self._threads:
            t.start()
        return self

    def _follow(self) -> None:
        while not self._stop.wait(self.follow_s):
            with contextlib.suppress(Exception):  # a half-written record is picked up on the next pass
                self.mirror.sync()

    def close(self) -> None:
        """Stop serving and following, and remove the temporary mirror."""
        self._stop.set()
        if self._threads[0].is_alive():
            self.server.shutdown()
        self.server.server_close()
        for t in self._threads[1:]:
            if t.is_alive():
                t.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
