"""Plots and cell diagrams (matplotlib, Agg backend only; graphs are laid out here, no graphviz).

- :func:`plot_best_so_far`: best-so-far validation accuracy against queries, plus the test
  accuracy of the best-so-far architecture when the results carry it (reports may read test
  metrics; search never does).
- :func:`plot_predicted_vs_true`: the controller's predictions against evaluated accuracy.
- :func:`draw_architecture`: a cell diagram for ``nb201`` (4-node DAG, op-labelled edges), the
  conv cell spaces ``nao``/``nao-ws``/``darts`` (normal and reduction cell, one box per branch
  op) and the recurrent spaces (``rnn*``).
- :func:`write_report`: all of the above for a run directory, plus ``report.md``.

>>> import tempfile, os
>>> from nao.spaces import get_space
>>> space = get_space("nb201")
>>> arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
>>> path = draw_architecture(space, arch, os.path.join(tempfile.mkdtemp(), "cell.png"))
>>> path.stat().st_size > 1000
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from nao.errors import ConfigError  # noqa: E402
from nao.results import Result  # noqa: E402
from nao.spaces.base import Architecture, SearchSpace  # noqa: E402

_DPI = 130
_INPUT_COLOR = "#cfe2f3"
_NODE_COLOR = "#fff2cc"
_OUTPUT_COLOR = "#d9ead3"
_EDGE_COLOR = "#555555"


def _op_colors(ops: Sequence[str]) -> dict[str, Any]:
    """A stable pastel colour per op name (by its index in the space's op list)."""
    cmap = plt.get_cmap("Pastel1" if len(ops) <= 9 else "Set3")
    return {op: cmap(i % cmap.N) for i, op in enumerate(ops)}


# -- curves ----------------------------------------------------------------------------------


def best_so_far(results: Sequence[Result], objective: str = "val_acc", report: str = "test_acc"):
    """Per query: the best ``objective`` so far and the ``report`` metric of that best result.

    Returns ``(best, reported)`` arrays of length ``len(results)`` (NaN before the first ok
    result; ``reported`` is ``None`` when no result has ``report``).
    """
    best = np.full(len(results), np.nan)
    reported = np.full(len(results), np.nan)
    top: Result | None = None
    for i, r in enumerate(results):
        if r.ok and objective in r.metrics and (top is None or r.metrics[objective] > top.metrics[objective]):
            top = r
        if top is not None:
            best[i] = top.metrics[objective]
            reported[i] = top.metrics.get(report, np.nan)
    has_report = any(report in r.metrics for r in results)
    return best, (reported if has_report else None)


def plot_best_so_far(results: Sequence[Result], path: str | os.PathLike, title: str = "",
                     objective: str = "val_acc", report: str = "test_acc") -> Path:
    """Best-so-far ``objective`` (percent) against unique queries; failed evaluations marked."""
    path = Path(path)
    x = np.arange(1, len(results) + 1)
    best, reported = best_so_far(results, objective, report)
    values = np.array([r.metrics.get(objective, np.nan) if r.ok else np.nan for r in results]) * 100
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.scatter(x, values, s=10, color="#9e9e9e", alpha=0.7, label=f"each evaluation ({objective})", zorder=2)
    ax.step(x, best * 100, where="post", color="#1f77b4", lw=2, label=f"best so far ({objective})", zorder=3)
    if reported is not None:
        ax.step(x, reported * 100, where="post", color="#ff7f0e", lw=1.8, ls="--",
                label=f"{report} of the best-so-far architecture", zorder=3)
    curves = np.concatenate([best, reported if reported is not None else []]) * 100
    finite = curves[np.isfinite(curves)]
    lo, hi = _zoom(finite, values[np.isfinite(values)])
    failed = [i + 1 for i, r in enumerate(results) if not r.ok]
    if failed:
        ax.scatter(failed, [lo + 0.02 * (hi - lo)] * len(failed), marker="x", color="#d62728", s=25,
                   label=f"failed ({len(failed)})", zorder=4, clip_on=False)
    hidden = int(np.sum(values < lo))
    if hidden:
        ax.text(0.01, 0.01, f"{hidden} evaluations below {lo:.1f}% not shown", transform=ax.transAxes,
                fontsize=8, color="#757575", va="bottom")
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, max(len(results), 1) + 1)
    ax.set_xlabel("unique architectures evaluated")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "search progress")
    ax.grid(alpha=0.3)
    # Below the plot: inside, it would hide points or failure marks whatever corner it took.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    return _save(fig, path)


