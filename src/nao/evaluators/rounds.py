"""Round checkpoints for evaluators whose state carries from one round to the next (supernets).

A supernet evaluator scores one *round* per ``evaluate`` call and its weights, optimizer,
generators and pool carry over. To resume such a search exactly (``nao search --resume DIR``):

1. The evaluator is a Study callback (:meth:`RoundCheckpoints.observe`): it counts the results the
   Study records and, once a round's last result has been journaled, saves its whole state. The
   journal therefore always holds every result a checkpoint knows of.
2. On resume, :func:`resume_point` reads the journal and the checkpoint; results journaled after
   the checkpoint (a kill between a round's last journal line and its checkpoint) are cut, since
   the weights behind them are lost and the round is redone.
3. :meth:`RoundCheckpoints.resume_from` defers loading the state until the Study's replay of the
   journal reaches it, advancing ``rounds`` on the way so that ``batch_size`` asks the strategy
   for the same round sizes as the interrupted run did. The resumed search then trains, scores and
   proposes what the uninterrupted one would have.

A subclass implements :meth:`~RoundCheckpoints._state` / :meth:`~RoundCheckpoints._restore` (its
own tensors and plain values), calls :meth:`~RoundCheckpoints._init_rounds` in ``__init__`` and
:meth:`~RoundCheckpoints._begin_round` at the start of each ``evaluate``.

:class:`PoolRounds` builds the round itself on top (pool replacement, training, re-scoring,
results, failures, ranking, the pool's checkpoint rows); the image and the recurrent supernet
evaluators only add their network's training and scoring.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch

from nao.errors import DataError
from nao.journal import read_journal_for_resume
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.train.checkpoint import load_checkpoint, save_checkpoint

#: A supernet search's checkpoint, in its run directory.
SUPERNET_CHECKPOINT = "supernet.pt"


def rounds_for_budget(budget: int, seed_pool: int, new_per_round: int) -> int:
    """Rounds of a pool search with ``budget`` unique architectures (if every round is full).

    >>> rounds_for_budget(100, 40, 20)
    4
    """
    return 1 + math.ceil(max(0, budget - seed_pool) / new_per_round)


class RoundCheckpoints:
    """Mixin: round-level checkpoints and exact resume (module docstring)."""

    rounds: int
    round_sizes: list[int]
    results_seen: int
    checkpoint_path: Path | None

    def _init_rounds(self, checkpoint_path: Path | None = None) -> None:
        self.rounds = 0
        self.round_sizes = []  # architectures each round added (the replay needs them)
        self.results_seen = 0  # results the Study has recorded (observe), replayed ones included
        self.checkpoint_path = checkpoint_path  # where each finished round's state goes (None: nowhere)
        self._pending: dict[str, Any] | None = None  # a checkpoint waiting for the replay to reach it

    def _begin_round(self, n_new: int) -> None:
        """Count a round of ``n_new`` architectures (call first thing in ``evaluate``)."""
        if self._pending is not None:
            raise RuntimeError(
                f"the resumed supernet state covers {self._pending['results_seen']} results but the replay "
                f"stopped at {self.results_seen}: the journal and the checkpoint do not belong together"
            )
        self.rounds += 1
        self.round_sizes.append(n_new)

    def observe(self, result: Result) -> None:
        """Study callback: count recorded results; checkpoint after a round, or load one at its point of the replay."""
        self.results_seen += 1
        if self._pending is not None:
            # Replaying: count the interrupted run's rounds so batch_size matches them.
            sizes = np.cumsum(self._pending["round_sizes"])
            self.rounds = int(np.searchsorted(sizes, self.results_seen, side="right"))
            if self.results_seen == self._pending["results_seen"]:
                self.load_state_dict(self._pending)
                self._pending = None
        elif self.checkpoint_path is not None and self.round_sizes and self.results_seen == sum(self.round_sizes):
            save_checkpoint(self.checkpoint_path, self.state_dict())

    def resume_from(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` once the Study has replayed the ``state["results_seen"]`` results it covers.

        Call before the Study runs, with ``observe`` among its callbacks and the journal's first
        ``results_seen`` results as its replay (:func:`resume_point`).
        """
        if self.results_seen:
            raise RuntimeError("resume_from must be called before any result is recorded")
        if int(state["results_seen"]) == 0:
            self.load_state_dict(state)
        else:
            self._pending = state

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed search needs to continue exactly (tensors and plain values only)."""
        return {**self._state(), "rounds": self.rounds, "round_sizes": list(self.round_sizes),
                "results_seen": self.results_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the evaluator must have been built with the same settings)."""
        self._restore(state)
        self.rounds, self.round_sizes = int(state["rounds"]), [int(n) for n in state["round_sizes"]]
        self.results_seen = int(state["results_seen"])

    def _state(self) -> dict[str, Any]:
        """The subclass's own state; must include ``"model"`` (checkpoint files require it)."""
        raise NotImplementedError

    def _restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class PoolMember(Protocol):
    """What :class:`PoolRounds` needs of a pool entry."""

    arch: Architecture
    key: Hashable
    rank: float  # what the pool is ranked by, higher is better; -inf until scored


class PoolSizes(Protocol):
    """The round sizes :class:`PoolRounds` reads from its evaluator's ``cfg``."""

    seed_pool: int
    new_per_round: int
    pool_size: int


M = TypeVar("M", bound=PoolMember)


