"""Fidelity schedulers with hand-made scores: promotion order, asynchrony, failures, resume."""

from __future__ import annotations

import pytest

from nao.errors import ConfigError
from nao.fidelity import ASHA, Hyperband, Job, Record, SuccessiveHalving, geometric_rungs, make_scheduler


def _run(s, scores, n_jobs, stop_at=None):
    """Drive ``s`` with one sequential worker; new candidates are c0, c1, ... scored by ``scores``
    (candidate, rung) -> score (None: failed). Returns the records in finishing order."""
    out = []
    fresh = len(set().union(*s.started))  # candidates so far (a resumed scheduler has some)
    for _ in range(n_jobs):
        job = s.next_job()
        assert job is not None
        cand = job.candidate
        if cand is None:
            cand, fresh = f"c{fresh}", fresh + 1
        s.start(cand, job.rung)
        score = scores(cand, job.rung)
        rec = Record(cand, job.rung, score, "ok" if score is not None else "failed")
        s.report(rec)
        out.append(rec)
        if stop_at is not None and len(out) == stop_at:
            break
    return out


def _score(cand, rung):
    i = int(cand[1:])
    return (i * 7 % 10) / 10 + rung  # c0 .0, c1 .7, c2 .4, c3 .1, c4 .8, c5 .5, c6 .2, c7 .9, c8 .6


def test_asha_promotes_the_top_third_as_soon_as_it_exists():
    s = ASHA(rungs=(1, 3, 9), eta=3)
    recs = _run(s, _score, 8)
    # c0 c1 c2 new; c1 (best of 3) -> rung 1; c3 new (top 1 of 4 is c1, already up); c4 new: now the
    # top 1 of 5 is c4 (.8), promoted at once, before rung 0 has 6 (no waiting for a full rung)
    assert [(r.candidate, r.rung) for r in recs] == [
        ("c0", 0), ("c1", 0), ("c2", 0), ("c1", 1), ("c3", 0), ("c4", 0), ("c4", 1), ("c5", 0)]
    # rung 1 has c1 and c4 (2 < 3): nothing goes to rung 2; rung 0's top 2 of 6 are both up already
    assert s.next_job() == Job(0)


def test_asha_prefers_the_highest_rung():
    s = ASHA(rungs=(1, 3, 9), eta=3)
    s.restore([Record(f"c{i}", 0, float(i)) for i in range(9)])  # 3 promotable at rung 0
    s.restore([Record(c, 1, v) for c, v in (("c8", 1.0), ("c7", 3.0), ("c6", 2.0))])
    assert s.next_job() == Job(2, "c7")  # rung 1 has 3 finished: its best goes to the top first


def test_asha_never_waits_and_never_promotes_a_failure():
    s = ASHA(rungs=(1, 3), eta=3)
    s.start("a", 0)
    s.start("b", 0)
    assert s.next_job() == Job(0)  # two running, nothing finished: a new candidate, no waiting
    s.report(Record("a", 0, None, "failed"))
    s.report(Record("b", 0, 0.1))
    s.restore([Record("c", 0, 0.0)])
    # three finished, the top third is one slot: the failed one ranks last, so b goes on
    assert s.next_job() == Job(1, "b")
    s2 = ASHA(rungs=(1, 3), eta=3)
    s2.restore([Record("a", 0, None, "failed"), Record("b", 0, None, "failed"), Record("c", 0, None, "failed")])
    assert s2.next_job() == Job(0)


def test_sync_sh_waits_at_the_barrier():
    s = SuccessiveHalving(rungs=(1, 3), eta=3, bracket_size=3)
    for c in ("a", "b", "c"):
        assert s.next_job() == Job(0)
        s.start(c, 0)
    assert s.next_job() is None  # the bracket's rung 0 is handed out but not reported
    s.report(Record("a", 0, 0.5))
    s.report(Record("b", 0, 0.9))
    assert s.next_job() is None  # c still running: a synchronous scheduler waits
    s.report(Record("c", 0, 0.1))
    assert s.next_job() == Job(1, "b")
    s.start("b", 1)
    assert s.next_job() is None
    s.report(Record("b", 1, 0.95))
    assert s.next_job() == Job(0)  # the next bracket


def test_sync_sh_bracket_with_failures_still_ends():
    s = SuccessiveHalving(rungs=(1, 3), eta=3, bracket_size=3)
    s.restore([Record(c, 0, None, "failed") for c in "abc"])
    assert s.next_job() == Job(0)  # nothing promotable: the bracket closes, a new one starts


def test_hyperband_brackets_start_at_each_rung():
    s = Hyperband(rungs=(1, 3), eta=3)
    recs = _run(s, _score, 6)
    # bracket s=1: 3 new at rung 0, the best goes on; bracket s=0: 2 new straight at the top rung
    assert [(r.candidate, r.rung) for r in recs] == [("c0", 0), ("c1", 0), ("c2", 0), ("c1", 1), ("c3", 1), ("c4", 1)]


@pytest.mark.parametrize("name", ["asha", "sh", "hyperband"])
@pytest.mark.parametrize("kill_at", [1, 4, 7, 12])
def test_resume_from_records_equals_the_uninterrupted_run(name, kill_at):
    rungs = (1, 3, 9)

    def scores(c, r):
        return None if c == "c2" else _score(c, r)  # one candidate fails

    whole = _run(make_scheduler(name, rungs), scores, 30)
    first = make_scheduler(name, rungs)
    part = _run(first, scores, 30, stop_at=kill_at)
    resumed = make_scheduler(name, rungs)
    resumed.restore(part)  # a fresh process reading the journal
    assert resumed.records() == first.records()
    assert resumed.next_job() == first.next_job()
    rest = _run(resumed, scores, 30 - kill_at)
    assert part + rest == whole
    assert not any(r.candidate == "c2" and r.rung > 0 for r in whole)  # the failure never went on


def test_ladders_and_bad_input():
    assert geometric_rungs(1, 81) == (1.0, 3.0, 9.0, 27.0, 81.0)
    assert geometric_rungs(5, 5) == (5.0,)
    with pytest.raises(ConfigError, match="--fidelity"):
        make_scheduler("bohb", (1, 3))
    with pytest.raises(ConfigError, match="eta"):
        ASHA((1, 3), eta=1)
    with pytest.raises(ConfigError, match="increasing"):
        ASHA((3, 1))
    with pytest.raises(ValueError, match="already started"):
        s = ASHA((1, 3))
        s.start("a", 0)
        s.start("a", 0)


def test_plan_ladder_for_trained_candidates():
    from nao.fidelity import plan_ladder

    assert plan_ladder(25, whole=True) == (3.0, 8.0, 25.0)  # the paper preset's 25 epochs
    assert plan_ladder(1.0) == pytest.approx((1 / 9, 1 / 3, 1.0))  # PTB: fractions of a pass
    assert plan_ladder(9, min_fidelity=1, whole=True) == (1.0, 3.0, 9.0)
    with pytest.raises(ConfigError, match="--fidelity: a candidate trained for 1 epochs"):
        plan_ladder(1, whole=True)
