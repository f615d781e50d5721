"""``nao search``: parse flags, resolve the run with one library call (:func:`nao.runs.resolve`) and execute
it. No search logic here; the flags of each task are generated from what its run kinds declare.

    nao search                                        # cnn: NAO-WS on the embedded digits (preset digits)
    nao search tabular --benchmark FILE --strategy nao --budget 100 --out DIR
    nao search cnn --preset cpu                       # NAO-WS on 16x16 CIFAR-10
    nao search cnn --evaluator training --preset smoke   # NAO training every candidate
    nao search ptb [--evaluator training]             # recurrent cells on Penn Treebank
    nao search --resume DIR                           # continue an interrupted run of any kind

Short forms keep working: ``nao search --benchmark F`` is ``tabular``, ``--task ptb`` is ``ptb``.
A flag that does not apply to what runs is an error (exit 2), never silently ignored.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nao.errors import ConfigError
from nao.results import Result


def _tasks() -> dict[str, list[Any]]:
    """Task -> its registered run kinds, the default kind first (tasks in registration order)."""
    from nao.registry import KINDS

    out: dict[str, list[Any]] = {}
    for _, cls in KINDS.items():
        out.setdefault(cls.task, []).append(cls)
    for kinds in out.values():
        kinds.sort(key=lambda k: not k.default_for_task)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    usage = __doc__.split("\n", 2)[2]  # the examples, without the developer's first line
    p = sub.add_parser("search", help="search for an architecture (default: NAO-WS on the digits dataset)",
                       description="Search for an architecture and write a run directory.\n" + usage,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = _tasks()
    sp = p.add_subparsers(dest="task", metavar="{" + ",".join(tasks) + "}", parser_class=type(p))
    for task, kinds in tasks.items():
        _task_parser(sp.add_parser(task, help=kinds[0].help), kinds)


def _task_parser(p: argparse.ArgumentParser, kinds: list[Any]) -> None:
    """``nao search TASK``: the run flags, then every flag the task's kinds declare (generated)."""
    from nao.presets import preset_names

    g = p.add_argument_group("run")
    if len(kinds) > 1:
        g.add_argument("--evaluator", default=None, choices=[k.evaluator for k in kinds],
                       help=" or ".join(f"{k.evaluator} ({k.name}{', default' if i == 0 else ''})"
                                        for i, k in enumerate(kinds)))
    if any(len(preset_names(k.name)) > 1 for k in kinds):
        shown = "; ".join(f"{k.evaluator}: {', '.join(preset_names(k.name))}" for k in kinds)
        g.add_argument("--preset", default=None, help=f"settings bundle ({shown})")
    g.add_argument("--out", default=None, help="run directory (default: runs/search-<time>)")
    g.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run in DIR (its config.json decides every setting a resume may not change)")
    g.add_argument("--config", metavar="FILE", default=None, help="YAML file of settings on top of the preset")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="settings",
                   help="one setting on top of preset and --config, dotted (e.g. supernet_train.lr=0.05); repeatable")
    g.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars to DIR/tensorboard")
    # -q/-v after the task too; SUPPRESS keeps the top-level value unless given here.
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    groups: dict[str, Any] = {}
    seen: set[str] = set()
    for kind in kinds:
        for f in kind.all_flags():
            if f.dest in seen:
                continue
            seen.add(f.dest)
            owners = [k.evaluator for k in kinds if any(o.dest == f.dest for o in k.all_flags())]
            title = f.group if len(owners) == len(kinds) else f"{f.group} (--evaluator {' or '.join(owners)})"
            group = groups.setdefault(title, p.add_argument_group(title))
            group.add_argument(f.name, dest=f.dest, type=f.type, default=None, choices=f.choices, help=f.help,
                               metavar=f.metavar)
    p.set_defaults(func=run, flag_dests=sorted(seen))


