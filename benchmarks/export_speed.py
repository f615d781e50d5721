"""Export of a run's winner: file sizes, agreement with PyTorch, and CPU inference speed.

    nao search --out RUN                                       # the default search (digits), a few minutes
    python benchmarks/export_speed.py RUN --out DIR            # 1 thread, batch 1 and 64
    python benchmarks/export_speed.py RUN --out DIR --threads 2 --seconds 3
    python benchmarks/export_speed.py RUN --out DIR --digits-folder IMAGES --no-timing   # test split as PNGs

Exports the winner of ``RUN`` (any run directory / checkpoint ``nao export`` takes) as TorchScript and
as ONNX through :func:`nao.deploy.export.export_model` (each export checks itself), then, in the same
process and on the same images (the run's own test split, preprocessed once):

- max |difference| of the logits of each exported file from eager PyTorch over every test image;
- images per second of eager PyTorch, the TorchScript file and ONNX Runtime (CPUExecutionProvider), at
  batch 1 and batch 64, with the same number of threads (``--threads``: ``torch.set_num_threads`` and
  ONNX Runtime's ``intra_op_num_threads``). Each figure is the median of ``--repeats`` timed windows of
  about ``--seconds`` each, after a warm-up, the backends taking turns window by window so that a
  neighbour's load on a shared machine hits all of them alike.

``--digits-folder DIR`` writes the run's test split as an image folder (one sub-folder per class of
8x8 PNGs; lossless, so the pixels are the ones the run tested on) for ``nao predict RUN --data-dir DIR``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def run_test_split(run: Path):
    """The run's own test split (uint8 images, labels) and its class names, rebuilt from ``config.json``."""
    import json

    from nao.runs import make_kind
    from nao.runs.images import load_splits

    cfg = make_kind(json.loads((run / "config.json").read_text())).config
    data = load_splits(cfg)
    return data.test, [str(c) for c in data.info.get("classes") or range(data.num_classes)]


def write_folder(images: torch.Tensor, labels: torch.Tensor, classes: list[str], root: Path) -> None:
    """One sub-folder per class of lossless PNGs (``00042.png``: the image's index in the split)."""
    from PIL import Image

    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
    for i, (img, y) in enumerate(zip(images, labels)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / classes[int(y)] / f"{i:05d}.png")


def images_per_second(fn: Callable[[torch.Tensor], object], batches: list[torch.Tensor], seconds: float) -> float:
    """Images per second of ``fn`` cycling through ``batches`` for about ``seconds``."""
    n, start = 0, time.perf_counter()
    while True:
        for b in batches:
            fn(b)
            n += len(b)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run directory (or checkpoint) whose model is exported")
    ap.add_argument("--out", type=Path, required=True, help="folder for model.pt, model.onnx and their JSON")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of one timed window")
    ap.add_argument("--repeats", type=int, default=5, help="timed windows per backend and batch size")
    ap.add_argument("--digits-folder", type=Path, default=None, help="also write the test split as an image folder")
    ap.add_argument("--no-timing", action="store_true", help="export and compare only; no speed measurements")
    args = ap.parse_args()

    import onnxruntime as ort

    import nao
    from nao.deploy.export import export_model
    from nao.deploy.model import open_trained

    torch.set_num_threads(args.threads)
    trained = open_trained(args.run)
    reports = {fmt: export_model(trained, fmt, args.out / f"model.{ext}")
               for fmt, ext in (("torchscript", "pt"), ("onnx", "onnx"))}
    loaded = nao.load(args.run)
    test, classes = run_test_split(args.run)
    x = loaded.preprocess(test.images)  # (N,3,S,S) float32, normalised as in training
    if args.digits_folder is not None:
        write_folder(test.images, test.labels, classes, args.digits_folder)
        print(f"wrote {len(test)} test images to {args.digits_folder}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        script = torch.jit.load(str(reports["torchscript"].path)).eval()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(reports["onnx"].path), opts, providers=["CPUExecutionProvider"])

    def eager(b: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded.model(b)

    def torchscript(b: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return script(b)

    def onnxruntime(b: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["logits"], {"images": b.numpy()})[0])

    backends = {"PyTorch eager": eager, "TorchScript": torchscript, "ONNX Runtime": onnxruntime}
    ref = eager(x)
    acc = float((ref.argmax(1) == test.labels).float().mean())
    print(f"run {args.run}: {len(test)} test images {tuple(x.shape[1:])}, {len(classes)} classes, "
          f"eager accuracy {acc:.4f} (run's checkpoint says {trained.metrics.get('test_acc', float('nan')):.4f})")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s)\n")
    print("| format | file | size (KB) | max abs diff of logits vs eager, all test images | export check |")
    print("|---|---|---|---|---|")
    for fmt, name in (("torchscript", "TorchScript"), ("onnx", "ONNX Runtime")):
        rep = reports[fmt]
        diff = float((backends[name](x) - ref).abs().max())
        print(f"| {fmt} | {rep.path.name} | {rep.size_bytes / 1024:.0f} | {diff:.2e} | "
              f"{rep.max_abs_diff:.2e} <= {rep.tolerance:.1e} |")

    if args.no_timing:
        return
    print("\n| batch | " + " | ".join(f"{k} (img/s)" for k in backends) + " | ONNX Runtime / eager |")
    print("|---" * (len(backends) + 2) + "|")
    for batch in (1, 64):
        n = min(len(x) // batch * batch, 64 * 4)
        batches = list(x[:n].split(batch))
        for fn in backends.values():  # warm-up: first calls allocate and pick kernels
            images_per_second(fn, batches, 0.3)
        rates: dict[str, list[float]] = {k: [] for k in backends}
        for _ in range(args.repeats):  # backends take turns: background load affects all alike
            for k, fn in backends.items():
                rates[k].append(images_per_second(fn, batches, args.seconds))
        med = {k: statistics.median(v) for k, v in rates.items()}
        spread = {k: (min(v), max(v)) for k, v in rates.items()}
        print(f"| {batch} | " + " | ".join(f"{med[k]:,.0f} ({spread[k][0]:,.0f}-{spread[k][1]:,.0f})" for k in backends)
              + f" | {med['ONNX Runtime'] / med['PyTorch eager']:.2f}x |")
    print("\n(median of the timed windows; min-max in brackets)")


if __name__ == "__main__":
    main()
