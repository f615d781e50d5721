"""Per-candidate progress lines (nao.runs.progress)."""

from __future__ import annotations

from nao.results import Objective, Result
from nao.runs.progress import CandidateProgress
from nao.spaces.base import Architecture


class _Executor:
    capacity = 2

    def __init__(self) -> None:
        self.pending = 0


class _Strategy:
    def __init__(self, left: int | None) -> None:
        self.left = left

    def round_left(self) -> int | None:
        return self.left


def _result(i: int, ppl: float | None) -> Result:
    arch = Architecture("nb201", (i, 0, 0, 0, 0, 0))
    if ppl is None:
        return Result.failed(arch, "RuntimeError: loss is nan", 3.0)
    return Result(arch, "ok", {"val_ppl": ppl}, cost_s=60.0, info={"epochs": 1})


def test_replayed_results_are_counted_not_printed_nor_timed():
    lines: list[str] = []
    replayed = [_result(0, 300.0), _result(1, 250.0)]
    ticks = iter([100.0, 130.0, 190.0]).__next__
    ex = _Executor()
    bar = CandidateProgress(lines.append, Objective("val_ppl", "min"), _Strategy(None), ex, budget=6,
                            skip=replayed, clock=ticks)
    for r in replayed:
        bar(r)
    assert lines == []
    ex.pending = 1
    bar(_result(2, 280.0))  # 30 s after start: 30 s a candidate, 3 left
    assert lines[-1] == ("candidate 3/6: val_ppl 280.0000 (best 250.0000), 1 epoch, 60.0 s | 1 running, 0 waiting | "
                         "search ETA 1:30")
    ex.pending = 0
    bar(_result(3, None))  # 90 s for 2 fresh candidates: 45 s each, 2 left
    assert lines[-1] == "candidate 4/6: failed (RuntimeError: loss is nan), 3.0 s | 0 running, 0 waiting | search ETA 1:30"


def test_round_eta_counts_running_and_unasked_proposals():
    lines: list[str] = []
    ex = _Executor()
    ex.pending = 5  # 2 running (capacity), 3 queued in the executor
    bar = CandidateProgress(lines.append, Objective("val_acc", "max"), _Strategy(4), ex, budget=100,
                            clock=iter([0.0, 3600.0]).__next__)
    bar(_result(0, None))
    assert "2 running, 7 waiting | round ETA 9:00:00, search ETA 99:00:00" in lines[0]
