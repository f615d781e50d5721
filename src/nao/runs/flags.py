"""Command-line flags that run kinds declare: the CLI generates ``nao search TASK``'s flags from them.

A kind lists its flags (``RunKind.flags``); each sets one or more dotted config settings. The shared
groups below are what most kinds take; a kind adds its own with :func:`flag`.

>>> flag("--data-dir", path=True).keys, flag("--workers", "executor.workers").dest
(('data_dir',), 'workers')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flag:
    """A command-line flag a run kind accepts, and the config settings it sets.

    The CLI generates ``nao search TASK``'s flags from the flags of the task's kinds
    (:func:`nao.cli.search.add_parser`); a flag given for a kind that does not declare it is refused.

    Attributes:
        name: the flag (``--benchmark``).
        keys: dotted settings it sets (several for tied settings, e.g. hidden and embedding size).
        type: converts the command-line text (``str``, ``int``, ``float``).
        help: one line for ``--help``.
        choices: the values allowed (``None``: any).
        path: stored as a resolved path (so a run resumes from any directory).
        group: the ``--help`` section.
    """

    name: str
    keys: tuple[str, ...]
    type: Callable[[str], Any] = str
    help: str = ""
    choices: tuple[str, ...] | None = None
    path: bool = False
    group: str = "search"
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The argparse attribute name (``--data-dir`` -> ``data_dir``)."""
        return self.name.lstrip("-").replace("-", "_")


def flag(name: str, key: str | tuple[str, ...] | None = None, **kwargs: Any) -> Flag:
    """A :class:`Flag` whose setting is named like the flag unless ``key`` says otherwise."""
    keys = (key,) if isinstance(key, str) else key or (name.lstrip("-").replace("-", "_"),)
    return Flag(name, tuple(keys), **kwargs)


#: Flags of every kind.
SEARCH_FLAGS = (
    flag("--space", help="search space (default: the preset's)"),
    flag("--strategy", help="search strategy: nao (default), bananas, local, rea, random, optuna-tpe, optuna-gp"),
    flag("--budget", type=int, help="unique architectures to evaluate (default: the preset's)"),
    flag("--max-cost", type=float, metavar="X",
         help="also stop once the evaluations cost X compute, in the kind's unit (result.json's cost_unit: "
              "gpu_s for a table, image_epochs / token_epochs for trained candidates, s for a supernet)"),
    flag("--seed", type=int, help="random seed (default: 0)"),
)
#: Flags of kinds that evaluate through an executor (``config.executor``).
EXECUTOR_FLAGS = (
    flag("--executor", "executor.name", choices=("sequential", "processes", "ray"), group="executors",
         help="where evaluations run (default: sequential, in this process)"),
    flag("--workers", "executor.workers", type=int, group="executors",
         help="--executor processes: worker processes (default: cores)"),
    flag("--address", "executor.address", group="executors", help="--executor ray: cluster address, host:port or auto"),
    flag("--cpus-per-eval", "executor.cpus_per_eval", type=float, group="executors",
         help="--executor ray: CPUs per evaluation (default 1)"),
    flag("--gpus-per-eval", "executor.gpus_per_eval", type=float, group="executors",
         help="--executor ray: GPUs per evaluation (default 0)"),
    flag("--max-retries", "executor.max_retries", type=int, group="executors",
         help="restarts of an evaluation whose worker died, then it is recorded as failed (default: 2)"),
)
#: Flags of kinds that train networks (data, device, threads).
DEVICE_FLAGS = (
    flag("--data-dir", help="where the data lives (default: $NAO_DATA or ../shared/data)", path=True, group="data"),
    flag("--device", help="cpu, cuda, cuda:N or auto (default: cpu)", group="device"),
    flag("--threads", type=int, help="torch CPU threads (default: the preset's)", group="device"),
)

#: Flags of kinds whose candidates can be trained further (:mod:`nao.fidelity`).
FIDELITY_FLAGS = (
    flag("--fidelity", choices=("none", "asha", "sh", "hyperband"), group="fidelity",
         help="train candidates by rungs a factor --eta apart, promoting the top 1/eta, promoted candidates "
              "continuing from their checkpoints: asha (asynchronous), sh, hyperband; none (default) trains each once"),
    flag("--eta", type=float, group="fidelity",
         help="--fidelity's reduction factor (default: 3 for trained candidates, whose rungs are eta apart; "
              "the rungs' ratio, 200/12, for a table's 12- and 200-epoch columns)"),
)
#: Flags of kinds that plan their own ladder of rungs (trained candidates; a table's rungs are its columns).
LADDER_FLAGS = (
    *FIDELITY_FLAGS,
    flag("--min-fidelity", type=float, group="fidelity", metavar="X",
         help="--fidelity's lowest rung, in epochs (passes for a language model; fractions allowed): the rungs are "
              "max / eta**k, none below X (default: X = max / eta**2, three rungs). Set it past the stretch where every "
              "candidate scores alike, e.g. a language model's first unigram plateau"),
)