def _zoom(curves: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """A y-range that shows the curves well: scattered bad evaluations may fall below it."""
    if curves.size == 0 and values.size == 0:
        return 0.0, 100.0
    pool = np.concatenate([curves, values])
    hi = float(np.max(pool))
    lo = float(min(np.min(curves) if curves.size else np.inf, np.percentile(values, 25) if values.size else np.inf))
    pad = max(0.5, 0.08 * (hi - lo))
    return lo - pad, hi + pad


def plot_predicted_vs_true(predicted: Sequence[float], true: Sequence[float], path: str | os.PathLike,
                           title: str = "", xlabel: str = "predicted (normalised score)",
                           rounds: Sequence[int] | None = None) -> Path:
    """Scatter of predictions against evaluated accuracy, coloured by round (or proposal order).

    With ``rounds``, the headline is the mean Kendall tau *within* rounds: each round's
    predictions share one normalised scale, while scales of different rounds do not compare,
    so a tau pooled over rounds mixes scales (it is shown too, for reference).
    """
    from scipy.stats import kendalltau, spearmanr

    path = Path(path)
    p, t = np.asarray(predicted, float), np.asarray(true, float) * 100
    fig, ax = plt.subplots(figsize=(6, 5))
    colour = np.asarray(rounds) if rounds is not None else np.arange(len(p))
    sc = ax.scatter(p, t, c=colour, cmap="viridis", s=18, alpha=0.85)
    fig.colorbar(sc, ax=ax, label="round" if rounds is not None else "proposal order")
    stats = f"n = {len(p)}"
    if rounds is not None:
        taus = within_round_taus(p, t, rounds)
        if taus:
            stats = f"Kendall τ within rounds: mean {np.mean(taus):.3f} over {len(taus)} rounds; n = {len(p)}"
        if len(p) >= 3:
            stats += f"\n(pooled over rounds τ = {kendalltau(p, t)[0]:.3f}: scales differ per round)"
    elif len(p) >= 3:
        tau, spear = kendalltau(p, t)[0], spearmanr(p, t)[0]
        stats = f"Kendall τ = {tau:.3f}, Spearman ρ = {spear:.3f}, n = {len(p)}"
    ax.set_title((title + "\n" if title else "") + stats, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("evaluated validation accuracy (%)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def within_round_taus(predicted: Sequence[float], true: Sequence[float], rounds: Sequence[int]) -> list[float]:
    """Kendall tau of predictions against truth inside each round with 3+ distinct values of both.

    >>> within_round_taus([1, 2, 3, 3, 2, 1], [1, 2, 3, 1, 2, 3], [0, 0, 0, 1, 1, 1])
    [1.0, -1.0]
    """
    from scipy.stats import kendalltau

    p, t, r = np.asarray(predicted, float), np.asarray(true, float), np.asarray(rounds)
    out = []
    for k in np.unique(r):
        sel = r == k
        if sel.sum() >= 3 and np.ptp(p[sel]) > 0 and np.ptp(t[sel]) > 0:
            out.append(float(kendalltau(p[sel], t[sel])[0]))
    return out


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


# -- cell diagrams ---------------------------------------------------------------------------


def draw_architecture(space: SearchSpace, arch: Architecture, path: str | os.PathLike, title: str = "") -> Path:
    """Draw ``arch`` into a PNG; ConfigError for a space without a diagram."""
    from nao.spaces.cells import ConvCellSpace

    space.check(arch)
    if space.name == "nb201":
        fig = _nb201_figure(space, arch, title)
    elif isinstance(space, ConvCellSpace):
        fig = _conv_figure(space, arch, title)
    elif hasattr(space, "decode") and space.name.startswith("rnn"):
        fig = _rnn_figure(space, arch, title)
    else:
        raise ConfigError(f"no diagram for space {space.name!r}; spaces with diagrams: nb201, nao, nao-ws, darts, rnn*")
    return _save(fig, Path(path))


def _nb201_figure(space: SearchSpace, arch: Architecture, title: str):
    """NB201: nodes 0..3 on a line; edge i->j straight when adjacent, else an arc labelled with its op."""
    from nao.spaces.nb201 import NB201_EDGES

    gap = 2.6  # inches between nodes
    xs = {n: n * gap for n in range(4)}
    colors = _op_colors(space.ops)
    fig, ax = plt.subplots(figsize=(3 * gap + 1.6, 4.6))
    # Arc curvature per edge: adjacent edges are straight, (0,2) above, (1,3) below, (0,3) high above.
    rad = {(1, 0): 0.0, (2, 1): 0.0, (3, 2): 0.0, (2, 0): -0.42, (3, 1): 0.42, (3, 0): -0.5}
    for (dst, src), token in zip(NB201_EDGES, arch.tokens):
        op = space.token_name(token)
        r = rad[(dst, src)]
        none = op == "none"
        arrow = FancyArrowPatch((xs[src], 0), (xs[dst], 0), connectionstyle=f"arc3,rad={r}", arrowstyle="-|>",
                                mutation_scale=14, lw=1.0 if none else 1.6, ls=(0, (3, 3)) if none else "-",
                                color="#b0b0b0" if none else _EDGE_COLOR, shrinkA=17, shrinkB=17, zorder=1)
        ax.add_patch(arrow)
        # The quadratic Bezier of arc3 peaks at half the control point's offset from the chord.
        span = xs[dst] - xs[src]
        ly = -r * span / 2 if r else 0.0
        ax.text((xs[src] + xs[dst]) / 2, ly, op, ha="center", va="center", fontsize=9,
                color="#8a8a8a" if none else "black", style="italic" if none else "normal",
                bbox=dict(boxstyle="round,pad=0.25", fc="white" if none else colors[op],
                          ec="#cccccc" if none else "#888888", lw=0.8), zorder=3)
    for n, x in xs.items():
        color = _INPUT_COLOR if n == 0 else _OUTPUT_COLOR if n == 3 else _NODE_COLOR
        ax.add_patch(plt.Circle((x, 0), 0.3, fc=color, ec="#333333", lw=1.2, zorder=2))
        ax.text(x, 0, str(n), ha="center", va="center", fontsize=12, weight="bold", zorder=4)
    ax.text(xs[0], -0.55, "input", ha="center", va="top", fontsize=8, color="#555555")
    ax.text(xs[3], -0.55, "output", ha="center", va="top", fontsize=8, color="#555555")
    ax.set_xlim(-0.8, xs[3] + 0.8)
    ax.set_ylim(-1.45, 2.3)  # the (0->3) arc peaks at 1.95, the (1->3) one dips to -1.1
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or "NAS-Bench-201 cell", fontsize=11, pad=2)
    ax.text(xs[3] / 2, -1.45, space.format(arch), ha="center", va="bottom", fontsize=7, family="monospace",
            color="#444444")
    return fig


# A small layered-graph layout (Sugiyama style): longest-path layers, dummy nodes for edges
# that skip layers (so they route around boxes), a few barycentre sweeps against crossings.


@dataclass
class _Graph:
    labels: dict[str, str] = field(default_factory=dict)
    colors: dict[str, Any] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)  # "box" or "circle"
    edges: list[tuple[str, str]] = field(default_factory=list)

    def node(self, key: str, label: str, color: Any, shape: str = "box") -> None:
        self.labels[key], self.colors[key], self.shapes[key] = label, color, shape

    def edge(self, src: str, dst: str) -> None:
        self.edges.append((src, dst))


def _layout(g: _Graph) -> tuple[dict[str, tuple[float, float]], list[list[str]]]:
    """Positions (layer, slot) of nodes and dummies, and each edge's chain of points."""
    preds: dict[str, list[str]] = {k: [] for k in g.labels}
    for s, d in g.edges:
        preds[d].append(s)
    layer: dict[str, int] = {}

    def depth(k: str) -> int:
        if k not in layer:
            layer[k] = 1 + max((depth(p) for p in preds[k]), default=-1)
        return layer[k]

    for k in g.labels:
        depth(k)
    chains: list[list[str]] = []
    for n, (s, d) in enumerate(g.edges):
        chain = [s]
        for L in range(layer[s] + 1, layer[d]):
            dummy = f"__dummy{n}_{L}"
            layer[dummy] = L
            chain.append(dummy)
        chains.append([*chain, d])
    layers: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for k in layer:  # insertion order: real nodes in creation order, then dummies
        layers[layer[k]].append(k)
    up: dict[str, list[str]] = {k: [] for k in layer}
    down: dict[str, list[str]] = {k: [] for k in layer}
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            down[a].append(b)
            up[b].append(a)
    for _ in range(4):
        for rank in range(1, len(layers)):
            _sort_by_barycentre(layers[rank], layers[rank - 1], up)
        for rank in range(len(layers) - 2, -1, -1):
            _sort_by_barycentre(layers[rank], layers[rank + 1], down)
    pos = {k: (float(rank), i - (len(nodes) - 1) / 2) for rank, nodes in enumerate(layers) for i, k in enumerate(nodes)}
    return pos, chains


def _sort_by_barycentre(nodes: list[str], fixed: list[str], nbrs: dict[str, list[str]]) -> None:
    index = {k: i for i, k in enumerate(fixed)}
    current = {k: i for i, k in enumerate(nodes)}

    def key(k: str) -> float:
        links = [index[n] for n in nbrs[k] if n in index]
        return sum(links) / len(links) if links else current[k]

    nodes.sort(key=lambda k: (key(k), current[k]))


def _draw_graph(ax, g: _Graph, title: str, dx: float = 1.75, dy: float = 0.62) -> tuple[float, float]:
    """Draw ``g`` left to right into ``ax`` (units: inches); returns the drawing's (width, height)."""
    pos, chains = _layout(g)
    xy = {k: (x * dx, -y * dy) for k, (x, y) in pos.items()}
    half_w = {k: (0.23 if g.shapes[k] == "circle" else max(0.42, 0.036 * len(g.labels[k]) + 0.12)) for k in g.labels}
    for chain in chains:
        pts = [xy[k] for k in chain]
        start = (pts[0][0] + half_w[chain[0]], pts[0][1])
        end = (pts[-1][0] - half_w[chain[-1]], pts[-1][1])
        ax.add_patch(FancyArrowPatch(path=_smooth([start, *pts[1:-1], end]), arrowstyle="-|>", mutation_scale=11,
                                     lw=1.1, color=_EDGE_COLOR, zorder=1))
    for k, label in g.labels.items():
        x, y = xy[k]
        if g.shapes[k] == "circle":
            ax.add_patch(plt.Circle((x, y), half_w[k], fc=g.colors[k], ec="#333333", lw=1.1, zorder=2))
            ax.text(x, y, label, ha="center", va="center", fontsize=9, weight="bold", zorder=3)
        else:
            w = 2 * half_w[k]
            ax.add_patch(FancyBboxPatch((x - w / 2, y - 0.17), w, 0.34, boxstyle="round,pad=0.02,rounding_size=0.08",
                                        fc=g.colors[k], ec="#555555", lw=0.9, zorder=2))
            ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=3)
    xs = [x for x, _ in xy.values()]
    ys = [y for _, y in xy.values()]
    x0, x1 = min(xs) - 0.75, max(xs) + 0.75
    y0, y1 = min(ys) - 0.45, max(ys) + 0.45
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10, loc="left")
    return x1 - x0, y1 - y0


