"""``nao export`` and ``nao predict``: use the model a search or training found.

    nao export runs/search-x --format onnx --out model.onnx          # + model.onnx.json, checked with ONNX Runtime
    nao export runs/search-x --out model.pt                          # TorchScript (format from the suffix)
    nao predict runs/search-x --data-dir IMAGES --top-k 3 --out preds.csv

``RUN_DIR|CHECKPOINT`` is a ``nao search`` run directory with a final training (image kinds), a
``nao train`` output folder, or a ``checkpoint.pt``. ``nao predict-eval`` (controller evaluation)
is a different command.

>>> from nao.cli import build_parser
>>> args = build_parser().parse_args(["export", "runs/x", "--format", "onnx", "--out", "m.onnx"])
>>> args.command, args.format
('export', 'onnx')
>>> build_parser().parse_args(["predict", "runs/x", "--data-dir", "imgs"]).top_k
1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from pathlib import Path

from nao.errors import ConfigError

SOURCE_HELP = "a nao search run directory (with a final training), a nao train output folder, or a checkpoint.pt"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` and ``predict`` subcommands."""
    examples = __doc__.split("\n\n")[1]  # the three example commands of the module docstring
    e = sub.add_parser("export", help="the trained winner as TorchScript or ONNX (checked), with a JSON beside it",
                       epilog="examples:\n" + examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help=SOURCE_HELP)
    e.add_argument("--format", choices=["torchscript", "onnx"], default=None,
                   help="torchscript (torch.jit.trace) or onnx (torch.onnx dynamo exporter, opset 18; needs "
                        "pip install \"nao[export]\"); default: from the --out suffix (.pt, .onnx)")
    e.add_argument("--out", required=True, metavar="FILE", help="file to write; FILE.json is written beside it")
    e.add_argument("--check-batch", type=int, default=8, metavar="N",
                   help="random images the export is checked on against PyTorch (default: 8)")
    e.add_argument("--data-dir", default=None, metavar="DIR",
                   help="language models only: the corpus whose vocabulary goes into the JSON "
                        "(default: the run's, else $NAO_DATA/ptb)")
    e.set_defaults(func=run_export)

    p = sub.add_parser("predict", help="predictions for every image of a folder (accuracy with class sub-folders)",
                       epilog="examples:\n" + examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help=SOURCE_HELP)
    p.add_argument("--data-dir", required=True, metavar="IMAGES",
                   help="PNG/JPEG images: a flat folder, or one sub-folder per class (then accuracy and a "
                        "confusion matrix too); any size and channel count, resized to the model's input")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="classes listed per image (default: 1)")
    p.add_argument("--out", default=None, metavar="FILE.csv",
                   help="write the predictions as CSV (default: one line per image on stdout)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per forward pass (default: 256)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.set_defaults(func=run_predict)


def run_export(args: argparse.Namespace) -> int:
    """Export, check, and say what was written; a failed check is one line and exit 1."""
    from nao.deploy.export import ExportCheckError, check_out, format_of

    # Cheap checks first: flags and the output path, before the checkpoint is read.
    fmt = format_of(args.format, args.out)
    check_out(args.out)
    if args.check_batch < 1:
        raise ConfigError(f"--check-batch must be at least 1, got {args.check_batch}")
    try:
        return _export(args, fmt)
    except ExportCheckError as e:
        print(f"nao export: check failed: {e}", file=sys.stderr)
        return 1


def _export(args: argparse.Namespace, fmt: str) -> int:
    from nao.deploy.export import export_language_model, export_model, require_onnx
    from nao.deploy.lm import is_language_model
    from nao.deploy.model import find_checkpoint, open_trained
    from nao.train.checkpoint import load_checkpoint

    ckpt, run_config = find_checkpoint(args.source)
    if is_language_model(load_checkpoint(ckpt), run_config):
        if fmt != "torchscript":
            raise ConfigError(f"{ckpt}: a language model; it exports as --format torchscript (one step per call), "
                              f"{fmt} is not supported for it")
        report = export_language_model(ckpt, run_config, args.out, args.data_dir)
        print(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, {report.exporter}) and {report.info_path}")
        print(f"check: max |difference| from PyTorch {report.max_abs_diff:.2e} over 3 steps at batch 3 and 1 "
              f"(tolerance {report.tolerance:.1e})")
        return 0
    if fmt == "onnx":
        require_onnx()
    trained = open_trained(args.source)
    for note in trained.notes:
        print(f"note: {note}", file=sys.stderr)
    report = export_model(trained, fmt, args.out, check_batch=args.check_batch)
    print(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, {report.exporter}) and {report.info_path}")
    print(f"check: max |difference| from PyTorch {report.max_abs_diff:.2e} on {max(args.check_batch, 2)} + 1 images "
          f"(tolerance {report.tolerance:.1e}); {len(trained.class_names)} classes, "
          f"{trained.image_size}x{trained.image_size} inputs, accuracy at the end of training: "
          + (", ".join(f"{k} {v:.4f}" for k, v in trained.metrics.items()) or "not recorded"))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Predict every image of ``--data-dir``: CSV to ``--out`` (else stdout), then accuracy / confusion matrix."""
    from nao.deploy.export import check_out
    from nao.deploy.inference import load
    from nao.deploy.predict import predict_folder
    from nao.train.classifier import make_runtime

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as {out / 'preds.csv'}")
    if out is not None:
        check_out(out)  # e.g. a parent that is a file
    runtime = make_runtime(args.device)
    model = load(args.source, device=runtime.device)
    for note in model.meta.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    preds = predict_folder(model, args.data_dir, batch_size=args.batch_size)
    text = preds.csv_text(args.top_k)
    if out is None:
        sys.stdout.write(text)
    else:
        _write_atomically(out, text)
    # Without --out the CSV owns stdout (nao predict ... > preds.csv), so the summary goes to stderr.
    print(preds.summary() + (f"\nwrote {out}" if out is not None else ""), file=sys.stdout if out else sys.stderr)
    return 0


def _write_atomically(out: Path, text: str) -> None:
    """``text`` into ``out`` via a temporary file and a rename; ConfigError naming ``out`` if it cannot be written."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
