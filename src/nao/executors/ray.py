"""The ``ray`` executor: one Ray task per batch on a local or remote cluster (``pip install 'nao[ray]'``).

Imported only when ``make_executor("ray")`` (or one of the names below) is first used, so
``import nao`` never pays for Ray. The evaluator, which may carry a whole dataset, is put in
the object store once per evaluator (``ray.put``), and each worker process deserialises it
once (a per-process cache keyed by the evaluator's token); tasks carry only the reference.

>>> from nao.executors.ray import probe_ray_address
>>> probe_ray_address("auto")  # no port: left to Ray, nothing to probe
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Sequence
from typing import Any

from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.executors.base import (
    Executor,
    _chunks,
    _EvaluatorShipping,
    _Fatal,
    _in_use,
    _log_failures,
    _Retrier,
    _Task,
    _unwrap,
    _with_attempts,
    batch_size_of,
    evaluate_guarded,
)
from nao.results import Result
from nao.spaces.base import Architecture

# Per-worker-process cache of deserialised evaluators (token -> evaluator): Ray reuses worker
# processes across tasks, so each evaluator is fetched from the object store once per worker.
_RAY_WORKER_EVALUATORS: dict[str, Evaluator] = {}


def _ray_task(token: str, boxed_ref: list, archs: list[Architecture]) -> list[Result] | _Fatal:
    """Body of a Ray task. ``boxed_ref`` is ``[ObjectRef]``, boxed so Ray does not fetch it for every task."""
    import ray

    evaluator = _RAY_WORKER_EVALUATORS.get(token)
    if evaluator is None:
        _RAY_WORKER_EVALUATORS.clear()
        evaluator = _RAY_WORKER_EVALUATORS[token] = ray.get(boxed_ref[0])
    return evaluate_guarded(evaluator, archs)


def import_ray():
    """The ``ray`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"--executor ray needs Ray, which is not installed ({e}); pip install 'nao[ray]'") from None
    return ray


def probe_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with :class:`ConfigError` if nothing listens at a ``host:port`` Ray address.

    ``ray.init`` retries an unreachable address for minutes; a plain TCP connect answers in
    at most ``timeout_s``. ``auto`` and addresses without a port are left to Ray.
    """
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise ConfigError(f"--address {address}: no Ray cluster reachable ({reason} after <= {timeout_s:g} s)") from None


_RAY_WORKER_DEATHS = (
    "WorkerCrashedError",
    "NodeDiedError",
    "OutOfMemoryError",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectReconstructionFailedError",
    "LocalRayletDiedError",
)


class RayExecutor(Executor):
    """Evaluations as Ray tasks; results come back as they finish (``ray.wait``).

    Args:
        address: an existing cluster (``host:port``, ``ray://host:port`` or ``auto``); ``None``
            starts a local one (or reuses the one this process already started).
        num_cpus: CPUs of a local cluster started here (default: all).
        cpus_per_eval: CPUs reserved by each task.
        gpus_per_eval: GPUs reserved by each task (fractions share a GPU).
        max_retries: how often a task is restarted after its worker died.
        parallel: evaluations in flight (default: what the cluster's resources allow).
        connect_timeout_s: how long to wait for ``address`` to answer.

    Workers import ``nao`` and the evaluator's module, so on a remote cluster ``nao`` must be
    installed on every node.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_eval: float = 1.0,
        gpus_per_eval: float = 0.0,
        max_retries: int = 2,
        parallel: int | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if cpus_per_eval < 0 or gpus_per_eval < 0 or (cpus_per_eval == 0 and gpus_per_eval == 0):
            raise ConfigError(
                f"--cpus-per-eval {cpus_per_eval} / --gpus-per-eval {gpus_per_eval}: need non-negative values, not both 0"
            )
        if max_retries < 0:
            raise ConfigError(f"--max-retries must be >= 0, got {max_retries}")
        ray = import_ray()
        self._ray = ray
        self._owns_cluster = False
        if not ray.is_initialized():
            self._init_cluster(address, num_cpus, connect_timeout_s)
        self.cpus_per_eval, self.gpus_per_eval = float(cpus_per_eval), float(gpus_per_eval)
        self.capacity = int(parallel) if parallel else self._capacity_from_cluster()
        if self.capacity < 1:
            raise ConfigError(f"--parallel must be at least 1, got {self.capacity}")
        self._remote = ray.remote(_ray_task).options(num_cpus=cpus_per_eval, num_gpus=gpus_per_eval, max_retries=0)
        self._retrier = _Retrier(max_retries)
        self._shipping = _EvaluatorShipping()
        self._refs: dict[str, Any] = {}  # token -> ObjectRef of the evaluator
        self._tasks: dict[Any, _Task] = {}  # ObjectRef of the task -> task

    def _init_cluster(self, address: str | None, num_cpus: int | None, timeout_s: float) -> None:
        ray = self._ray
        if address and address != "auto":
            probe_ray_address(address, timeout_s)
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address is None:
            kwargs.update(num_cpus=num_cpus, include_dashboard=False)
        elif num_cpus is not None:
            raise ConfigError(f"num_cpus={num_cpus} only applies to a local Ray cluster, not to --address {address}")
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as e:
            raise ConfigError(f"--address {address}: {e}") from None
        self._owns_cluster = True

    def _capacity_from_cluster(self) -> int:
        res = self._ray.cluster_resources()
        limits = []
        if self.cpus_per_eval > 0:
            limits.append(math.floor(res.get("CPU", 0) / self.cpus_per_eval + 1e-9))
        if self.gpus_per_eval > 0:
            limits.append(math.floor(res.get("GPU", 0) / self.gpus_per_eval + 1e-9))
        capacity = min(limits)
        if capacity < 1:
            raise ConfigError(
                f"the Ray cluster ({res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs) cannot run one evaluation with "
                f"--cpus-per-eval {self.cpus_per_eval:g} --gpus-per-eval {self.gpus_per_eval:g}"
            )
        return capacity

    def slots(self, evaluator: Evaluator) -> int:
        return self.capacity * batch_size_of(evaluator)

    @property
    def pending(self) -> int:
        return sum(len(t.archs) for t in self._tasks.values())

    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        token, new = self._shipping.token(evaluator)
        if new:
            self._refs = _in_use(self._refs, self._tasks.values())
            self._refs[token] = self._ray.put(evaluator)  # one copy in the object store
        for chunk in _chunks(archs, batch_size_of(evaluator)):
            self._launch(_Task(chunk, token))

    def _launch(self, task: _Task) -> None:
        task.attempts += 1
        ref = self._remote.remote(task.token, [self._refs[task.token]], task.archs)
        self._tasks[ref] = task

    def poll(self) -> list[Result]:
        ray = self._ray
        done: list[Result] = []
        while not done and self._tasks:
            refs = list(self._tasks)
            ready, rest = ray.wait(refs, num_returns=1)
            if rest:  # take everything else that has finished too, without waiting
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            for ref in ready:
                done.extend(self._collect(ref))
        _log_failures(done)
        return done

    def _collect(self, ref: Any) -> list[Result]:
        task = self._tasks.pop(ref)
        try:
            outcome = self._ray.get(ref)
        except self._ray.exceptions.RayError as e:
            name = type(e).__name__
            if name == "TaskCancelledError":
                return [Result.failed(a, "evaluation cancelled") for a in task.archs]
            if isinstance(e, self._ray.exceptions.RayTaskError):  # e.g. the evaluator cannot be unpickled there
                return [Result.failed(a, f"Ray task failed: {_first_line(e)}") for a in task.archs]
            if not any(n in name for n in _RAY_WORKER_DEATHS):
                raise
            failed = self._retrier.on_death(task, f"Ray worker died ({name}: {_first_line(e)})")
            if failed is None:
                self._launch(task)
                return []
            return failed
        return _with_attempts(_unwrap(outcome), task.attempts)

    def close(self) -> None:
        for ref in list(self._tasks):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
        self._tasks.clear()
        if self._owns_cluster and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns_cluster = False


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else ""
