"""Multi-fidelity search: decide how long to train each candidate.

:mod:`nao.fidelity.scheduler` holds the schedulers (ASHA, synchronous successive halving,
Hyperband) as a small pure-Python library; :mod:`nao.fidelity.targets` turns the scores of
several rungs into one training target per architecture for a controller;
:mod:`nao.fidelity.simulate` runs searches on a two-fidelity table (NB201's 12- and 200-epoch
columns) with N simulated parallel workers.

>>> from nao.fidelity import ASHA, Record
>>> s = ASHA(rungs=(12, 200))
>>> s.next_job()
Job(rung=0, candidate=None)
"""

from nao.fidelity.scheduler import (
    ASHA,
    DEFAULT_ETA,
    SCHEDULERS,
    Hyperband,
    Job,
    Record,
    Scheduler,
    SuccessiveHalving,
    balanced_eta,
    geometric_rungs,
    make_scheduler,
    plan_ladder,
)

__all__ = [
    "ASHA", "DEFAULT_ETA", "SCHEDULERS", "Hyperband", "Job", "Record", "Scheduler", "SuccessiveHalving",
    "balanced_eta", "geometric_rungs", "make_scheduler", "plan_ladder",
]
