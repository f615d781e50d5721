"""Executors run evaluations for the :class:`~nao.study.Study`.

An executor accepts architectures (``submit``) and hands back results as they finish
(``poll``). Three are registered in :data:`nao.registry.EXECUTORS`:

- ``sequential``: in this process, in submission order, ``evaluator.batch_size`` at a time,
  so a run is reproducible from its seed.
- ``processes``: a pool of local worker processes; the evaluator is shipped once per
  worker, results come back in completion order.
- ``ray``: one Ray task per batch on a local or remote Ray cluster (``pip install 'nao[ray]'``).

Every executor returns exactly one :class:`~nao.results.Result` per submitted architecture:
an evaluator that raises an ordinary exception gives failed results carrying the message
(the search goes on); a worker that dies mid-evaluation is retried ``max_retries`` times and
then recorded as failed with the reason. A :class:`~nao.errors.NaoError` raised by an
evaluator is a user error that invalidates the whole run, so it propagates to the caller.

>>> from nao.executors import SequentialExecutor, make_executor
>>> SequentialExecutor().capacity
1
>>> type(make_executor("sequential")).__name__
'SequentialExecutor'
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import pickle
import socket
import sys
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from nao.errors import ConfigError, NaoError
from nao.evaluators.base import Evaluator
from nao.registry import EXECUTORS
from nao.results import Result
from nao.spaces.base import Architecture

log = logging.getLogger(__name__)

# How much of a failing evaluation's traceback is kept in ``Result.info`` (journal size).
_MAX_TRACEBACK_CHARS = 2_000


class Executor(ABC):
    """Runs an evaluator's work, possibly in parallel.

    ``capacity`` is how many evaluations the study should keep in flight; the study refills
    the executor as results come back.
    """

    capacity: int = 1

    def slots(self, evaluator: Evaluator) -> int:
        """How many evaluations the study should keep in flight for ``evaluator``."""
        return self.capacity

    @abstractmethod
    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        """Queue architectures for evaluation."""

    @abstractmethod
    def poll(self) -> list[Result]:
        """Block until at least one queued evaluation finishes and return the finished ones."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Number of submitted evaluations not yet returned by ``poll``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_size_of(evaluator: Evaluator) -> int:
    """Architectures the evaluator scores in one call (``batch_size`` attribute, default 1)."""
    return max(1, int(getattr(evaluator, "batch_size", 1)))


def _chunks(archs: Sequence[Architecture], size: int) -> list[list[Architecture]]:
    return [list(archs[i : i + size]) for i in range(0, len(archs), size)]


@dataclass
class _Fatal:
    """A NaoError raised inside a worker, carried back to be raised in the caller."""

    error: NaoError


def evaluate_guarded(evaluator: Evaluator, archs: Sequence[Architecture]) -> list[Result] | _Fatal:
    """``evaluator.evaluate(archs)``, with ordinary exceptions turned into failed results.

    Used by every executor (and inside workers), so a crashing evaluation never stops a
    search. A :class:`NaoError` is returned as :class:`_Fatal` for the caller to raise.
    """
    start = time.perf_counter()
    try:
        results = list(evaluator.evaluate(archs))
    except NaoError as e:
        return _Fatal(e)
    except Exception as e:  # noqa: BLE001 - any evaluator bug becomes a failed result
        cost = time.perf_counter() - start
        message = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc()[-_MAX_TRACEBACK_CHARS:]
        return [replace(Result.failed(a, message, cost), info={"traceback": tb}) for a in archs]
    if len(results) != len(archs):
        message = f"evaluator {type(evaluator).__name__} returned {len(results)} results for {len(archs)} architectures"
        return [Result.failed(a, message) for a in archs]
    return results


def _unwrap(outcome: list[Result] | _Fatal) -> list[Result]:
    if isinstance(outcome, _Fatal):
        raise outcome.error
    return outcome


def _log_failures(results: Sequence[Result]) -> None:
    for r in results:
        if not r.ok:
            log.warning("evaluation failed (%s): %s", r.error, r.arch.tokens)


# -- sequential ------------------------------------------------------------------------------