def _smooth(points: Sequence[tuple[float, float]]) -> MplPath:
    """A curve through ``points``, horizontal at each one (cubic Beziers): edges read left to right."""
    verts = [points[0]]
    codes = [MplPath.MOVETO]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        mid = (x1 - x0) / 2
        verts += [(x0 + mid, y0), (x1 - mid, y1), (x1, y1)]
        codes += [MplPath.CURVE4] * 3
    return MplPath(verts, codes)


def _conv_graph(space, nodes, colors) -> _Graph:
    """One conv cell: inputs c_{k-2}, c_{k-1}; per node an op box per branch feeding a sum node; concat output."""
    g = _Graph()
    g.node("0", "$c_{k-2}$", _INPUT_COLOR)
    g.node("1", "$c_{k-1}$", _INPUT_COLOR)
    for i, n in enumerate(nodes):
        nid = str(i + 2)
        g.node(nid, nid, _NODE_COLOR, "circle")
        for branch, (inp, op) in enumerate(((n.input_a, n.op_a), (n.input_b, n.op_b))):
            key = f"{nid}{'ab'[branch]}"
            g.node(key, op, colors[op])
            g.edge(str(inp), key)
            g.edge(key, nid)
    g.node("out", "$c_{k}$", _OUTPUT_COLOR)
    for c in space.concat(nodes):
        g.edge(str(c), "out")
    return g


