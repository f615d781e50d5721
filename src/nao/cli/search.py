"""``nao search``: parse flags into a run config and call :func:`nao.runs.execute`. No search logic here.

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

TASKS = ("tabular", "cnn", "ptb")
#: (task, evaluator) -> run kind.
_KINDS = {("tabular", "tabular"): "tabular", ("cnn", "supernet"): "supernet-cnn", ("cnn", "training"): "trained-cnn",
          ("ptb", "supernet"): "supernet-rnn", ("ptb", "training"): "trained-rnn"}
_TASK_OF_KIND = {kind: task for (task, _), kind in _KINDS.items()}


def add_parser(sub: argparse._SubParsersAction) -> None:
    usage = __doc__.split("\n", 2)[2]  # the examples, without the developer's first line
    p = sub.add_parser("search", help="search for an architecture (default: NAO-WS on the digits dataset)",
                       description="Search for an architecture and write a run directory.\n" + usage,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = p.add_subparsers(dest="task", metavar="{tabular,cnn,ptb}", parser_class=type(p))
    _tabular(tasks.add_parser("tabular", help="search a benchmark table (NAS-Bench-201 format)"))
    _cnn(tasks.add_parser("cnn", help="image cells: NAO-WS supernet (default) or training every candidate"))
    _ptb(tasks.add_parser("ptb", help="recurrent cells on Penn Treebank: supernet (default) or training"))


def _common(p: argparse.ArgumentParser, strategies_help: str) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--space", default=None, help="search space (default: the preset's)")
    g.add_argument("--strategy", default=None, help=strategies_help)
    g.add_argument("--budget", type=int, default=None, help="unique architectures to evaluate (default: the preset's)")
    g.add_argument("--max-cost", type=float, default=None, metavar="X",
                   help="also stop once the evaluations cost X compute, in the kind's unit (result.json's cost_unit: "
                        "gpu_s for a table, image_epochs / token_epochs for trained candidates, s for a supernet)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
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
    p.set_defaults(func=run)


def _executor_flags(p: argparse.ArgumentParser, note: str = "") -> None:
    g = p.add_argument_group("executors" + note)
    g.add_argument("--executor", default=None, choices=["sequential", "processes", "ray"],
                   help="where evaluations run (default: sequential, in this process)")
    g.add_argument("--workers", type=int, default=None, help="--executor processes: worker processes (default: cores)")
    g.add_argument("--address", default=None, help="--executor ray: cluster address, host:port or auto")
    g.add_argument("--cpus-per-eval", type=float, default=None, help="--executor ray: CPUs per evaluation (default 1)")
    g.add_argument("--gpus-per-eval", type=float, default=None, help="--executor ray: GPUs per evaluation (default 0)")
    g.add_argument("--max-retries", type=int, default=None,
                   help="restarts of an evaluation whose worker died, then it is recorded as failed (default: 2)")


def _tabular(p: argparse.ArgumentParser) -> None:
    _common(p, "nao (default), bananas, local, rea, random, optuna-tpe, optuna-gp")
    p.add_argument("--benchmark", default=None, help="benchmark table (.csv.gz); required for a new run")
    p.add_argument("--objective", default=None, help="validation column optimised (default val_acc; e.g. val_acc_12ep)")
    p.add_argument("--constraint", default=None,
                   help="e.g. 'params_m<=0.5': only architectures that satisfy it are proposed (no budget spent on others)")
    _executor_flags(p)


def _device_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evaluator", default=None, choices=["supernet", "training"],
                   help="supernet: weight sharing (NAO-WS, default); training: train every candidate (NAO)")
    p.add_argument("--preset", default=None, help="settings bundle (see the README's tables)")
    p.add_argument("--data-dir", default=None, help="where the data lives (default: $NAO_DATA or ../shared/data)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the preset's)")


def _cnn(p: argparse.ArgumentParser) -> None:
    _common(p, "nao (default), random, rea, local")
    _device_flags(p)
    p.add_argument("--dataset", default=None, choices=["digits", "cifar10", "cifar100", "folder"],
                   help="digits (embedded), cifar10/100 (binary files) or folder (--data-dir: one sub-folder per class)")
    p.add_argument("--subset", type=int, default=None, help="use only this many training images")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this side (default: the preset's)")
    p.add_argument("--supernet-score", default=None, choices=["acc", "loss"],
                   help="--evaluator supernet: rank the pool by validation accuracy or loss (default: the preset's)")
    p.add_argument("--constraint", default=None,
                   help="e.g. 'params_m<=0.05' or 'flops_m<=10', computed from the architecture before it is "
                        "evaluated, on the child network (--evaluator training) or the final network (supernet): "
                        "only architectures that satisfy it are evaluated")
    _executor_flags(p, " (--evaluator training)")


def _ptb(p: argparse.ArgumentParser) -> None:
    _common(p, "nao (default), random, rea, local")
    _device_flags(p)
    g = p.add_argument_group("rnn supernet (--evaluator supernet)")
    g.add_argument("--hidden-size", type=int, default=None, help="supernet embedding = hidden width")
    g.add_argument("--share", choices=["node_input_act", "node_input"], default=None, help="weight blocks per (node, input[, act])")
    g.add_argument("--seed-pool", type=int, default=None, help="architectures in the first round")
    g.add_argument("--new-per-round", type=int, default=None, help="architectures each later round adds")
    g.add_argument("--pool-size", type=int, default=None, help="architectures trained on per round")
    g.add_argument("--steps-per-round", type=int, default=None, help="supernet mini-batches per round")
    g.add_argument("--score-tokens", type=int, default=None, help="validation tokens each architecture is scored on")
    _executor_flags(p, " (--evaluator training)")


# -- argv short forms -----------------------------------------------------------------------------
def normalise_argv(argv: Sequence[str]) -> list[str]:
    """``search`` argv with the task made explicit: ``--benchmark`` -> tabular, ``--task ptb`` -> ptb,
    ``--resume DIR`` -> the run's own task, otherwise cnn (the embedded default)."""
    argv = list(argv)
    if not argv or argv[0] != "search" or (len(argv) > 1 and argv[1] in (*TASKS, "-h", "--help")):
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
    kind = saved.get("kind")
    if kind not in _TASK_OF_KIND:
        raise ConfigError(f"--resume {where}: config.json names no run kind (a run of an older nao, or not a "
                          f"nao search run)")
    return _TASK_OF_KIND[kind]


