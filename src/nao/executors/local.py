"""Executors on this machine: ``sequential`` (in this process) and ``processes`` (a worker pool).

>>> from nao.executors.local import SequentialExecutor
>>> SequentialExecutor().pending
0
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.executors.base import (
    Executor,
    _chunks,
    _EvaluatorShipping,
    _in_use,
    _log_failures,
    _Retrier,
    _Task,
    _unwrap,
    _with_attempts,
    batch_size_of,
    evaluate_guarded,
)
from nao.registry import EXECUTORS
from nao.results import Result
from nao.spaces.base import Architecture


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