# -- argv short forms -----------------------------------------------------------------------------
def normalise_argv(argv: Sequence[str]) -> list[str]:
    """``search`` argv with the task made explicit: ``--benchmark`` -> tabular, ``--task ptb`` -> ptb,
    ``--resume DIR`` -> the run's own task, otherwise cnn (the embedded default)."""
    argv = list(argv)
    if not argv or argv[0] != "search" or (len(argv) > 1 and argv[1] in (*_tasks(), "-h", "--help")):
        return argv
    rest = argv[1:]
    task = None
    if "--task" in rest:
        i = rest.index("--task")
        if i + 1 >= len(rest) or rest[i + 1] not in ("cnn", "ptb"):
            raise ConfigError("--task: choose cnn or ptb")
        task = rest[i + 1]
        del rest[i:i + 2]
    resume = _flag_value(rest, "--resume")
    if resume is not None:
        from nao.rundir import RunDir

        saved_task = _task_of(RunDir.open(resume).config(), resume)
        if task is not None and task != saved_task:
            raise ConfigError(f"--task {task}: the run in {resume} is a {saved_task} search")
        task = saved_task
    if task is None:
        task = "tabular" if _flag_value(rest, "--benchmark") is not None else "cnn"
    return ["search", task, *rest]


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _task_of(saved: dict[str, Any], where: str) -> str:
    from nao.registry import KINDS

    kind = saved.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"--resume {where}: config.json names no run kind (a run of an older nao, or not a "
                          f"nao search run)")
    return KINDS.get(kind).task


# -- run -------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Resolve the run (one library call) and execute it."""
    from nao.runs import resolve

    if args.task is None:  # `nao search -h` style calls that named no task
        raise ConfigError("name a task: nao search tabular|cnn|ptb (see nao search --help)")
    kinds = _tasks()[args.task]
    evaluator = getattr(args, "evaluator", None)
    flags = {dest: getattr(args, dest) for dest in args.flag_dests if getattr(args, dest, None) is not None}
    if args.resume:
        from nao.rundir import RunDir

        saved = RunDir.open(args.resume).config()
        _task_of(saved, args.resume)
        name = _kind_for(kinds, evaluator) if evaluator else saved["kind"]
    else:
        name = _kind_for(kinds, evaluator)
    kind = resolve(name, preset=getattr(args, "preset", None), config_file=args.config, flags=flags,
                   settings=args.settings, resume=args.resume, out=args.out if args.resume else None)
    where = Path(args.resume or args.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.tensorboard:
        from nao.rundir import check_tensorboard

        check_tensorboard()
    return _execute(kind, where, args)


def _kind_for(kinds: list[Any], evaluator: str | None) -> str:
    return next(k.name for k in kinds if evaluator in (None, k.evaluator))


def _execute(kind, where: Path, args: argparse.Namespace) -> int:
    from nao.runs import execute

    quiet = bool(getattr(args, "quiet", False))
    say = (lambda line: None) if quiet else (lambda line: print(line, flush=True))
    bar = _progress_bar(kind, quiet)
    try:
        result = execute(kind, where, resume=bool(args.resume), say=say, quiet=quiet, tensorboard=args.tensorboard,
                         progress=[bar] if bar else [])
    finally:
        if bar:
            bar.close()
    return _print_result(result, where, quiet)


class _Bar:
    """A tqdm bar over unique evaluations (tabular searches: thousands of cheap lookups)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="search", unit="arch", file=sys.stderr, delay=0.5)  # no bar for instant errors

    def __call__(self, result: Result) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _progress_bar(kind, quiet: bool) -> _Bar | None:
    # Table lookups take microseconds: a bar, not a line per evaluation.
    return None if quiet or kind.scores_from != "table" else _Bar(kind.budget())


def _print_result(result: dict[str, Any], where: Path, quiet: bool) -> int:
    best = result.get("best")
    if best is None:
        print(f"no successful evaluation; see {where / 'journal.jsonl'}")
        return 1
    final = result.get("final") or {}
    test = {k: v for k, v in final.items() if k.startswith("test_") and isinstance(v, float)}
    if test:
        shown = " ".join(f"{k} {v:.4f}" for k, v in sorted(test.items()))
        print(f"{shown} winner {result['winner']}" if quiet else f"final: {shown}")
        return 0
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(best["metrics"].items()) if isinstance(v, float))
    print(f"best of {result['n_evaluated']}: {best['arch']}")
    print(f"metrics: {metrics}")
    print(f"run directory: {where}")
    return 0
