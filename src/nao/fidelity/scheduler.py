"""Fidelity schedulers: asynchronous successive halving (ASHA), synchronous SH and Hyperband.

A scheduler decides *how long* to train each candidate. Rungs are increasing fidelities
(epochs, or a fraction of a pass), a factor ``eta`` apart; the top ``1/eta`` of a rung goes on
to the next one. The caller drives it with three calls and owns everything else (which new
candidate to draw, how to train it, where to journal the result):

* :meth:`Scheduler.next_job` -> a :class:`Job`: promote ``candidate`` to ``rung``, or (candidate
  ``None``) start a new candidate at ``rung``; ``None`` when the scheduler must wait for a running
  job (only the synchronous ones ever wait);
* :meth:`Scheduler.start` (candidate, rung): the job is running;
* :meth:`Scheduler.report` (a :class:`Record`): it finished, ok with a score (higher is better) or
  failed. A failed candidate stays recorded failed at that rung and is never promoted.

The state is nothing but the records (plus the running jobs), so :meth:`Scheduler.restore` rebuilds
rungs and promotions from a journal after ``kill -9``: a job that was running when the process
died is simply not there, and is handed out again.

>>> s = ASHA(rungs=(1, 3, 9), eta=3)
>>> for i, score in enumerate([0.5, 0.9, 0.7]):  # three new candidates at rung 0
...     job = s.next_job(); s.start(f"c{i}", job.rung); s.report(Record(f"c{i}", job.rung, score))
>>> s.next_job()  # the top third of rung 0 (c1) goes on, without waiting for anything else
Job(rung=1, candidate='c1')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from nao.errors import ConfigError

#: Default reduction factor of a ladder this library plans (trained candidates: rungs ``max / eta**k``).
#: eta = 3 is the value of the Hyperband and ASHA papers (Li et al. 2018, 2020) and Optuna's pruners:
#: it keeps a third of each rung, the middle ground between eta = 2 (many rungs, little selection per
#: rung, most compute spent on middling candidates) and eta = 4+ (few rungs, so a noisy low-fidelity
#: score decides almost alone). On a planned ladder the rungs are eta apart, so every rung spends the
#: same compute. Rungs fixed by someone else (a table's 12- and 200-epoch columns) take
#: :func:`balanced_eta` instead, which keeps that balance.
DEFAULT_ETA = 3.0

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class Record:
    """One finished job, as a journal stores it.

    Attributes:
        candidate: the candidate's id (any hashable: an architecture key, a trial number).
        rung: the rung index it was trained to (0 = lowest fidelity).
        score: higher is better (negate a loss); ignored when failed.
        status: ``"ok"`` or ``"failed"`` (never promoted).
    """

    candidate: Hashable
    rung: int
    score: float | None = None
    status: Status = "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.score is not None and not math.isnan(self.score)


@dataclass(frozen=True)
class Job:
    """What a free worker should do: train ``candidate`` (``None``: a new one) up to ``rung``."""

    rung: int
    candidate: Hashable | None = None


def geometric_rungs(min_fidelity: float, max_fidelity: float, eta: float = DEFAULT_ETA) -> tuple[float, ...]:
    """Rungs ``max / eta**k`` down to ``min_fidelity``, lowest first (the top rung is ``max``).

    >>> geometric_rungs(1, 27)
    (1.0, 3.0, 9.0, 27.0)
    >>> geometric_rungs(2, 20)  # the lowest rung is never below min_fidelity
    (2.2222222222222223, 6.666666666666667, 20.0)
    """
    if not 0 < min_fidelity <= max_fidelity:
        raise ConfigError(f"fidelity ladder: need 0 < min ({min_fidelity}) <= max ({max_fidelity})")
    _check_eta(eta)
    rungs = [float(max_fidelity)]
    while rungs[-1] / eta >= min_fidelity * (1 - 1e-9):
        rungs.append(rungs[-1] / eta)
    return tuple(reversed(rungs))


def balanced_eta(rungs: Sequence[float]) -> float:
    """The reduction factor that gives every rung of a *fixed* ladder the same compute.

    Successive halving's design (Jamieson & Talwalkar 2016; Li et al. 2018) spends one share of the
    budget per rung: ``n_k`` candidates trained to ``r_k`` with ``n_k * r_k`` constant, so the share
    promoted, ``1/eta``, is the ratio of consecutive rungs' fidelities. A ladder planned from eta has
    that by construction; on given rungs (NB201's 12 and 200 epochs) the factor follows from them:
    200/12 = 16.7, where eta = 3 would spend 0.18 of a top-rung training screening each promotion
    (three 12-epoch runs), each promoted candidate the best of only three. Uneven ladders take the
    geometric mean ratio.

    >>> round(balanced_eta((12, 200)), 3), balanced_eta((1, 3, 9))
    (16.667, 3.0)
    """
    if len(rungs) < 2 or not 0 < rungs[0] < rungs[-1]:
        raise ConfigError(f"fidelity ladder: need at least two increasing positive rungs, got {list(rungs)}")
    return float((rungs[-1] / rungs[0]) ** (1.0 / (len(rungs) - 1)))


def _check_eta(eta: float) -> None:
    if not eta > 1:
        raise ConfigError(f"--eta must be > 1, got {eta}")


class Scheduler:
    """Base of the schedulers: the records per rung, the running jobs, restore.

    Args:
        rungs: increasing fidelities (epochs); only their number matters to the scheduling.
        eta: reduction factor: the top ``1/eta`` of a rung is promoted.
        ranker: optional reordering of a rung's ok records (given best-score first) before the
            top ``1/eta`` is taken, e.g. by a predictor's view as well (None: the scores alone).
    """

    name = "base"

    def __init__(self, rungs: Sequence[float], eta: float = DEFAULT_ETA,
                 ranker: Callable[[int, list[Record]], list[Record]] | None = None) -> None:
        if len(rungs) < 1 or any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ConfigError(f"fidelity rungs must be increasing, got {list(rungs)}")
        _check_eta(eta)
        self.rungs = tuple(float(r) for r in rungs)
        self.eta = float(eta)
        self.ranker = ranker
        self.done: list[dict[Hashable, Record]] = [{} for _ in self.rungs]  # rung -> candidate -> record
        self.running: set[tuple[Hashable, int]] = set()
        self.started: list[set[Hashable]] = [set() for _ in self.rungs]  # rung -> candidates ever started there

    @property
    def top(self) -> int:
        return len(self.rungs) - 1

    def next_job(self) -> Job | None:
        """The job a free worker should run now (``None``: wait for a running job to report)."""
        raise NotImplementedError

    def start(self, candidate: Hashable, rung: int) -> None:
        """``candidate`` is being trained to ``rung`` (a new candidate, or a promotion)."""
        if not 0 <= rung <= self.top:
            raise ValueError(f"rung {rung} outside 0..{self.top}")
        if candidate in self.started[rung]:
            raise ValueError(f"candidate {candidate!r} was already started at rung {rung}")
        self.started[rung].add(candidate)
        self.running.add((candidate, rung))

    def report(self, record: Record) -> None:
        """A job finished (ok with a score, or failed)."""
        self.running.discard((record.candidate, record.rung))
        self.done[record.rung][record.candidate] = record

    def restore(self, records: Iterable[Record]) -> None:
        """Rebuild the state from journaled records, in journal order (after ``kill -9``)."""
        for rec in records:
            self.start(rec.candidate, rec.rung)
            self.report(rec)

    def records(self) -> list[tuple[int, Hashable, Status, float | None]]:
        """Every finished job as ``(rung, candidate, status, score)``, sorted: a comparable snapshot."""
        return sorted(((k, c, r.status, r.score) for k, rung in enumerate(self.done) for c, r in rung.items()),
                      key=repr)

    def best(self) -> Record | None:
        """The best ok record of the highest rung that has one (the incumbent)."""
        for rung in reversed(self.done):
            ok = [r for r in rung.values() if r.ok]
            if ok:
                return max(ok, key=lambda r: r.score)
        return None

    def _ranked(self, rung: int) -> list[Record]:
        """Finished records of ``rung``, best first (failed last); ties by finishing order."""
        recs = sorted(self.done[rung].values(), key=lambda r: -r.score if r.ok else math.inf)
        if self.ranker is not None:
            ok = [r for r in recs if r.ok]
            recs = self.ranker(rung, ok) + [r for r in recs if not r.ok]
        return recs


class ASHA(Scheduler):
    """Asynchronous successive halving (Li et al., MLSys 2020): a worker never waits.

    A free worker takes, from the highest rung where one exists, a candidate among the top
    ``floor(n / eta)`` of the ``n`` finished at that rung that has not been promoted yet; when
    there is none anywhere, a new candidate at the lowest rung. Failed candidates count in ``n``
    (they were paid for) but are never promoted.
    """

    name = "asha"

    def next_job(self) -> Job | None:
        for rung in range(self.top - 1, -1, -1):
            ranked = self._ranked(rung)
            for rec in ranked[: int(len(ranked) // self.eta + 1e-9)]:
                if rec.ok and rec.candidate not in self.started[rung + 1]:
                    return Job(rung + 1, rec.candidate)
        return Job(0)


@dataclass
class _Bracket:
    """One synchronous successive-halving bracket: ``sizes[i]`` candidates at rung ``start + i``."""

    start: int
    sizes: tuple[int, ...]
    members: list[list[Hashable]]  # per level, candidates started there

    @classmethod
    def of(cls, start: int, n0: int, levels: int, eta: float) -> _Bracket:
        sizes = [n0]
        for _ in range(levels - 1):
            sizes.append(max(1, int(sizes[-1] // eta + 1e-9)))
        return cls(start, tuple(sizes), [[] for _ in sizes])


class SuccessiveHalving(Scheduler):
    """Synchronous successive halving, one bracket after another.

    A bracket starts ``bracket_size`` new candidates at the lowest rung; when *all* of them have
    reported, the top ``1/eta`` go on to the next rung, and so on up to the top rung; then the
    next bracket starts. Workers wait at each barrier (which is what :class:`ASHA` removes).

    Args:
        bracket_size: new candidates per bracket (default ``eta ** len(rungs)`` rounded: the top
            rung then chooses among ``eta`` candidates of each bracket).
    """

    name = "sh"

    def __init__(self, rungs: Sequence[float], eta: float = DEFAULT_ETA, bracket_size: int | None = None,
                 ranker: Callable[[int, list[Record]], list[Record]] | None = None) -> None:
        super().__init__(rungs, eta, ranker)
        n0 = bracket_size if bracket_size is not None else round(self.eta ** len(self.rungs))
        if n0 < 1:
            raise ConfigError(f"successive halving: bracket size must be >= 1, got {n0}")
        self.bracket_size = int(n0)
        self.brackets: list[_Bracket] = []
        self._bracket_of: dict[Hashable, int] = {}

    def _new_bracket(self) -> _Bracket:
        return _Bracket.of(0, self.bracket_size, len(self.rungs), self.eta)

    def _current(self) -> _Bracket:
        if not self.brackets or self._finished(self.brackets[-1]):
            self.brackets.append(self._new_bracket())
        return self.brackets[-1]

    def _finished(self, b: _Bracket) -> bool:
        last = b.members[-1]
        return len(last) == b.sizes[-1] and all(c in self.done[b.start + len(b.sizes) - 1] for c in last)

    def _level_done(self, b: _Bracket, level: int) -> bool:
        rung = b.start + level
        return len(b.members[level]) == b.sizes[level] and all(c in self.done[rung] for c in b.members[level])

    def next_job(self) -> Job | None:
        b = self._current()
        for level, size in enumerate(b.sizes):
            if len(b.members[level]) >= size:
                continue  # this level is fully handed out
            if level == 0:
                return Job(b.start)
            if not self._level_done(b, level - 1):
                return None  # the barrier: wait until the level below has reported
            taken = set(b.members[level])
            below = [r for r in self._ranked(b.start + level - 1) if r.candidate in set(b.members[level - 1])]
            for rec in below[:size]:
                if rec.ok and rec.candidate not in taken:
                    return Job(b.start + level, rec.candidate)
            return None  # fewer ok candidates than slots (failures): the bracket ends here
        return None  # every level handed out; waiting for the top to report

    def start(self, candidate: Hashable, rung: int) -> None:
        super().start(candidate, rung)
        if candidate in self._bracket_of:
            b = self.brackets[self._bracket_of[candidate]]
        else:
            b = self._current()
            self._bracket_of[candidate] = len(self.brackets) - 1
        b.members[rung - b.start].append(candidate)

    def report(self, record: Record) -> None:
        super().report(record)
        b = self.brackets[self._bracket_of[record.candidate]]
        self._close_short_level(b)

    def _close_short_level(self, b: _Bracket) -> None:
        """A level that cannot fill (too few ok candidates below, all reported) shrinks to what it got,
        so a bracket with failures still ends and the next one starts."""
        sizes = list(b.sizes)
        for level in range(1, len(sizes)):
            if self._level_done(b, level - 1):
                ok_below = sum(1 for c in b.members[level - 1] if self.done[b.start + level - 1][c].ok)
                sizes[level] = min(sizes[level], ok_below)
        if tuple(sizes) != b.sizes:
            b.sizes = tuple(sizes)
            while len(b.sizes) > 1 and b.sizes[-1] == 0:
                b.sizes, b.members = b.sizes[:-1], b.members[:-1]


class Hyperband(SuccessiveHalving):
    """Hyperband (Li et al., JMLR 2018): successive-halving brackets that start at each rung in turn.

    With ``K`` rungs, bracket ``s = K-1 .. 0`` starts ``ceil(K / (s+1) * eta**s)`` new candidates at
    rung ``K-1-s``, so the most aggressive bracket starts many at the lowest fidelity and the last
    trains a few straight at the top: a hedge against a low fidelity that ranks badly.
    """

    name = "hyperband"

    def __init__(self, rungs: Sequence[float], eta: float = DEFAULT_ETA,
                 ranker: Callable[[int, list[Record]], list[Record]] | None = None) -> None:
        super().__init__(rungs, eta, bracket_size=1, ranker=ranker)

    def _new_bracket(self) -> _Bracket:
        k = len(self.rungs)
        s = k - 1 - len(self.brackets) % k
        n0 = math.ceil(k / (s + 1) * self.eta**s)
        return _Bracket.of(k - 1 - s, n0, s + 1, self.eta)


SCHEDULERS = {"asha": ASHA, "sh": SuccessiveHalving, "hyperband": Hyperband}


def make_scheduler(name: str, rungs: Sequence[float], eta: float = DEFAULT_ETA,
                   ranker: Callable[[int, list[Record]], list[Record]] | None = None) -> Scheduler:
    """A scheduler by name (``asha``, ``sh``, ``hyperband``); ConfigError naming ``--fidelity`` otherwise."""
    if name not in SCHEDULERS:
        raise ConfigError(f"--fidelity: unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)} or none")
    return SCHEDULERS[name](rungs, eta, ranker=ranker)


def plan_ladder(max_fidelity: float, eta: float = DEFAULT_ETA, min_fidelity: float | None = None,
                whole: bool = False, flag: str = "--fidelity") -> tuple[float, ...]:
    """The rungs of a trained search: ``max_fidelity / eta**k`` down to ``min_fidelity``.

    Default ``min_fidelity``: ``max_fidelity / eta**2`` (three rungs: the lowest trains a ninth of
    the full candidate, the classic Hyperband/ASHA ladder). ``whole``: epochs are whole numbers (an
    image candidate trains whole epochs): rungs are rounded, at least 1, duplicates dropped. A ladder
    of a single rung cannot promote anything: ConfigError naming ``flag``.

    >>> plan_ladder(27), plan_ladder(6, whole=True), plan_ladder(1.0)
    ((3.0, 9.0, 27.0), (1.0, 2.0, 6.0), (0.1111111111111111, 0.3333333333333333, 1.0))
    """
    _check_eta(eta)
    low = max_fidelity / eta**2 if min_fidelity is None else min_fidelity
    rungs = geometric_rungs(low, max_fidelity, eta) if low <= max_fidelity else ()
    if whole:
        rungs = tuple(sorted({float(max(1, round(r))) for r in rungs}))
    if len(rungs) < 2:
        raise ConfigError(f"{flag}: a candidate trained for {max_fidelity:g} epochs leaves no room for a ladder with "
                          f"eta {eta:g} from {low:g} epochs (need at least two rungs); train longer, lower --eta "
                          "or lower --min-fidelity")
    return rungs
