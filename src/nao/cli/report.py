"""``nao report`` and ``nao show``: plots of a run, and a diagram of one architecture.

    nao report runs/nb201-nao                      # -> runs/nb201-nao/report/{report.md, *.png}
    nao show "|nor_conv_3x3~0|+|...|" --space nb201 --out cell.png
    nao show NAO --space rnn                        # a published cell by name, where the space knows it
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nao.errors import NaoError
from nao.spaces.resolve import resolve_arch


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="plots and a Markdown summary of a run directory (into DIR/report)")
    p.add_argument("run_dir", metavar="DIR", help="a run directory written by nao search")
    p.set_defaults(func=run_report)
    s = sub.add_parser("show", help="draw one architecture as a PNG")
    s.add_argument("arch", metavar="ARCH", help="the architecture in the space's text form (or a known name)")
    s.add_argument("--space", default="nb201", help="search space (default: nb201)")
    s.add_argument("--out", default=None, help="PNG to write (default: <space>-arch.png)")
    s.set_defaults(func=run_show)


def run_report(args: argparse.Namespace) -> int:
    from nao.viz import write_report

    report = write_report(args.run_dir)
    pngs = sorted(p.name for p in report.parent.glob("*.png"))
    print(f"report: {report} ({', '.join(pngs) or 'no plots'})")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from nao.viz import draw_architecture

    space, arch = resolve_arch(args.arch, args.space, label="ARCH")
    out = Path(args.out or f"{space.name}-arch.png")
    if out.suffix.lower() != ".png":
        raise NaoError(f"--out {out}: only .png is written")
    draw_architecture(space, arch, out, title=f"{space.name}: {args.arch if len(args.arch) <= 40 else 'architecture'}")
    print(f"wrote {out}")
    return 0

