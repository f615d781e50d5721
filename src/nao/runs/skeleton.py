"""The run skeleton: every search kind is the same run, differing only in what it builds.

A :class:`RunKind` builds the parts of one kind of search (space, evaluator, strategy, objective,
executor); :func:`execute` does the rest, identically for every kind:

1. ``kind.prepare()`` loads data and checks the configuration (every user error is raised here,
   before a run directory exists);
2. the run directory is created (``config.json``, ``manifest.json``) or, on resume, reopened and
   its journal read back (``kind.resume_point`` for kinds with evaluator state, e.g. a supernet);
3. a :class:`~nao.study.Study` runs with the journal, ``search.log`` (:class:`~nao.rundir.RunLog`,
   with the Study's objective) and progress callbacks;
4. ``best.json``, ``predictions.json`` (every strategy that predicts) and the kind's own search
   files (``kind.after_search``) are written, even if the search is interrupted;
5. ``kind.finish`` reranks / trains the winner where the kind has such a step;
6. ``result.json`` gets the common fields (kind, objective, where scores came from, best, winner,
   times) plus the kind's.

>>> import tempfile
>>> from nao.runs import make_kind
>>> from nao.runs.kinds.tabular import synthetic_table
>>> table = synthetic_table(tempfile.mkdtemp() + "/t.csv.gz")
>>> kind = make_kind({"kind": "tabular", "benchmark": str(table), "strategy": "random", "budget": 10})
>>> out = execute(kind, tempfile.mkdtemp() + "/run", say=lambda line: None)
>>> out["n_evaluated"], out["kind"]
(10, 'tabular')
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.executors import Executor, SequentialExecutor
from nao.fidelity.runs import make_study
from nao.journal import Journal, read_journal_for_resume
from nao.results import Objective, Result
from nao.rundir import RunDir, RunLog
from nao.runs.flags import SEARCH_FLAGS, Flag
from nao.runs.resume_policy import refuse_extending_finished
from nao.spaces.base import SearchSpace
from nao.strategies.base import Strategy
from nao.study import Study, check_budget, check_max_cost

log = logging.getLogger("nao.run")

Say = Callable[[str], None]


@dataclass
class Search:
    """What a kind builds for the Study."""

    space: SearchSpace
    evaluator: Evaluator
    strategy: Strategy
    objective: Objective
    budget: int
    executor: Executor = field(default_factory=SequentialExecutor)
    #: Extra Study callbacks that must run before the journal-dependent ones (a supernet's observe).
    callbacks: list[Callable[[Result], None]] = field(default_factory=list)
    #: A fidelity scheduler (:mod:`nao.fidelity`): candidates are promoted by rungs (None: one training each).
    scheduler: Any = None


@dataclass
class RunContext:
    """What :func:`execute` hands a kind's later hooks."""

    rundir: RunDir
    say: Say
    resumed: bool
    quiet: bool


def register_kind(cls: type[RunKind]) -> type[RunKind]:
    """Class decorator: register a run kind (its presets are registered by its module)."""
    from nao.registry import KINDS

    return KINDS.register(cls.name)(cls)


