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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nao.errors import DataError
from nao.journal import read_journal_for_resume
from nao.results import Result
from nao.spaces.base import SearchSpace
from nao.train.checkpoint import load_checkpoint, save_checkpoint

#: A supernet search's checkpoint, in its run directory.
SUPERNET_CHECKPOINT = "supernet.pt"


class RoundCheckpoints:
    """Mixin: round-level checkpoints and exact resume (module docstring)."""

    rounds: int
    round_sizes: list[int]
    results_seen: int
    checkpoint_path: Path | None

    def _init_rounds(self) -> None:
        self.rounds = 0
        self.round_sizes = []  # architectures each round added (the replay needs them)
        self.results_seen = 0  # results the Study has recorded (observe), replayed ones included
        self.checkpoint_path = None  # where each finished round's state goes
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
