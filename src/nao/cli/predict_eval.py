"""``nao predict-eval``: how well the controller ranks and reconstructs unseen architectures.

    nao predict-eval --space nb201 --benchmark nb201_cifar10.csv.gz \\
        --train-sizes 50,100,200 --test-size 1000 --seeds 5 --json out.json

For each training size and seed the controller is fitted on a random training set
(``val_acc`` as target) and scored on a disjoint random test set: Kendall tau and pairwise
accuracy of its predictions, and the decoder's reconstruction accuracy.

>>> from nao.cli.predict_eval import parse_sizes
>>> parse_sizes("50,100")
[50, 100]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from nao.controller.config import ControllerConfig, for_space
from nao.controller.evaluate import METRICS, predict_eval
from nao.controller.fit import DEFAULT_FIT_STEPS
from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark
from nao.spaces import get_space

log = logging.getLogger(__name__)

_LABELS = {
    "kendall_tau": "Kendall tau",
    "pairwise_acc": "pairwise acc",
    "recon_acc": "recon exact",
    "recon_token_acc": "recon token",
}


def parse_sizes(text: str) -> list[int]:
    """Comma-separated positive integers; raises :class:`ConfigError` naming the flag."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--train-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes:
        raise ConfigError(f"--train-sizes must list at least one size, got {text!r}")
    return sizes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict-eval", help="rank correlation and reconstruction of the controller on a table")
    p.add_argument("--space", default="nb201", help="search space (default: nb201)")
    p.add_argument("--benchmark", required=True, help="benchmark table (.csv.gz with arch_str and val_acc)")
    p.add_argument("--train-sizes", default="50,100,200", help="comma-separated training-set sizes")
    p.add_argument("--test-size", type=int, default=1000, help="test architectures per seed (default: 1000)")
    p.add_argument("--seeds", type=int, default=5, help="random splits per size (default: 5)")
    p.add_argument("--ensemble", type=int, default=None,
                   help="controllers averaged per fit (default: the nao strategy's ensemble size)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default: about {DEFAULT_FIT_STEPS} steps, as the nao strategy's first fit)")
    p.add_argument("--semi-supervised", type=int, default=0, metavar="M",
                   help="SemiNAS: after fitting, pseudo-label M random unevaluated architectures and refit (default: 0)")
    p.add_argument("--config", default=None, help="YAML/JSON file of controller options overriding the defaults")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1, fastest for tiny models)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary as JSON here")
    p.set_defaults(func=run)


def _load_config(path: str | None, default: ControllerConfig) -> ControllerConfig:
    if path is None:
        return default
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML/JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of controller options")
    return default.override(data)


def format_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """Rows per training size, ``mean ± sem`` per metric."""
    head = f"{'train':>7} " + " ".join(f"{_LABELS[m]:>17}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for size, row in summary.items():
        cells = " ".join(f"{row[m]['mean']:>9.3f} ± {row[m]['sem']:<5.3f}" for m in METRICS)
        lines.append(f"{size:>7} {cells}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from nao.strategies.nao import DEFAULT_ENSEMBLE

    sizes = parse_sizes(args.train_sizes)
    if args.ensemble is not None and args.ensemble < 1:
        raise ConfigError(f"--ensemble must be >= 1, got {args.ensemble}")
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    if args.semi_supervised < 0:
        raise ConfigError(f"--semi-supervised must be >= 0, got {args.semi_supervised}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    space = get_space(args.space)
    cfg = _load_config(args.config, for_space(space))
    table = TabularBenchmark.load(args.benchmark, space)
    ensemble = args.ensemble or DEFAULT_ENSEMBLE
    epochs = args.epochs or cfg.epochs  # None: about DEFAULT_FIT_STEPS steps, as a first round
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def progress(size: int, seed: int, m: dict[str, float]) -> None:
        log.info("train %d seed %d: tau %.3f recon %.3f", size, seed, m["kendall_tau"], m["recon_acc"])

    summary = predict_eval(table, sizes, args.test_size, args.seeds, cfg, ensemble, epochs, args.device, progress,
                           args.semi_supervised)
    length = f"{epochs} epochs" if epochs else f"~{DEFAULT_FIT_STEPS} steps"
    print(f"{args.space} controller on {table.path.name}: test size {args.test_size}, ensemble {ensemble}, "
          f"{length}, semi-supervised {args.semi_supervised}, mean ± sem over {args.seeds} seeds")
    print(format_table(summary))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0