class RunKind(ABC):
    """One kind of search. Subclasses set the class attributes below and implement :meth:`prepare`
    and :meth:`build`; the other hooks have defaults. A kind is one module of :mod:`nao.runs.kinds`
    (or of another package) with its config, presets, flags and this class, registered with
    :func:`register_kind`.

    Args:
        config: the kind's resolved configuration dataclass (``to_dict`` goes to ``config.json``).
    """

    name: ClassVar[str]
    #: ``nao search TASK`` and ``--evaluator EVALUATOR`` select this kind.
    task: ClassVar[str]
    evaluator: ClassVar[str]
    #: The kind a task runs when no ``--evaluator`` is given.
    default_for_task: ClassVar[bool] = False
    #: One line for ``nao search --help`` (the default kind's describes the task).
    help: ClassVar[str] = ""
    #: The dataclass of the kind's configuration (``config.json`` is read back into it).
    config_class: ClassVar[type]
    #: The flags the kind accepts besides :data:`SEARCH_FLAGS`.
    flags: ClassVar[tuple[Flag, ...]] = ()
    #: Settings a resume may change (besides device and data location); everything else is fixed.
    resumable_changes: ClassVar[tuple[str, ...]] = ("executor",)
    #: Why the kind takes no executor flags (said when one is given), if it evaluates in-process only.
    no_executor: ClassVar[str] = ""
    #: Where search scores come from: ``table``, ``supernet`` or ``training`` (reports label it).
    scores_from: ClassVar[str]

    def __init__(self, config: Any) -> None:
        self.config = config

    @classmethod
    def all_flags(cls) -> tuple[Flag, ...]:
        """Every flag the kind accepts."""
        return (*SEARCH_FLAGS, *cls.flags)

    @classmethod
    def default_preset(cls, given: dict[str, Any]) -> str:
        """The preset used when none is named (``given``: the flags given); default: the first registered."""
        from nao.presets import preset_names

        return preset_names(cls.name)[0]

    @classmethod
    def upgrade(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """A ``config.json`` body written by an older version, in today's form (default: as it is)."""
        return saved

    def budget(self) -> int:
        """Unique architectures the search evaluates."""
        return self.config.budget

    def max_budget(self) -> tuple[int, str] | None:
        """The kind's own bound on the budget and what it is (a table's rows), checked after :meth:`prepare`."""
        return None

    def config_dict(self) -> dict[str, Any]:
        """The resolved configuration written to ``config.json`` (``kind`` included)."""
        return {**self.config.to_dict(), "kind": self.name}

    @abstractmethod
    def prepare(self) -> None:
        """Load data and validate everything; raise :class:`~nao.errors.NaoError` on bad input."""

    @abstractmethod
    def build(self, ctx: RunContext) -> Search:
        """The Study's parts (called once the run directory exists)."""

    def resume_point(self, rundir: RunDir, search: Search) -> tuple[list[Result], list[str]]:
        """Journaled results to replay and warnings for the log; kinds with evaluator state override."""
        previous, notes = read_journal_for_resume(rundir.journal_path, search.space)
        done = len({search.space.key(r.arch) for r in previous})  # a fidelity journal has one line per rung
        if done > search.budget:
            raise ConfigError(f"--budget {search.budget} is below the {done} evaluations already "
                              f"in {rundir.journal_path}")
        return previous, notes

    def exact_replay(self, saved: dict[str, Any] | None) -> bool:
        """Whether a resume replays the journal through the strategy or hands it over up front.

        Replaying re-asks the strategy and answers from the journal: exact only when the run was, and
        stays, sequential (a parallel run's completion order is not reproducible anyway). Kinds without
        an ``executor`` setting evaluate in this process, always in order."""
        executor = getattr(self.config, "executor", None)
        if executor is None:
            return True
        was = (saved or {}).get("executor", {}).get("name", "sequential")
        return was == "sequential" and executor.name == "sequential"

    def after_search(self, ctx: RunContext, search: Search, study: Study) -> None:  # noqa: B027 - optional hook
        """Write the kind's search files (``supernet.json``...); called even after an interruption."""

    def finish(self, ctx: RunContext, search: Search, study: Study) -> dict[str, Any]:
        """Rerank / final training where the kind has them; returns extra ``result.json`` fields."""
        return {}

    def threads(self) -> AbstractContextManager:
        """The CPU thread setting the whole run executes under (default: leave torch's as it is)."""
        return nullcontext()

    def is_finished(self, result: dict[str, Any]) -> bool:
        """Whether a ``result.json`` marks a run that a resume has nothing left to do for."""
        return False

    def progress(self, ctx: RunContext, search: Search, skip: Sequence[Result]) -> list[Callable[[Result], None]]:
        """Study callbacks that report each new evaluation on the console (none by default: a
        kind whose evaluations take seconds or less would only flood it). ``skip``: the results a
        resume replays, which were reported by the earlier process."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`prepare` or :meth:`build` acquired (executors, workers)."""


def execute(kind: RunKind, out: str | Path, resume: bool = False, say: Say | None = None, quiet: bool = False,
            tensorboard: bool = False, progress: Sequence[Callable[[Result], None]] = ()) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) ``kind`` in run directory ``out``; returns ``result.json``.

    Args:
        kind: the search to run (:func:`nao.runs.make_kind`).
        out: the run directory: created (must not hold a run), or reopened with ``resume``.
        resume: continue the interrupted run in ``out`` (its journal is replayed).
        say: one human-readable line per stage (default: the ``nao.run`` logger).
        quiet: silence per-epoch bars of training steps.
        tensorboard: also write TensorBoard scalars to ``out/tensorboard``.
        progress: extra Study callbacks (progress bars).
    """
    say = say or (lambda line: log.info("%s", line))
    if resume:
        opened = RunDir.open(out)
        done = opened.read_json("result.json")
        if isinstance(done, dict) and kind.is_finished(done):
            refuse_extending_finished(out, opened.read_json("config.json") or {}, kind.config.to_dict())
            say(f"{out} is a finished run: winner {done.get('winner')}")
            return done
    rundir: RunDir | None = None
    try:
        check_max_cost(getattr(kind.config, "max_cost", None))  # before anything is loaded or written
        kind.prepare()
        bound = kind.max_budget()
        check_budget(kind.budget(), kind.space, *(bound or ()))
        with kind.threads():
            rundir = _open_rundir(kind, Path(out), resume)
            ctx = RunContext(rundir, say, resume, quiet)
            search = kind.build(ctx)
            return _run(kind, ctx, search, tensorboard, progress)
    finally:
        kind.close()
        if rundir is not None:
            rundir.unlock()


def _open_rundir(kind: RunKind, out: Path, resume: bool) -> RunDir:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if not resume:
        return RunDir.create(out, kind.config_dict())
    rundir = RunDir.open(out).lock()  # a live writer (this run, still going) refuses us here
    rundir.note_resume(kind.config_dict())
    return rundir


def _run(kind: RunKind, ctx: RunContext, search: Search, tensorboard: bool,
         progress: Sequence[Callable[[Result], None]]) -> dict[str, Any]:
    rundir, t0 = ctx.rundir, time.perf_counter()
    previous, notes = kind.resume_point(rundir, search) if ctx.resumed else ([], [])
    exact = kind.exact_replay(rundir.config() if ctx.resumed else None)
    with RunLog(rundir, search.space, objective=search.objective, tensorboard=tensorboard, skip=previous) as runlog, \
            Journal(rundir.journal_path, search.space) as journal:
        for note in notes:  # now that search.log records them too
            log.warning("%s", note)

        outer = ctx.say
        console = kind.progress(ctx, search, previous)  # console only: search.log has RunLog's line

        def say(line: str) -> None:  # every stage line goes to search.log too
            runlog.info("%s", line)
            outer(line)

        ctx.say = say
        runlog.info("%s: %s", "resumed" if previous else "started", _settings_line(kind.config_dict()))
        if previous:
            say(f"resuming {rundir.path}: replaying {len(previous)} journaled evaluations"
                + ("" if exact else " (handed to the strategy up front: the run was not sequential)"))
        study = make_study(search, journal, previous, [*search.callbacks, runlog, *console, *progress], Study)
        if previous and not exact and search.scheduler is None:  # a FidelityStudy always answers from the journal
            study.tell(previous)  # recorded without journaling again, then told to the strategy
        max_cost = getattr(kind.config, "max_cost", None)
        try:
            study.run(search.budget, max_cost=max_cost)
        finally:
            rundir.write_best(study.best(), search.space, study.n_evaluated, search.objective)
            rundir.write_predictions(search.strategy, search.space)
            kind.after_search(ctx, search, study)
        _warn_unreplayed(study, previous if exact else ())
        search_s = time.perf_counter() - t0
        best = study.best()
        say(f"search done in {search_s:.0f}s: {study.n_evaluated} evaluated, best "
            + (f"{search.objective.metric}={search.objective.value(best):.4f} {search.space.format(best.arch)}"
               if best else "none"))
        extra = kind.finish(ctx, search, study)
        result = {
            "kind": kind.name,
            "objective": search.objective.to_dict(),
            "scores_from": kind.scores_from,
            "n_evaluated": study.n_evaluated,
            "best": {"arch": search.space.format(best.arch), "metrics": best.metrics} if best else None,
            "winner": search.space.format(best.arch) if best else None,
            "search_s": search_s,
            # Compute, in the unit named once here (Result.cost of every journal record is in it).
            "cost": study.spent_cost,
            "cost_unit": search.evaluator.cost_unit,
            "max_cost": max_cost,
            "stopped_by": _stopped_by(study, search.budget, max_cost),
            **extra,
            "total_s": time.perf_counter() - t0,
        }
        rundir.write_json("result.json", result)
    return result


def _stopped_by(study: Study, budget: int, max_cost: float | None) -> str:
    """Why the search ended: ``budget`` (count reached), ``max_cost`` (compute spent) or ``strategy``
    (it proposed nothing new)."""
    if getattr(study, "n_candidates", study.n_evaluated) >= budget:  # a FidelityStudy counts candidates
        return "budget"
    return "max_cost" if study.cost_reached(max_cost) else "strategy"


def _settings_line(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(config.items()) if v is not None and not isinstance(v, dict))


def _warn_unreplayed(study: Study, previous: Sequence[Result]) -> None:
    ids = {id(r) for r in previous}
    used = sum(1 for r in study.history if id(r) in ids)
    if used < len(previous):
        log.warning("%d journaled evaluations were not proposed again by the resumed strategy; they stay in "
                    "the journal but are not part of this search's history", len(previous) - used)
