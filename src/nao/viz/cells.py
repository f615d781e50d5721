"""Cell diagrams, laid out here (no graphviz).

:func:`draw_architecture` draws ``nb201`` (4-node DAG, op-labelled edges), the conv cell spaces
``nao``/``nao-ws``/``darts`` (normal and reduction cell, one box per branch op) and the
recurrent spaces (``rnn*``).

>>> import tempfile, os
>>> from nao.spaces import get_space
>>> space = get_space("nb201")
>>> arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
>>> path = draw_architecture(space, arch, os.path.join(tempfile.mkdtemp(), "cell.png"))
>>> path.stat().st_size > 1000
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from nao.errors import ConfigError
from nao.spaces.base import Architecture, SearchSpace
from nao.viz.style import EDGE_COLOR as _EDGE_COLOR
from nao.viz.style import INPUT_COLOR as _INPUT_COLOR
from nao.viz.style import NODE_COLOR as _NODE_COLOR
from nao.viz.style import OUTPUT_COLOR as _OUTPUT_COLOR
from nao.viz.style import op_colors as _op_colors
from nao.viz.style import save as _save


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
