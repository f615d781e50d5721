"""Executors: sequential, local processes and Ray give one result per architecture, keep going
when an evaluator raises, retry a dead worker a bounded number of times, and fail fast on a bad
Ray address."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from nao.cli import main
from nao.errors import ConfigError, NotInTableError
from nao.evaluators.base import Evaluator
from nao.executors import ProcessExecutor, SequentialExecutor, make_executor, probe_ray_address
from nao.registry import EXECUTORS
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

SPACE = get_space("nb201")


class ToyEvaluator(Evaluator):
    """val_acc grows with the op ids; optional sleep to make evaluations overlap."""

    def __init__(self, sleep_s: float = 0.0, batch_size: int = 1) -> None:
        self.space = SPACE
        self.sleep_s = sleep_s
        self.batch_size = batch_size

    def evaluate(self, archs):
        start = time.time()
        time.sleep(self.sleep_s)
        span = {"t_start": start, "t_end": time.time()}  # wall-clock span, to check overlap
        return [Result(a, "ok", {"val_acc": sum(a.tokens) / 24, "pid": float(os.getpid()), **span}) for a in archs]


class RaisingEvaluator(ToyEvaluator):
    """Raises an ordinary exception for architectures whose first edge is 'none'."""

    def evaluate(self, archs):
        if any(a.tokens[0] == 0 for a in archs):
            raise ValueError(f"cannot train {archs[0].tokens}")
        return super().evaluate(archs)


class DieOnceEvaluator(ToyEvaluator):
    """The worker process exits abruptly the first time it sees each architecture (marker files)."""

    def __init__(self, marker_dir: str, die_always: bool = False) -> None:
        super().__init__()
        self.marker_dir = marker_dir
        self.die_always = die_always

    def evaluate(self, archs):
        marker = Path(self.marker_dir) / ("-".join(map(str, archs[0].tokens)) + ".seen")
        if self.die_always or not marker.exists():
            marker.touch()
            os._exit(3)
        return super().evaluate(archs)


class UserErrorEvaluator(ToyEvaluator):
    def evaluate(self, archs):
        raise NotInTableError(f"architecture {archs[0].tokens} is not in benchmark t.csv.gz")


def archs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        a = SPACE.sample(rng)
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def drain(executor) -> list[Result]:
    got = []
    while executor.pending:
        got.extend(executor.poll())
    return got


def test_registry_has_all_executors():
    assert {"sequential", "processes", "ray"} <= set(EXECUTORS.names())
    with pytest.raises(ConfigError, match="unknown executor 'nope'"):
        make_executor("nope")


def test_sequential_turns_exceptions_into_failed_results_and_search_goes_on():
    study = Study(SPACE, make_strategy("random", SPACE, seed=1), RaisingEvaluator(), SequentialExecutor())
    best = study.run(40)
    failed = [r for r in study.history if not r.ok]
    assert study.n_evaluated == 40 and failed  # failures count toward the budget
    assert all(r.error.startswith("ValueError: cannot train") and "traceback" in r.info for r in failed)
    assert best is not None and best.ok


def test_user_errors_propagate():
    with pytest.raises(NotInTableError, match="t.csv.gz"):
        Study(SPACE, make_strategy("random", SPACE, seed=0), UserErrorEvaluator()).run(3)


def test_processes_evaluate_in_parallel_and_retry_dead_workers(tmp_path):
    ex = ProcessExecutor(workers=2, max_retries=1)
    try:
        # one dies once (retried, succeeds), one always dies (failed after 2 attempts), one raises
        batch = archs(6)
        ex.submit(DieOnceEvaluator(str(tmp_path)), batch[:2])
        got = drain(ex)
        assert sorted(r.arch.tokens for r in got) == sorted(a.tokens for a in batch[:2])
        assert all(r.ok and r.info["attempts"] == 2 for r in got)
        ex.submit(DieOnceEvaluator(str(tmp_path), die_always=True), batch[2:3])
        (dead,) = drain(ex)
        assert not dead.ok and "worker process died (exit code 3)" in dead.error and "2 attempt(s)" in dead.error
        ex.submit(RaisingEvaluator(), [SPACE.make([0] * 6)])
        (raised,) = drain(ex)
        assert not raised.ok and raised.error.startswith("ValueError")
        # a study through the pool: every architecture once, two workers busy at the same time
        study = Study(SPACE, make_strategy("random", SPACE, seed=0), ToyEvaluator(sleep_s=0.05), ex)
        study.run(12)
        assert study.n_evaluated == 12 and len({SPACE.key(r.arch) for r in study.history}) == 12
        assert len({r.metrics["pid"] for r in study.history}) == 2
    finally:
        ex.close()


def test_processes_bad_flags():
    with pytest.raises(ConfigError, match="--workers must be at least 1"):
        ProcessExecutor(workers=0)


def test_probe_unreachable_address_fails_fast():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=f"--address 127.0.0.1:{port}: no Ray cluster reachable"):
        probe_ray_address(f"127.0.0.1:{port}", timeout_s=2.0)
    assert time.perf_counter() - start < 15.0  # no hang: the 2 s probe timeout holds, with slack for a loaded machine


def test_cli_unreachable_ray_address_exits_2(nb201_path, tmp_path, capsys):
    # The executor would reuse a cluster this process already runs instead of connecting: this
    # test must run before the module's ray_cluster fixture starts one (file order does that).
    assert not ray.is_initialized(), "a Ray cluster is already running in this test process"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    rc = main(["search", "--benchmark", str(nb201_path), "--strategy", "random", "--budget", "5",
               "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "r"), "-q"])
    assert rc == 2 and time.perf_counter() - start < 10
    assert f"--address 127.0.0.1:{port}: no Ray cluster reachable" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not ray.is_initialized()


def test_cli_executor_flags_are_checked(nb201_path, tmp_path, capsys):
    base = ["search", "--benchmark", str(nb201_path), "--strategy", "random", "--budget", "5", "-q"]
    assert main([*base, "--address", "auto", "--out", str(tmp_path / "a")]) == 2
    assert "--address applies to --executor ray, not sequential" in capsys.readouterr().err
    assert main(["search", "--executor", "processes", "-q"]) == 2  # the supernet default
    assert "in this process only" in capsys.readouterr().err
    assert main([*base, "--executor", "processes", "--workers", "2", "--out", str(tmp_path / "p")]) == 0
    assert len((tmp_path / "p" / "journal.jsonl").read_text().splitlines()) == 5


# -- Ray: one local cluster for the whole module ----------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    # Classes of this test module are unknown to Ray's workers: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_study_runs_in_parallel(ray_cluster):
    ex = make_executor("ray", max_retries=1)
    assert ex.capacity == 2
    study = Study(SPACE, make_strategy("random", SPACE, seed=0), ToyEvaluator(sleep_s=0.3), ex)
    study.run(8)
    ex.close()
    assert study.n_evaluated == 8 and all(r.ok for r in study.history)
    assert len({SPACE.key(r.arch) for r in study.history}) == 8
    # Two at a time, not one after another: some evaluations' wall-clock spans overlap.
    # (Checked by overlap rather than total time, which a loaded machine would make flaky.)
    spans = [(r.metrics["t_start"], r.metrics["t_end"]) for r in study.history]
    assert any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(spans) for b0, b1 in spans[i + 1:])


def test_ray_dead_worker_is_retried_then_failed(ray_cluster, tmp_path):
    ex = make_executor("ray", max_retries=1)
    batch = archs(3, seed=5)
    ex.submit(DieOnceEvaluator(str(tmp_path)), batch[:2])
    ex.submit(RaisingEvaluator(), [SPACE.make([0] * 6)])
    got = drain(ex)
    assert len(got) == 3
    by_tokens = {r.arch.tokens: r for r in got}
    assert all(by_tokens[a.tokens].ok and by_tokens[a.tokens].info["attempts"] == 2 for a in batch[:2])
    assert by_tokens[(0,) * 6].error.startswith("ValueError")
    ex.submit(DieOnceEvaluator(str(tmp_path), die_always=True), batch[2:])
    (dead,) = drain(ex)
    assert not dead.ok and "Ray worker died" in dead.error and "2 attempt(s)" in dead.error
    ex.close()


def test_ray_user_error_propagates(ray_cluster):
    ex = make_executor("ray")
    ex.submit(UserErrorEvaluator(), archs(1))
    with pytest.raises(NotInTableError, match="t.csv.gz"):
        ex.poll()
    ex.close()
