"""Read a run directory of any kind, old or new, into one :class:`RunData` for the report.

The run-directory contract (``config.json`` with ``kind`` and ``objective``, ``result.json``
with ``best``/``rerank``/``final``/``winner``, ``supernet.json`` with ``history``, training
``metrics.json`` files) is read leniently: whatever is absent is ``None`` or empty, and older
layouts are mapped onto the current one (NAO-WS ``rerank.json`` and ``rerank_val_acc``; PTB
``rounds`` and ``best_arch``), so a report of an old run never crashes on a missing key.

>>> infer_kind({"supernet": {}, "task": "ptb"}), infer_kind({"benchmark": "t.csv"})
('supernet-rnn', 'tabular')
>>> objective_for({"kind": "supernet-rnn"}, []).mode
'min'
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nao.results import Objective, Result, best

KINDS = ("tabular", "supernet-cnn", "supernet-rnn", "trained-cnn", "trained-rnn")

# Where the search's scores came from, when result.json does not say.
_SCORES_FROM = {"tabular": "table", "supernet-cnn": "supernet", "supernet-rnn": "supernet",
                "trained-cnn": "training", "trained-rnn": "training"}

# Fallbacks for runs whose config names no objective and whose default metric is absent.
_FALLBACK_OBJECTIVES = (("val_acc", "max"), ("val_score", "max"), ("val_ppl", "min"), ("val_loss", "min"))


@dataclass
class Training:
    """One training run's record (``final/metrics.json`` or ``candidates/<id>/metrics.json``)."""

    name: str
    arch: str | None
    status: str | None
    history: list[dict[str, Any]]
    error: str | None = None


@dataclass
class RunData:
    """Everything the report shows about a run, normalised across kinds and format versions.

    Attributes:
        results: the journal, in evaluation order.
        rounds: per result, its search round (``predictions.json`` or ``info["round"]``), or ``None``.
        best: the search's best result by ``objective``.
        rerank: rows ``{arch, search_score, status, metrics, seconds, error}``.
        final: ``{arch, status, metrics, epochs, seconds, error}`` of the final training, if any.
        final_training: its per-epoch history (``final/metrics.json``).
        supernet_history: per-round (or, in old image runs, per-epoch) supernet rows.
        candidates: trained candidates' records (trained kinds).
        predictions: ``predictions.json`` entries (``predicted``, ``true``, optional ``round``).
    """

    path: Path
    config: dict[str, Any]
    manifest: dict[str, Any]
    kind: str
    objective: Objective
    scores_from: str
    space_name: str
    results: list[Result]
    rounds: list[int | None]
    best: Result | None
    result: dict[str, Any]
    rerank: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    final_training: Training | None = None
    supernet_history: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[Training] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def winner(self) -> str | None:
        """The run's answer: result.json's winner, else the final or search best architecture."""
        if self.result.get("winner"):
            return str(self.result["winner"])
        if self.final and self.final.get("arch"):
            return str(self.final["arch"])
        best_entry = self.result.get("best") or {}
        return best_entry.get("arch") or None


def infer_kind(config: dict[str, Any]) -> str:
    """``config["kind"]``, or for older runs: supernet runs on PTB, other supernet runs, tabular."""
    kind = config.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    if "supernet" in config:
        return "supernet-rnn" if config.get("task") == "ptb" else "supernet-cnn"
    return "tabular"


def objective_for(config: dict[str, Any], results: Sequence[Result]) -> Objective:
    """The objective the run used: ``config["objective"]``, else what older runs of its kind used.

    Older runs named none: image runs maximised ``val_acc`` (``val_score`` with a loss-scored
    supernet), PTB runs ranked by validation loss, i.e. lowest ``val_ppl``. If that metric is in
    no result at all, the first of ``val_acc``/``val_score``/``val_ppl``/``val_loss`` present is used.
    """
    spec = config.get("objective")
    if isinstance(spec, (str, dict)) and spec:
        return Objective.of(spec)
    kind = infer_kind(config)
    if kind.endswith("-rnn"):
        default = Objective("val_ppl", "min")
    elif (config.get("supernet_train") or {}).get("score") == "loss":
        default = Objective("val_score", "max")
    else:
        default = Objective("val_acc", "max")
    ok = [r for r in results if r.ok]
    if not ok or any(default.metric in r.metrics for r in ok):
        return default
    for metric, mode in _FALLBACK_OBJECTIVES:
        if any(metric in r.metrics for r in ok):
            return Objective(metric, mode)
    return default


