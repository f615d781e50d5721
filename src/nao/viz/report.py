"""``write_report``: plots and ``report.md`` for a run directory."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nao.errors import ConfigError
from nao.results import Result
from nao.viz.cells import draw_architecture
from nao.viz.curves import plot_best_so_far, plot_predicted_vs_true


def write_report(run_dir: str | os.PathLike) -> Path:
    """Plots and ``report.md`` for a run directory, into ``run_dir/report``; returns report.md's path."""
    from nao.journal import read_journal
    from nao.rundir import RunDir
    from nao.spaces import get_space

    rundir = RunDir.open(run_dir, flag="nao report")
    config = rundir.config()
    space_name = config.get("space") or "nb201"
    space = get_space(space_name)
    results = read_journal(rundir.journal_path, space)
    out = rundir.path / "report"
    out.mkdir(exist_ok=True)
    strategy = config.get("strategy", "?")
    lines = [f"# Search report: `{rundir.path}`", ""]
    lines += _summary_table(config, results, rundir)
    if not results:
        lines += ["", "The journal is empty: nothing was evaluated yet."]
    else:
        plot_best_so_far(results, out / "best_so_far.png", title=f"{space_name} · {strategy} · seed {config.get('seed')}")
        lines += ["", "## Progress", "", "![best-so-far validation accuracy](best_so_far.png)", ""]
        best = _best(results)
        if best is not None:
            lines += ["## Best architecture", "", "```", space.format(best.arch), "```", ""]
            try:
                draw_architecture(space, best.arch, out / "best_cell.png", title=f"best of {len(results)}: "
                                  f"val_acc {100 * best.metrics['val_acc']:.2f}%")
                lines += ["![best cell](best_cell.png)", ""]
            except ConfigError as e:
                lines += [f"(no diagram: {e})", ""]
    lines += _predictions_section(rundir, out, results)
    report = out / "report.md"
    report.write_text("\n".join(lines).rstrip() + "\n")
    return report


def _best(results: Sequence[Result]) -> Result | None:
    best = None
    for r in results:
        if r.ok and "val_acc" in r.metrics and (best is None or r.metrics["val_acc"] > best.metrics["val_acc"]):
            best = r
    return best


def _summary_table(config: dict[str, Any], results: Sequence[Result], rundir) -> list[str]:
    best = _best(results)
    failed = sum(not r.ok for r in results)
    manifest = rundir.read_json("manifest.json", default={}) or {}
    rows = [
        ("space", config.get("space")),
        ("strategy", config.get("strategy")),
        ("evaluator", config.get("evaluator")),
        ("seed", config.get("seed")),
        ("budget", config.get("budget")),
        ("evaluated", f"{len(results)} ({failed} failed)"),
        ("evaluation cost", _duration(sum(r.cost_s for r in results))),
        ("version / git", f"{manifest.get('nao_version', '?')} / {(manifest.get('git_revision') or '?')[:10]}"),
    ]
    if best is not None:
        rows.append(("best val_acc", f"{100 * best.metrics['val_acc']:.2f}% (query {results.index(best) + 1})"))
        if "test_acc" in best.metrics:
            rows.append(("its test_acc", f"{100 * best.metrics['test_acc']:.2f}%"))
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows if v is not None]]


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _predictions_section(rundir, out: Path, results: Sequence[Result]) -> list[str]:
    """Predicted vs true from ``predictions.json`` (the nao strategy's record), else from ``info["predicted"]``."""
    data = rundir.read_json("predictions.json") or {}
    preds = data.get("predictions") or [
        {"predicted": float(r.info["predicted"]), "true": r.metrics["val_acc"]}
        for r in results if r.ok and "predicted" in r.info and "val_acc" in r.metrics
    ]
    lines = ["## Controller predictions", ""]
    if not preds:
        return [*lines, "This run recorded no predictions (only the `nao` strategy makes them; "
                "`predictions.json` is written at the end of a search)."]
    finite = [p for p in preds if math.isfinite(p["predicted"]) and math.isfinite(p["true"])]
    has_rounds = all("round" in p for p in finite)
    plot_predicted_vs_true([p["predicted"] for p in finite], [p["true"] for p in finite], out / "predicted_vs_true.png",
                           title="controller prediction at proposal vs evaluated accuracy",
                           rounds=[p["round"] for p in finite] if has_rounds else None)
    return [*lines, f"{len(finite)} architectures proposed by the controller. Predictions are in the normalised "
            "scale of the round that made them, so compare ranks, not values.", "",
            "![predicted vs true](predicted_vs_true.png)"]