class PoolRounds(RoundCheckpoints, Generic[M]):
    """Mixin: the round of a supernet evaluator over a pool of architectures.

    One :meth:`evaluate` call is one round: the new architectures join the pool, replacing the
    worst-ranked old ones so that it keeps ``cfg.pool_size`` members; the supernet trains on the
    pool (:meth:`_train_round`); every member is re-scored (:meth:`_score_member`); the new ones are
    returned as results, members that failed leave the pool, and a summary goes to ``on_round``.
    ``batch_size`` is the next round's size (``seed_pool`` first, then ``new_per_round``), so the
    Study asks the strategy for exactly one round.

    A subclass supplies the network-specific parts: ``_member``, ``_train_round``,
    ``_score_member``, ``_metrics``, ``_result_info``, ``_round_summary``, ``_ranking_value``,
    ``_member_row``/``_load_member_row`` (a member's checkpoint fields), and ``_state``/``_restore``
    for the rest of its state (:class:`RoundCheckpoints`).
    """

    cfg: PoolSizes
    space: SearchSpace
    pool: list[M]
    on_round: Callable[[dict[str, Any]], None] | None

    # -- sizes -------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Architectures the next round scores (the Study asks the strategy for this many)."""
        return self.cfg.seed_pool if self.rounds == 0 else self.cfg.new_per_round

    def rounds_for_budget(self, budget: int) -> int:
        """Rounds a Study with ``budget`` unique architectures runs (if every round is full)."""
        return rounds_for_budget(budget, self.cfg.seed_pool, self.cfg.new_per_round)

    # -- the round ---------------------------------------------------------------------------
    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        t0 = time.perf_counter()
        failed: dict[Hashable, str] = {}  # key -> why; such members leave the pool after the round
        self._begin_round(len(archs))
        new = [self._member(a) for a in archs]
        keep = sorted(self.pool, key=lambda m: m.rank, reverse=True)[: max(0, self.cfg.pool_size - len(new))]
        self.pool = keep + new
        trained = self._train_round(failed)
        train_s = time.perf_counter() - t0
        seconds = {id(m): self._score_member(m, failed) for m in self.pool}
        info = self._result_info()
        out = []
        for m in new:
            # Compute in seconds (the evaluators' cost_unit "s"): a member's share of the round's supernet
            # training plus its own scoring. No fidelity: a supernet score is not a count of epochs.
            cost = train_s / max(1, len(new)) + seconds.get(id(m), 0.0)
            if m.key in failed:
                out.append(Result(m.arch, "failed", {}, cost, failed[m.key], dict(info), cost=cost))
            else:
                out.append(Result(m.arch, "ok", self._metrics(m), cost, None, dict(info), cost=cost))
        self.pool = [m for m in self.pool if m.key not in failed]
        summary = self._round_summary(len(new), len(failed), trained, time.perf_counter() - t0)
        if self.on_round is not None:
            self.on_round(summary)
        return out

    def ranking(self) -> list[tuple[Architecture, float]]:
        """The current pool, best first by the latest ranking value, each with the value
        :meth:`_ranking_value` reports (members not scored yet are left out)."""
        ranked = sorted(self.pool, key=lambda m: m.rank, reverse=True)
        values = [(m.arch, self._ranking_value(m)) for m in ranked]
        return [(arch, value) for arch, value in values if value is not None]

    # -- the pool in checkpoints -------------------------------------------------------------
    def _pool_state(self) -> list[dict[str, Any]]:
        return [{"tokens": [int(t) for t in m.arch.tokens], **self._member_row(m)} for m in self.pool]

    def _restore_pool(self, rows: Sequence[dict[str, Any]]) -> None:
        self.pool = []
        for row in rows:
            m = self._member(self.space.make(row["tokens"]))
            self._load_member_row(m, row)
            self.pool.append(m)

    # -- what a subclass supplies ------------------------------------------------------------
    def _member(self, arch: Architecture) -> M:
        raise NotImplementedError

    def _train_round(self, failed: dict[Hashable, str]) -> Any:
        """Train on the pool; record architectures that failed in ``failed``; the result goes to
        :meth:`_round_summary`."""
        raise NotImplementedError

    def _score_member(self, m: M, failed: dict[Hashable, str]) -> float:
        """Score ``m`` in place (or record it in ``failed``); return the seconds it took."""
        raise NotImplementedError

    def _metrics(self, m: M) -> dict[str, float]:
        raise NotImplementedError

    def _result_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def _round_summary(self, n_new: int, n_failed: int, trained: Any, seconds: float) -> dict[str, Any]:
        raise NotImplementedError

    def _ranking_value(self, m: M) -> float | None:
        raise NotImplementedError

    def _member_row(self, m: M) -> dict[str, Any]:
        raise NotImplementedError

    def _load_member_row(self, m: M, row: dict[str, Any]) -> None:
        raise NotImplementedError


def resume_point(run_path: Path, journal_path: Path, space: SearchSpace,
                 map_location: str | torch.device) -> tuple[list[Result], dict[str, Any] | None, list[str]]:
    """The journal to replay, the checkpoint state it leads to, and warnings for the run's log.

    Results journaled after the checkpoint are cut from the journal file (module docstring).
    """
    previous, notes = read_journal_for_resume(journal_path, space)
    path = run_path / SUPERNET_CHECKPOINT
    state = load_checkpoint(path, map_location=map_location) if path.exists() else None
    covered = int(state["results_seen"]) if state else 0
    if len(previous) < covered:
        raise DataError(f"{journal_path} holds {len(previous)} results but {path} covers {covered}: "
                        f"they do not belong to the same run")
    if len(previous) > covered:
        notes.append(f"{journal_path}: cutting {len(previous) - covered} results journaled after the last "
                     f"supernet checkpoint (their round is redone)")
        lines = [ln for ln in journal_path.read_text().splitlines(keepends=True) if ln.strip()]
        tmp = journal_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(lines[:covered]))
        os.replace(tmp, journal_path)
        previous = previous[:covered]
    return previous, state, notes