# -- flags -> config ------------------------------------------------------------------------------
_EXECUTOR_KEYS = ("executor", "workers", "address", "cpus_per_eval", "gpus_per_eval", "max_retries")
_SUPERNET_ONLY = {"supernet_score", "hidden_size", "share", "seed_pool", "new_per_round", "pool_size",
                  "steps_per_round", "score_tokens"}
#: flag -> dotted config key, per kind (flags absent from a kind's table are refused for it).
_FLAG_KEYS: dict[str, dict[str, str]] = {
    "tabular": {"space": "space", "strategy": "strategy", "budget": "budget", "seed": "seed",
                "benchmark": "benchmark", "objective": "objective", "constraint": "constraint"},
    "supernet-cnn": {"space": "space", "strategy": "strategy", "budget": "budget", "seed": "seed",
                     "dataset": "dataset", "data_dir": "data_dir", "device": "device", "threads": "threads",
                     "subset": "train_images", "image_size": "image_size", "supernet_score": "supernet_train.score",
                     "constraint": "constraint"},
    "supernet-rnn": {"space": "space", "strategy": "strategy", "budget": "budget", "seed": "seed",
                     "data_dir": "data_dir", "device": "device", "threads": "threads",
                     "hidden_size": "supernet.lm.model.hidden_size", "share": "supernet.share",
                     "seed_pool": "supernet.seed_pool", "new_per_round": "supernet.new_per_round",
                     "pool_size": "supernet.pool_size", "steps_per_round": "supernet.steps_per_round",
                     "score_tokens": "supernet.score_tokens"},
    "trained-cnn": {"space": "space", "strategy": "strategy", "budget": "budget", "seed": "seed",
                    "dataset": "dataset", "data_dir": "data_dir", "device": "device", "threads": "threads",
                    "subset": "train_images", "image_size": "image_size", "constraint": "constraint"},
    "trained-rnn": {"space": "space", "strategy": "strategy", "budget": "budget", "seed": "seed",
                    "data_dir": "data_dir", "device": "device", "threads": "threads"},
}
_EXECUTOR_KINDS = ("tabular", "trained-cnn", "trained-rnn")
#: Flags every kind takes -> config key.
_RUN_KEYS = {"max_cost": "max_cost"}