def load_run(run_dir: str | os.PathLike) -> RunData:
    """Read ``run_dir`` (ConfigError if it is not a run directory or a JSON file is corrupt)."""
    from nao.journal import read_journal
    from nao.rundir import RunDir
    from nao.spaces import get_space

    rundir = RunDir.open(run_dir, flag="nao report")
    config = rundir.config()
    kind = infer_kind(config)
    space_name = str(config.get("space") or "nb201")
    results = read_journal(rundir.journal_path, get_space(space_name))
    objective = objective_for(config, results)
    result = _as_dict(rundir.read_json("result.json"))
    predictions = _predictions(_as_dict(rundir.read_json("predictions.json")), results, objective.metric)
    data = RunData(
        path=rundir.path, config=config, manifest=_as_dict(rundir.read_json("manifest.json")), kind=kind,
        objective=objective, scores_from=str(result.get("scores_from") or _SCORES_FROM.get(kind, "table")),
        space_name=space_name, results=results, rounds=_rounds(results, predictions, space_name),
        best=best(results, objective), result=result, predictions=predictions,
    )
    data.rerank = _rerank_rows(result, rundir.read_json("rerank.json"))
    data.final = _final(result)
    data.final_training = _training(rundir.path / "final" / "metrics.json", "final")
    data.supernet_history = _supernet_history(_as_dict(rundir.read_json("supernet.json")))
    data.candidates = [t for t in (_training(p / "metrics.json", p.name) for p in _subdirs(rundir.path / "candidates"))
                       if t is not None]
    return data


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else {}


def _predictions(data: dict[str, Any], results: Sequence[Result], metric: str) -> list[dict[str, Any]]:
    """``predictions.json`` entries, else the predictions strategies left in ``Result.info`` (against ``metric``)."""
    preds = data.get("predictions")
    if isinstance(preds, list) and preds:
        return [p for p in preds if isinstance(p, dict) and _finite(p.get("predicted")) and _finite(p.get("true"))]
    return [{"predicted": float(r.info["predicted"]), "true": r.metrics[metric]}
            for r in results if r.ok and _finite(r.info.get("predicted")) and _finite(r.metrics.get(metric))]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _rounds(results: Sequence[Result], predictions: Iterable[dict[str, Any]], space_name: str) -> list[int | None]:
    """Each result's search round: ``info["round"]`` (supernet evaluators), else ``predictions.json``."""
    by_arch = {p["arch"]: int(p["round"]) for p in predictions if "arch" in p and _finite(p.get("round"))}
    if by_arch:
        from nao.spaces import get_space

        space = get_space(space_name)
    out: list[int | None] = []
    for r in results:
        rnd = r.info.get("round")
        if _finite(rnd):
            out.append(int(rnd))
        elif by_arch:
            out.append(by_arch.get(space.format(r.arch)))
        else:
            out.append(None)
    return out


def _rerank_rows(result: dict[str, Any], old_rerank: Any) -> list[dict[str, Any]]:
    """result.json's ``rerank``, else an older NAO-WS run's ``rerank.json``; rows normalised.

    Rows written from ``rerank.json`` name the search score ``supernet_val_acc``; the contract
    calls it ``search_score``. Both are read.
    """
    rows = result.get("rerank")
    if not isinstance(rows, list):
        rows = old_rerank if isinstance(old_rerank, list) else []
    return [{"arch": r.get("arch"), "search_score": r.get("search_score", r.get("supernet_val_acc")),
             "status": r.get("status"), "metrics": _as_dict(r.get("metrics")), "seconds": r.get("seconds"),
             "error": r.get("error")}
            for r in rows if isinstance(r, dict)]


def _final(result: dict[str, Any]) -> dict[str, Any] | None:
    """result.json's ``final``; an older NAO-WS run kept the test metrics at the top of it."""
    final = result.get("final")
    if not isinstance(final, dict) or not final:
        return None
    if "metrics" in final:
        return {"arch": final.get("arch") or result.get("winner"), **final, "metrics": _as_dict(final["metrics"])}
    plain = {"status", "seconds", "error", "epochs", "arch"}
    metrics = {k: v for k, v in final.items() if k not in plain and _finite(v)}
    return {"arch": result.get("winner"), "status": final.get("status"), "metrics": metrics,
            "epochs": final.get("epochs"), "seconds": final.get("seconds"), "error": final.get("error")}


def _supernet_history(data: dict[str, Any]) -> list[dict[str, Any]]:
    # Image runs store per-round pool summaries apart from their per-epoch history; older PTB runs said "rounds".
    rows = data.get("pool_rounds") or data.get("history", data.get("rounds"))
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _training(path: Path, name: str) -> Training | None:
    """A training's ``metrics.json`` (nao.train.classifier's format), or ``None`` if absent or unreadable."""
    import json

    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    meta = _as_dict(data.get("meta"))
    history = [r for r in data.get("history") or [] if isinstance(r, dict)]
    return Training(name, meta.get("arch"), data.get("status"), history, data.get("error"))


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