@EXECUTORS.register("sequential")
class SequentialExecutor(Executor):
    """Evaluates in this process, in order, ``evaluator.batch_size`` architectures at a time."""

    capacity = 1

    def slots(self, evaluator: Evaluator) -> int:
        # One batch at a time: strategies are asked for exactly what the evaluator scores in
        # one call, so sequential strategies (evolution, local search) see every result first.
        return batch_size_of(evaluator)

    def __init__(self) -> None:
        self._queue: deque[tuple[Evaluator, Architecture]] = deque()

    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        self._queue.extend((evaluator, a) for a in archs)

    def poll(self) -> list[Result]:
        if not self._queue:
            return []
        evaluator = self._queue[0][0]
        batch: list[Architecture] = []
        while self._queue and len(batch) < batch_size_of(evaluator) and self._queue[0][0] is evaluator:
            batch.append(self._queue.popleft()[1])
        results = _unwrap(evaluate_guarded(evaluator, batch))
        _log_failures(results)
        return results

    @property
    def pending(self) -> int:
        return len(self._queue)


# -- shared bookkeeping of parallel executors -----------------------------------------------


@dataclass
class _Task:
    """One batch of architectures and how often it has been started."""

    archs: list[Architecture]
    token: str  # which evaluator evaluates it (see _EvaluatorShipping)
    attempts: int = 0


@dataclass
class _Retrier:
    """Decides what happens to a task whose worker died: run again, or fail it."""

    max_retries: int

    def on_death(self, task: _Task, reason: str) -> list[Result] | None:
        """``None`` to retry ``task``; otherwise its failed results (retries used up)."""
        if task.attempts <= self.max_retries:
            log.warning("%s; retrying (attempt %d of %d)", reason, task.attempts + 1, self.max_retries + 1)
            return None
        message = f"{reason}; gave up after {task.attempts} attempt(s)"
        log.warning("%s", message)
        return [replace(Result.failed(a, message), info={"attempts": task.attempts}) for a in task.archs]


def _in_use(by_token: dict[str, Any], tasks: Any) -> dict[str, Any]:
    """The entries of ``by_token`` that queued or running tasks still need (a retry needs its evaluator)."""
    needed = {t.token for t in tasks}
    return {k: v for k, v in by_token.items() if k in needed}


def _with_attempts(results: list[Result], attempts: int) -> list[Result]:
    # Only retried evaluations carry the count, so ordinary journals stay minimal.
    if attempts <= 1:
        return results
    return [replace(r, info={**r.info, "attempts": attempts}) for r in results]


@dataclass
class _EvaluatorShipping:
    """Gives each evaluator a token so workers deserialise it once, not once per task."""

    tokens: dict[int, tuple[str, Evaluator]] = field(default_factory=dict)

    def token(self, evaluator: Evaluator) -> tuple[str, bool]:
        """The evaluator's token and whether it is new."""
        entry = self.tokens.get(id(evaluator))
        if entry is not None and entry[1] is evaluator:
            return entry[0], False
        # Unique across executors and runs: Ray's worker processes outlive an executor.
        token = uuid.uuid4().hex
        self.tokens[id(evaluator)] = (token, evaluator)  # holding it keeps id() unique
        return token, True


# -- local processes -------------------------------------------------------------------------


def _process_worker(conn: Connection, threads: int) -> None:
    """Worker loop: ``("load", token, bytes)`` installs an evaluator; ``("eval", id, token, archs)`` runs one task."""
    evaluators: dict[str, Evaluator] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg[0] == "stop":
            return
        if msg[0] == "load":
            evaluators = {msg[1]: _load_evaluator(msg[2])}  # keep only the current evaluator
            _limit_torch_threads(threads)
            continue
        _, task_id, token, archs = msg
        conn.send((task_id, evaluate_guarded(evaluators[token], archs)))


