"""``nao bench --fidelity``: arms on the two-fidelity NB201 simulator, many seeds, against compute.

For every arm and seed :func:`nao.fidelity.simulate.simulate` runs until the compute budget is
spent; the summary gives, at checkpoints of compute (GPU-hours) and of simulated wall time
(hours), the mean ± s.e. over seeds of the incumbent's 200-epoch test accuracy (the
best-validation architecture of the highest rung reached), and the compute at which that mean
first reaches each target accuracy (None: not within the budget).

With a proxy file (``proxies``, :mod:`nao.proxies.table`) the :data:`~nao.fidelity.simulate.ZC_ARMS` can run
(``nao bench --fidelity --proxies`` adds them to its default arms): each run gets its own proxy source, so every
run pays for the cells it scores, and those seconds are part of its compute (``proxy_gpu_hours`` says how
much). The other arms never see the proxies: they stay the proxy-free baseline.

>>> compute_to_reach(np.array([93.0, 94.0, 94.4]), np.array([1.0, 2.0, 3.0]), 94.3)
3.0
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from nao.bench import map_jobs, summarize
from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark
from nao.fidelity.scheduler import SCHEDULERS, balanced_eta
from nao.fidelity.simulate import (
    ARMS,
    DEFAULT_ZC_ETA,
    EXTRA_ARMS,
    ZC_ARMS,
    TwoFidelityTable,
    make_arm,
    simulate,
    value_at,
)
from nao.spaces import get_space

#: Resolution of the compute and wall-time grids (hours).
GRID_H = 0.25
DEFAULT_TARGETS = (94.30, 94.35)

_WORKER: dict = {}


def _init(path: str, promotion: str, proxies: str | None = None) -> None:
    import torch

    torch.set_num_threads(1)  # seeds run in parallel processes
    space = get_space("nb201")
    _WORKER["table"] = TwoFidelityTable.of(TabularBenchmark.load(path, space), promotion)
    if proxies is not None:  # loaded once per worker; each run builds its own source from it
        from nao.proxies.table import ProxyTable

        _WORKER["proxies"] = ProxyTable.load(proxies, space)
    else:
        _WORKER.pop("proxies", None)


def _job(args: tuple) -> tuple:
    arm, seed, scheduler, eta, workers, max_cost_s, zc_eta = args
    start = time.perf_counter()
    table = _WORKER["table"]
    trace = simulate(make_arm(arm, table, seed, scheduler, eta, proxies=_WORKER.get("proxies"), zc_eta=zc_eta),
                     table, workers, max_cost_s)
    return arm, seed, trace, time.perf_counter() - start


def compute_to_reach(mean: np.ndarray, grid: np.ndarray, target: float) -> float | None:
    """The first grid point where ``mean`` reaches ``target`` (None if it never does)."""
    hit = np.nonzero(np.nan_to_num(mean, nan=-math.inf) >= target - 1e-9)[0]
    return float(grid[hit[0]]) if len(hit) else None


def run_fidelity_bench(
    benchmark: str | os.PathLike,
    arms: Sequence[str] = ARMS,
    scheduler: str = "asha",
    seeds: int = 30,
    sim_workers: int = 4,
    max_gpu_hours: float = 100.0,
    promotion: str = "restart",
    eta: float | None = None,
    targets: Sequence[float] = DEFAULT_TARGETS,
    workers: int | None = None,
    progress: Callable[[str, int, float], None] | None = None,
    proxies: str | os.PathLike | None = None,
    zc_eta: float | None = None,
) -> dict:
    """Run every arm for seeds ``0..seeds-1``; returns the JSON-able summary (see module docstring).

    ``proxies``: a proxy file of the table's cells, needed by the :data:`~nao.fidelity.simulate.ZC_ARMS`;
    ``zc_eta``: their zero-cost rung's reduction factor (None: :data:`~nao.fidelity.simulate.DEFAULT_ZC_ETA`).
    """
    if scheduler not in SCHEDULERS:
        raise ConfigError(f"--fidelity: unknown scheduler {scheduler!r}; choose from {', '.join(SCHEDULERS)}")
    for arm in arms:
        if arm not in ARMS + EXTRA_ARMS + ZC_ARMS:
            raise ConfigError(f"--strategies: unknown arm {arm!r} for --fidelity; choose from "
                              f"{', '.join(ARMS + EXTRA_ARMS + ZC_ARMS)}")
    zc = [a for a in arms if a in ZC_ARMS]
    if zc and proxies is None:
        raise ConfigError(f"--strategies {','.join(zc)}: zero-cost arms need --proxies FILE (the table's cells "
                          "scored by nao proxies)")
    if zc_eta is not None and not zc_eta > 1:
        raise ConfigError(f"--zc-eta must be > 1, got {zc_eta}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if not max_gpu_hours > 0:
        raise ConfigError(f"--max-gpu-hours must be a positive number, got {max_gpu_hours}")
    if sim_workers < 1:
        raise ConfigError(f"--sim-workers must be at least 1, got {sim_workers}")
    two = TwoFidelityTable.of(TabularBenchmark.load(benchmark, get_space("nb201")), promotion)  # errors here, once
    eta = balanced_eta(two.epochs) if eta is None else float(eta)
    if zc:  # one clear error (BenchmarkFileError) for a file that does not cover the table, before any run
        from nao.proxies.table import ProxyTable

        ProxyTable.load(proxies, two.table.space).check_covers(two.table.archs, str(benchmark))
    proxies = str(proxies) if zc else None  # arms without proxies do not load them
    jobs = [(a, s, scheduler, eta, sim_workers, max_gpu_hours * 3600.0, zc_eta) for a in arms for s in range(seeds)]
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    init = (str(benchmark), promotion, proxies)
    traces: dict[str, list] = {a: [None] * seeds for a in arms}
    times = dict.fromkeys(arms, 0.0)
    for arm, seed, trace, elapsed in map_jobs(_job, jobs, workers, _init, init):
        traces[arm][seed] = trace
        times[arm] += elapsed
        if progress:
            progress(arm, seed, elapsed)
    return _summary(traces, times, max_gpu_hours, targets, dict(
        scheduler=scheduler, eta=eta, sim_workers=sim_workers, max_gpu_hours=max_gpu_hours,
        promotion_cost=promotion, seeds=seeds, benchmark=os.path.basename(str(benchmark)),
        proxies=os.path.basename(proxies) if proxies else None,
        zc_eta=(DEFAULT_ZC_ETA if zc_eta is None else float(zc_eta)) if zc else None))


def _summary(traces: dict[str, list], times: dict[str, float], max_h: float, targets: Sequence[float],
             settings: dict) -> dict:
    grid_h = np.arange(GRID_H, max_h + 1e-9, GRID_H)
    max_wall_h = max(t.wall_s[-1] for ts in traces.values() for t in ts if t.wall_s) / 3600
    wall_h = np.arange(GRID_H, max_wall_h + GRID_H, GRID_H)
    points = [p for p in (max_h / 8, max_h / 4, max_h / 2, max_h)]
    out: dict = {"_settings": settings, "_time_s": times, "_targets": list(targets)}
    for arm, ts in traces.items():
        comp = np.array([value_at(t, grid_h * 3600) for t in ts])  # (seeds, grid)
        wall = np.array([value_at(t, wall_h * 3600, "wall_s") for t in ts])
        mean_c, mean_w = np.nanmean(comp, axis=0), np.nanmean(wall, axis=0)
        at = {f"{p:g}": summarize(comp[:, min(len(grid_h) - 1, int(round(p / GRID_H)) - 1)]) for p in points}
        out[arm] = {
            "at_gpu_hours": at,
            "gpu_hours_to": {f"{x:.2f}": compute_to_reach(mean_c, grid_h, x) for x in targets},
            "wall_hours_to": {f"{x:.2f}": compute_to_reach(mean_w, wall_h, x) for x in targets},
            "curve_gpu_hours": {"x": grid_h.tolist(), "mean": mean_c.tolist(),
                                "sem": (np.nanstd(comp, axis=0, ddof=1) / math.sqrt(len(ts))).tolist() if len(ts) > 1 else None},
            "curve_wall_hours": {"x": wall_h.tolist(), "mean": mean_w.tolist()},
            "queries": summarize([t.queries[-1] for t in ts]),
            "wall_hours": summarize([t.wall_s[-1] / 3600 for t in ts]),
            "promotions": summarize([t.promotions for t in ts]),
            "rework_gpu_hours": summarize([t.rework_s / 3600 for t in ts]),
            "idle_share": summarize([1 - t.busy_s / (settings["sim_workers"] * t.wall_s[-1]) if t.wall_s[-1] > 0
                                     else 0.0 for t in ts]),
            "proxy_gpu_hours": summarize([t.proxy_s / 3600 for t in ts]),
        }
    return out


def format_fidelity_table(summary: dict) -> str:
    """Plain text: per arm, test accuracy at compute checkpoints and compute/wall time to each target."""
    arms = [a for a in summary if not a.startswith("_")]
    st = summary["_settings"]
    points = list(summary[arms[0]]["at_gpu_hours"])
    targets = list(summary[arms[0]]["gpu_hours_to"])
    # The peers' arms run their own pruners; our scheduler and eta apply only to the -mf arms.
    ours = [a for a in arms if "-mf" in a]
    scheduler = f"scheduler {st['scheduler']} (eta {st['eta']:g}) for {', '.join(ours)}" if ours else "peers' own schedulers"
    screened = [a for a in ours if a.endswith("-zc")]
    if screened and st.get("zc_eta"):
        scheduler += f", below it a zero-cost rung (eta {st['zc_eta']:g}) for {', '.join(screened)}"
    proxy_col = any(a in ZC_ARMS for a in arms)
    lines = [f"NB201 two-fidelity simulation: {scheduler}, {st['sim_workers']} "
             f"simulated workers, promotion pays {'the full 200 epochs' if st['promotion_cost'] == 'restart' else 'the difference'}, "
             f"{st['seeds']} seeds",
             "test accuracy (%) of the best-validation architecture (highest rung) at GPU-hours of compute",
             f"{'arm':<22}" + "".join(f"{'@' + p + 'h':>16}" for p in points)
             + "".join(f"{'GPUh to ' + t:>16}" for t in targets) + "".join(f"{'wall h to ' + t:>16}" for t in targets)
             + f"{'queries':>10}{'idle':>8}" + (f"{'proxy h':>9}" if proxy_col else "")]
    lines.append("-" * len(lines[-1]))
    for a in arms:
        s = summary[a]
        cells = "".join(f"{s['at_gpu_hours'][p]['mean']:>10.2f} ± {s['at_gpu_hours'][p]['sem']:<4.2f}" for p in points)
        for key in ("gpu_hours_to", "wall_hours_to"):
            cells += "".join(f"{'-' if s[key][t] is None else format(s[key][t], '.2f'):>16}" for t in targets)
        cells += f"{s['queries']['mean']:>10.0f}{100 * s['idle_share']['mean']:>7.1f}%"
        if proxy_col:
            cells += f"{s.get('proxy_gpu_hours', {'mean': 0.0})['mean']:>9.2f}"
        lines.append(f"{a:<22}{cells}")
    return "\n".join(lines)
