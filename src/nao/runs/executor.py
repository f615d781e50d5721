"""Where a run's evaluations run: the ``executor`` section of a kind's config.

>>> ExecutorConfig().build().__class__.__name__
'SequentialExecutor'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nao.config import Config, setting
from nao.errors import ConfigError
from nao.executors import Executor, make_executor

#: Which executor each executor option applies to.
_OPTION_OWNERS = {"workers": ("processes",), "address": ("ray",), "cpus_per_eval": ("ray",),
                  "gpus_per_eval": ("ray",), "max_retries": ("processes", "ray")}


@dataclass
class ExecutorConfig(Config):
    """Where evaluations run (a run setting: it may change when a run is resumed).

    Attributes:
        name: ``sequential`` (in this process), ``processes`` (a local pool) or ``ray``.
        workers: ``processes``: worker processes (default: cores).
        address: ``ray``: cluster address, ``host:port`` or ``auto`` (default: start a local one).
        cpus_per_eval, gpus_per_eval: ``ray``: resources of one evaluation (defaults 1 and 0).
        max_retries: restarts of an evaluation whose worker died before it is recorded failed.
    """

    name: str = "sequential"
    workers: int | None = setting(None, min=1)
    address: str | None = None
    cpus_per_eval: float | None = setting(None, min=0.0)
    gpus_per_eval: float | None = setting(None, min=0.0)
    max_retries: int | None = setting(None, min=0)

    def check(self) -> None:
        """Options meant for another executor are refused by name."""
        if self.name not in ("sequential", "processes", "ray"):
            raise ConfigError(f"--executor {self.name!r}: choose sequential, processes or ray")
        for key, owners in _OPTION_OWNERS.items():
            if getattr(self, key) is not None and self.name not in owners:
                raise ConfigError(f"--{key.replace('_', '-')} applies to --executor {' or '.join(owners)}, "
                                  f"not {self.name}")
        if self.address is not None:
            check_ray_address(self.address)
        if self.gpus_per_eval and self.address is None and not _local_gpus():
            # A local cluster would accept the request and then never schedule a task: say so now.
            raise ConfigError(f"--gpus-per-eval {self.gpus_per_eval}: this machine has no CUDA GPU "
                              f"(give --address of a cluster that has GPUs)")

    def build(self) -> Executor:
        """The executor (an unreachable Ray address fails here, before any work)."""
        self.check()
        return make_executor(self.name, **{k: getattr(self, k) for k, owners in _OPTION_OWNERS.items()
                                           if self.name in owners})


_RAY_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9._-]+:\d{1,5})$")


def check_ray_address(address: str) -> None:
    """Validate ``--address`` before Ray sees it (Ray answers a malformed one with a traceback or a hang).

    >>> check_ray_address("10.0.0.5:6379"); check_ray_address("auto")
    >>> check_ray_address("10.0.0.5")
    Traceback (most recent call last):
    ...
    nao.errors.ConfigError: --address '10.0.0.5': expected auto, host:port or ray://host:port
    """
    m = _RAY_ADDRESS.match(address.strip())
    if not m or (":" in address and not 0 < int(address.rsplit(":", 1)[1]) < 65536):
        raise ConfigError(f"--address {address!r}: expected auto, host:port or ray://host:port")


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