class _Unloadable(Evaluator):
    """Stands in for an evaluator that could not be unpickled in a worker: fails every evaluation."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        raise RuntimeError(f"the evaluator could not be loaded in the worker process: {self.reason}")


def _load_evaluator(payload: bytes) -> Evaluator:
    try:
        return pickle.loads(payload)
    except Exception as e:  # noqa: BLE001 - reported through every result of this worker
        return _Unloadable(f"{type(e).__name__}: {e}")


def _limit_torch_threads(threads: int) -> None:
    # Several workers share the machine's cores: one torch thread pool each would oversubscribe.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@dataclass
class _ProcWorker:
    process: Any
    conn: Connection
    loaded: str | None = None
    task_id: int | None = None


@EXECUTORS.register("processes")
class ProcessExecutor(Executor):
    """A pool of local worker processes.

    Args:
        workers: number of processes (default: the CPU count).
        max_retries: how often a task is restarted after its worker process died.
        start_method: multiprocessing start method; ``spawn`` (default) is safe with threads
            and torch in the parent, ``fork`` starts faster.
        threads_per_worker: torch threads per worker (default: cores // workers, at least 1).

    Each worker runs one batch (``evaluator.batch_size`` architectures) at a time; when a
    worker dies, exactly the task it was running is retried, on a fresh worker.
    """

    def __init__(
        self,
        workers: int | None = None,
        max_retries: int = 2,
        start_method: str = "spawn",
        threads_per_worker: int | None = None,
    ) -> None:
        cores = os.cpu_count() or 1
        workers = cores if workers is None else int(workers)
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        if max_retries < 0:
            raise ConfigError(f"--max-retries must be >= 0, got {max_retries}")
        self.capacity = workers
        self.threads = threads_per_worker or max(1, cores // workers)
        self._ctx = mp.get_context(start_method)
        self._retrier = _Retrier(max_retries)
        self._shipping = _EvaluatorShipping()
        self._payloads: dict[str, bytes] = {}
        self._workers: list[_ProcWorker] = []
        self._queue: deque[int] = deque()  # task ids waiting for a worker
        self._tasks: dict[int, _Task] = {}
        self._next_id = 0
        self._done: list[Result] = []

    def slots(self, evaluator: Evaluator) -> int:
        return self.capacity * batch_size_of(evaluator)

    @property
    def pending(self) -> int:
        return sum(len(t.archs) for t in self._tasks.values()) + len(self._done)

    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        token, new = self._shipping.token(evaluator)
        if new:
            self._payloads = _in_use(self._payloads, self._tasks.values())
            self._payloads[token] = pickle.dumps(evaluator)  # pickled once, sent once per worker
        for chunk in _chunks(archs, batch_size_of(evaluator)):
            self._tasks[self._next_id] = _Task(chunk, token)
            self._queue.append(self._next_id)
            self._next_id += 1
        self._dispatch()

    def poll(self) -> list[Result]:
        while not self._done and self._tasks:
            self._dispatch()
            busy = [w for w in self._workers if w.task_id is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for w in busy:
                if w.conn in ready or w.process.sentinel in ready:
                    self._collect(w)
        done, self._done = self._done, []
        _log_failures(done)
        return done

    def _collect(self, w: _ProcWorker) -> None:
        """Take ``w``'s result, or handle its death."""
        task_id = w.task_id
        assert task_id is not None
        try:
            has_msg = w.conn.poll()
            msg = w.conn.recv() if has_msg else None
        except (EOFError, OSError):
            msg = None
        if msg is not None:
            w.task_id = None
            task = self._tasks.pop(task_id)
            self._done.extend(_with_attempts(_unwrap(msg[1]), task.attempts))
            return
        w.process.join(timeout=1.0)
        if w.process.is_alive():  # sentinel not fired yet: the message is just late
            return
        self._workers.remove(w)
        task = self._tasks[task_id]
        failed = self._retrier.on_death(task, f"worker process died (exit code {w.process.exitcode})")
        if failed is None:
            self._queue.appendleft(task_id)
        else:
            del self._tasks[task_id]
            self._done.extend(failed)

    def _dispatch(self) -> None:
        """Hand queued tasks to idle workers, starting workers as needed."""
        while self._queue:
            idle = [w for w in self._workers if w.task_id is None]
            if not idle:
                if len(self._workers) >= self.capacity:
                    return
                idle = [self._start_worker()]
            w = idle[0]
            task_id = self._queue.popleft()
            task = self._tasks[task_id]
            if w.loaded != task.token:
                w.conn.send(("load", task.token, self._payloads[task.token]))
                w.loaded = task.token
            task.attempts += 1
            w.task_id = task_id
            w.conn.send(("eval", task_id, task.token, task.archs))

    def _start_worker(self) -> _ProcWorker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_process_worker, args=(child, self.threads), daemon=True)
        proc.start()
        child.close()
        w = _ProcWorker(proc, parent)
        self._workers.append(w)
        return w

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(("stop",))
            except (OSError, BrokenPipeError):
                pass
        for w in self._workers:
            w.process.join(timeout=2.0)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=1.0)
            w.conn.close()
        self._workers.clear()


# -- Ray -------------------------------------------------------------------------------------

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


@EXECUTORS.register("ray")
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


def make_executor(name: str, **options: Any) -> Executor:
    """Build the registered executor ``name``; options that are ``None`` keep their defaults."""
    cls = EXECUTORS.get(name)
    return cls(**{k: v for k, v in options.items() if v is not None})