def overrides_from_args(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config overrides of the flags given; a flag that does not apply to ``kind`` raises."""
    table = {**_FLAG_KEYS[kind], **_RUN_KEYS}
    known = {*(k for t in _FLAG_KEYS.values() for k in t), *_SUPERNET_ONLY, *_EXECUTOR_KEYS, *_RUN_KEYS}
    given = {k: v for k, v in vars(args).items() if v is not None and k in known}
    out: dict[str, Any] = {}
    for key, value in given.items():
        flag = "--" + key.replace("_", "-")
        if key in _EXECUTOR_KEYS:
            if kind not in _EXECUTOR_KINDS:
                raise ConfigError(f"{flag} {value}: a {kind} search evaluates in this process only (its shared "
                                  f"weights live there); executors apply to tabular and --evaluator training")
            out["executor.name" if key == "executor" else f"executor.{key}"] = value
        elif key not in table:
            raise ConfigError(f"{flag} does not apply to a {kind} search")
        else:
            # Paths are stored resolved, so a run resumes from any directory (and compares equal).
            out[table[key]] = str(Path(value).resolve()) if key == "benchmark" else value
    if "supernet.lm.model.hidden_size" in out:
        out["supernet.lm.model.emb_size"] = out["supernet.lm.model.hidden_size"]  # tied embeddings
    return out


def _preset_name(kind: str, args: argparse.Namespace) -> str:
    if getattr(args, "preset", None):
        return args.preset
    if kind == "supernet-cnn":
        from nao.runs.supernet_cnn import DEFAULT_PRESET

        return DEFAULT_PRESET.get(args.dataset or "digits", "short")
    from nao.presets import preset_names

    return preset_names(kind)[0]


def resolve_config(kind: str, args: argparse.Namespace) -> Any:
    """Preset -> ``--config`` file -> flags -> ``--set``: the run's resolved config dataclass."""
    from nao.presets import load_config_file, parse_set, preset, with_overrides

    name = _preset_name(kind, args)
    cfg = preset(f"{kind}/{name}")
    if args.config:
        cfg = with_overrides(cfg, load_config_file(args.config))
    cfg = with_overrides(cfg, overrides_from_args(kind, args))
    return with_overrides(cfg, parse_set(args.settings))


# -- run -------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from nao.runs import make_kind

    if args.task is None:  # `nao search -h` style calls that named no task
        raise ConfigError("name a task: nao search tabular|cnn|ptb (see nao search --help)")
    if args.resume:
        kind, where = _resume_kind(args)
    else:
        evaluator = "tabular" if args.task == "tabular" else (getattr(args, "evaluator", None) or "supernet")
        name = _KINDS[(args.task, evaluator)]
        _refuse_supernet_flags(name, args)
        kind = make_kind(resolve_config(name, args))
        where = Path(args.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.tensorboard:
        from nao.rundir import check_tensorboard

        check_tensorboard()
    return _execute(kind, where, args)


def _refuse_supernet_flags(kind: str, args: argparse.Namespace) -> None:
    if kind.startswith("trained"):
        for key in _SUPERNET_ONLY:
            if getattr(args, key, None) is not None:
                raise ConfigError(f"--{key.replace('_', '-')} applies to --evaluator supernet, not training")


def _resume_kind(args: argparse.Namespace):
    from nao.presets import load_config_file, parse_set, with_overrides
    from nao.rundir import RunDir
    from nao.runs import kind_class, make_kind
    from nao.runs.common import refuse_changes

    where = args.resume
    rundir = RunDir.open(where)
    if args.out and Path(args.out).resolve() != rundir.path.resolve():
        raise ConfigError(f"--resume {where}: --out {args.out} conflicts; a resumed run continues in its own directory")
    saved = rundir.config()
    kind_name = saved.get("kind")
    _task_of(saved, where)
    if getattr(args, "evaluator", None) and _KINDS.get((args.task, args.evaluator)) != kind_name:
        raise ConfigError(f"--resume {where}: --evaluator {args.evaluator} conflicts with the run's kind {kind_name}")
    if getattr(args, "preset", None) and args.preset != saved.get("preset"):
        raise ConfigError(f"--resume {where}: --preset {args.preset} conflicts with the run's {saved.get('preset')}")
    cls = kind_class(kind_name)
    _refuse_supernet_flags(kind_name, args)
    saved_kind = make_kind(saved)
    cfg = saved_kind.config
    if args.config:
        cfg = with_overrides(cfg, load_config_file(args.config))
    cfg = with_overrides(with_overrides(cfg, overrides_from_args(kind_name, args)), parse_set(args.settings))
    if getattr(args, "executor", None) and args.executor != saved.get("executor", {}).get("name"):
        # Another executor: the old one's options do not apply.
        fresh = {k: getattr(args, k) for k in _EXECUTOR_KEYS[1:] if getattr(args, k, None) is not None}
        cfg = with_overrides(cfg, {"executor": {"name": args.executor, "workers": None, "address": None,
                                                "cpus_per_eval": None, "gpus_per_eval": None, "max_retries": None,
                                                **fresh}})
    resolved = make_kind(cfg)
    refuse_changes(where, {k: v for k, v in saved.items() if k != "kind"}, resolved.config.to_dict(),
                   may_change=(*cls.resumable_changes, "device", "data_dir", "max_cost"))
    return resolved, Path(where)


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
    return None if quiet or kind.name != "tabular" else _Bar(kind.config.budget)


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
