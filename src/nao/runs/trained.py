"""What the trained kinds (``trained-cnn``, ``trained-rnn``) share: every candidate trained from scratch
through any executor, checkpointed per epoch in ``DIR/candidates/<id>/``, a final step.

>>> TrainedKind.scores_from
'training'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from nao.constraints import ConstrainedStrategy, Feasibility
from nao.fidelity.runs import fidelity_strategy
from nao.fidelity.scheduler import make_scheduler
from nao.results import Result
from nao.runs.progress import CandidateProgress
from nao.runs.skeleton import RunContext, RunKind, Search
from nao.strategies import make_strategy
from nao.threads import torch_threads

#: Where the candidates' checkpoints live inside a run directory.
CANDIDATES_DIR = "candidates"

class TrainedKind(RunKind):
    """What both trained kinds share: any executor, per-candidate checkpoints, a final step."""

    scores_from = "training"
    resumable_changes = ("executor", "budget", "threads")

    def threads(self) -> AbstractContextManager:
        return torch_threads(self.config.threads)

    def strategy(self, max_fidelity: float | None = None, feasibility: Feasibility | None = None) -> Any:
        """The configured strategy, ranking by the kind's objective; under a fidelity scheduler (``max_fidelity``
        given) NAO learns from every rung; with ``feasibility`` (a constraint) it proposes only what that accepts."""
        cfg = self.config
        strategy = make_strategy(cfg.strategy, self.space, seed=cfg.seed, objective=self.objective,
                                 feasible=None if feasibility is None else feasibility.accepts, **cfg.strategy_options)
        if max_fidelity is not None:
            strategy = fidelity_strategy(strategy, self.space, cfg.seed, max_fidelity, cfg.strategy_options)
        return strategy if feasibility is None else ConstrainedStrategy(strategy, feasibility)

    def scheduler(self) -> Any:
        """The fidelity scheduler of the run (None with ``--fidelity none``); rungs checked in prepare()."""
        rungs = getattr(self, "rungs", None)
        return None if rungs is None else make_scheduler(self.config.fidelity, rungs, self.config.eta)

    def is_finished(self, result: dict[str, Any]) -> bool:
        return result.get("final", {}).get("status") == "ok"

    def progress(self, ctx: RunContext, search: Search, skip: Sequence[Result]) -> list[Callable[[Result], None]]:
        if ctx.quiet:
            return []
        return [CandidateProgress(ctx.say, search.objective, search.strategy, search.executor, search.budget,
                                  skip=skip)]

    def close(self) -> None:
        if getattr(self, "executor", None) is not None:
            self.executor.close()
