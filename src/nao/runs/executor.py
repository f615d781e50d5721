"""Settings shared by run kinds: where evaluations run, and the checks a resume makes.

>>> ExecutorConfig().build().__class__.__name__
'SequentialExecutor'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nao.errors import ConfigError
from nao.executors import Executor, make_executor
from nao.presets import flatten

#: Which executor each executor option applies to.
_OPTION_OWNERS = {"workers": ("processes",), "address": ("ray",), "cpus_per_eval": ("ray",),
                  "gpus_per_eval": ("ray",), "max_retries": ("processes", "ray")}


@dataclass
class ExecutorConfig:
    """Where evaluations run (a run setting: it may change when a run is resumed).

    Attributes:
        name: ``sequential`` (in this process), ``processes`` (a local pool) or ``ray``.
        workers: ``processes``: worker processes (default: cores).
        address: ``ray``: cluster address, ``host:port`` or ``auto`` (default: start a local one).
        cpus_per_eval, gpus_per_eval: ``ray``: resources of one evaluation (defaults 1 and 0).
        max_retries: restarts of an evaluation whose worker died before it is recorded failed.
    """

    name: str = "sequential"
    workers: int | None = None
    address: str | None = None
    cpus_per_eval: float | None = None
    gpus_per_eval: float | None = None
    max_retries: int | None = None

    def check(self) -> None:
        """Options meant for another executor are refused by name."""
        if self.name not in ("sequential", "processes", "ray"):
            raise ConfigError(f"--executor {self.name!r}: choose sequential, processes or ray")
        for key, owners in _OPTION_OWNERS.items():
            if getattr(self, key) is not None and self.name not in owners:
                raise ConfigError(f"--{key.replace('_', '-')} applies to --executor {' or '.join(owners)}, "
                                  f"not {self.name}")
        if self.gpus_per_eval and self.address is None and not _local_gpus():
            # A local cluster would accept the request and then never schedule a task: say so now.
            raise ConfigError(f"--gpus-per-eval {self.gpus_per_eval}: this machine has no CUDA GPU "
                              f"(give --address of a cluster that has GPUs)")

    def build(self) -> Executor:
        """The executor (an unreachable Ray address fails here, before any work)."""
        self.check()
        return make_executor(self.name, **{k: getattr(self, k) for k, owners in _OPTION_OWNERS.items()
                                           if self.name in owners})


#: Settings a resumed run may change: how far it goes and where it runs. Everything else is fixed.
RUNTIME_KEYS = ("executor", "device", "data_dir")


def refuse_changes(where: str, saved: Mapping[str, Any], resolved: Mapping[str, Any],
                   may_change: tuple[str, ...] = RUNTIME_KEYS) -> None:
    """``--resume`` check: every setting of ``resolved`` outside ``may_change`` must equal ``saved``'s.

    Raises :class:`ConfigError` naming the first dotted setting that differs.
    """
    # Compared in their JSON form (tuples and lists alike), as config.json holds them.
    old, new = flatten(json.loads(json.dumps(saved))), flatten(json.loads(json.dumps(resolved)))
    for key in sorted(set(old) | set(new)):
        if key == "kind" or key.split(".")[0] in may_change:
            continue
        if old.get(key) != new.get(key):
            raise ConfigError(f"--resume {where}: {key} {_shown(new.get(key))} conflicts with the run's "
                              f"{_shown(old.get(key))} (a resumed run keeps its settings)")


def _shown(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
