"""Peers' own multi-fidelity code as arms of the NB201 two-fidelity simulator (:mod:`nao.fidelity.simulate`).

Optuna's sampler and pruner, and DEHB, each through their package's ask/tell with its documented
defaults: the simulator hands them tasks and scores exactly as it does NAO's and random search's arms.
Built by :func:`nao.fidelity.simulate.make_arm` (``optuna-tpe-hyperband``, ``optuna-tpe``, ``dehb``).

>>> issubclass(OptunaArm, Arm) and issubclass(DEHBArm, Arm)
True
"""

from __future__ import annotations

from nao.errors import ConfigError
from nao.fidelity.scheduler import DEFAULT_ETA
from nao.fidelity.simulate import Arm, Task, TwoFidelityTable


class OptunaArm(Arm):
    """Optuna's own sampler and pruner through ask/tell: ``trial.report`` / ``should_prune``.

    Each trial suggests the six NB201 edges as categorical parameters, trains to 12 epochs,
    reports at step 12, and continues to 200 epochs unless Optuna's pruner prunes it
    (``pruner=None``: every trial at 200 epochs directly). Sampler and pruner run with Optuna's
    documented defaults (``TPESampler(seed=...)``, ``HyperbandPruner()``: ``min_resource=1``,
    ``max_resource="auto"``, ``reduction_factor=3``), steps in epochs.
    """

    def __init__(self, table: TwoFidelityTable, seed: int, sampler: str = "tpe", pruner: str | None = "hyperband") -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                    "gp": lambda: optuna.samplers.GPSampler(seed=seed),
                    "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
        pruners = {None: lambda: optuna.pruners.NopPruner(), "hyperband": lambda: optuna.pruners.HyperbandPruner(),
                   "sh": lambda: optuna.pruners.SuccessiveHalvingPruner()}
        self.optuna, self.table, self.pruned = optuna, table, pruner is not None
        # HyperbandPruner assigns brackets by hashing the study name: a fixed, seed-derived name makes the
        # arm reproducible (Optuna's default name is a fresh UUID per study).
        self.study = optuna.create_study(study_name=f"nao-sim-seed{seed}", direction="maximize",
                                         sampler=samplers[sampler](), pruner=pruners[pruner]())
        self._continue: list[Task] = []
        space = table.table.space
        self._ops, self._length = list(space.ops), space.length

    def propose(self) -> Task | None:
        if self._continue:
            return self._continue.pop(0)
        trial = self.study.ask()
        tokens = [self._ops.index(trial.suggest_categorical(f"edge{i}", self._ops)) for i in range(self._length)]
        arch = self.table.table.space.make(tokens)
        return Task(arch, 0 if self.pruned else self.table.top, trial)

    def complete(self, task: Task, score: float) -> None:
        trial = task.payload
        if task.rung < self.table.top:
            trial.report(score, step=int(self.table.epochs[task.rung]))
            if trial.should_prune():
                self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
            else:
                self._continue.append(Task(task.arch, task.rung + 1, trial))
            return
        trial.report(score, step=int(self.table.epochs[task.rung]))
        self.study.tell(trial, score)


class DEHBArm(Arm):
    """DEHB (Awad, Mallik, Hutter; IJCAI 2021) through the ``dehb`` package's own ask/tell.

    Six categorical edges in a ConfigSpace; ``min_fidelity = 200/eta`` so that DEHB's ladder has
    exactly the table's two rungs (its lower rung is answered from the 12-epoch columns at 12 epochs'
    cost); every other setting is DEHB's documented default (``mutation_factor=0.5``,
    ``crossover_prob=0.5``, ``strategy="rand1_bin"``, ``eta=3``, ``async_strategy="immediate"``),
    fitness = -validation accuracy. ``dehb`` 0.1.2 needs ``numpy<2`` (it cannot live beside this
    project's pins): run it from a separate virtual environment.
    """

    def __init__(self, table: TwoFidelityTable, seed: int, eta: float = DEFAULT_ETA) -> None:
        import tempfile

        try:
            import ConfigSpace as CS  # noqa: N817 - the package's own spelling
            from dehb import DEHB
        except ImportError:
            raise ConfigError("--strategies dehb: the dehb package is not installed (it needs numpy<2: use a "
                              "separate virtual environment, see BENCHMARKS.md)") from None
        space = table.table.space
        self._ops, self._length, self.table = list(space.ops), space.length, table
        cs = CS.ConfigurationSpace(seed=seed)
        for i in range(space.length):
            cs.add(CS.Categorical(f"edge{i}", self._ops))
        self._out = tempfile.mkdtemp(prefix="nao-dehb-")
        self.dehb = DEHB(cs=cs, dimensions=space.length, min_fidelity=table.epochs[-1] / eta,
                         max_fidelity=table.epochs[-1], eta=eta, n_workers=1, seed=seed, output_path=self._out,
                         log_level="ERROR")

    def propose(self) -> Task | None:
        job = self.dehb.ask()
        tokens = [self._ops.index(job["config"][f"edge{i}"]) for i in range(self._length)]
        rung = self.table.top if job["fidelity"] >= self.table.epochs[-1] - 1e-6 else 0
        return Task(self.table.table.space.make(tokens), rung, job)

    def complete(self, task: Task, score: float) -> None:
        self.dehb.tell(task.payload, {"fitness": -score, "cost": self.table.epochs[task.rung]})

    def close(self) -> None:
        import shutil

        shutil.rmtree(self._out, ignore_errors=True)  # DEHB's own log and incumbent files