def _conv_figure(space, arch: Architecture, title: str):
    colors = _op_colors(space.ops)
    graphs = [_conv_graph(space, cell, colors) for cell in space.cells(arch)]
    sizes = [_measure(g) for g in graphs]
    width = max(w for w, _ in sizes)
    heights = [h for _, h in sizes]
    fig, axes = plt.subplots(2, 1, figsize=(width, sum(heights) + 0.9), gridspec_kw={"height_ratios": heights})
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.45 / (sum(heights) + 0.9), hspace=0.12)
    for i, (ax, g, cell) in enumerate(zip(axes, graphs, space.cells(arch))):
        name = ("normal cell", "reduction cell")[i]
        heading = f"{name}  (output: concat of {', '.join(map(str, space.concat(cell)))})"
        _draw_graph(ax, g, f"{title or space.name + ' architecture'}\n{heading}" if i == 0 else heading)
    return fig


def _measure(g: _Graph, dx: float = 1.75, dy: float = 0.62) -> tuple[float, float]:
    pos, _ = _layout(g)
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    return (max(xs) - min(xs)) * dx + 1.5, (max(ys) - min(ys)) * dy + 0.9


def _rnn_figure(space, arch: Architecture, title: str):
    from nao.spaces.rnn import ACTIVATIONS

    geno = space.decode(arch)
    colors = _op_colors(ACTIVATIONS)
    g = _Graph()
    g.node("x", "$x_t$", _INPUT_COLOR)
    g.node("h", "$h_{t-1}$", _INPUT_COLOR)
    g.node("0", "0", _NODE_COLOR, "circle")
    g.edge("x", "0")
    g.edge("h", "0")
    averaged = set(geno.concat)
    for i, (act, inp) in enumerate(geno.nodes, start=1):
        g.node(f"a{i}", act, colors[act])
        # Averaged nodes are coloured instead of wired to an output box: with the "mean" rule every
        # node feeds h_t, and a dozen long edges into one box would hide the cell's structure.
        g.node(str(i), str(i), _OUTPUT_COLOR if i in averaged else _NODE_COLOR, "circle")
        g.edge(str(inp), f"a{i}")
        g.edge(f"a{i}", str(i))
    w, h = _measure(g)
    fig, ax = plt.subplots(figsize=(w, h + 0.6))
    shown = ", ".join(map(str, geno.concat))
    _draw_graph(ax, g, (title + "\n" if title else "") + f"{space.name} recurrent cell: $h_t$ = mean of the green nodes ({shown})")
    return fig


# -- run reports -----------------------------------------------------------------------------


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
