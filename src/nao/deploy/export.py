"""Export a trained classifier as TorchScript or ONNX, checked against PyTorch, with a JSON beside it.

- ``torchscript``: ``torch.jit.trace`` of the eval-mode network (logits only; no auxiliary head, no
  drop path), loadable with ``torch.jit.load`` without nao.
- ``onnx``: ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter; the
  TorchScript-based one is deprecated), opset :data:`ONNX_OPSET`, input ``images``, output ``logits``.
  Needs the ``[export]`` extra (onnx, onnxruntime, onnxscript).

Both take ``images``: ``(batch, 3, S, S)`` float32, RGB scaled to 0..1 and standardised with the
channel ``mean``/``std`` of the JSON, and return ``(batch, K)`` logits; the batch dimension is dynamic.
The JSON (``FILE.json``, e.g. ``model.onnx.json``) holds what inference needs: input size, mean/std, class
names, the architecture string, the accuracy measured at the end of training, and the check below.

Every export checks itself: the exported file is loaded back (``torch.jit.load``; ONNX Runtime for
ONNX) and run on a seeded batch of random images and on a single image; the largest absolute
difference from PyTorch's logits must stay within ``ATOL + RTOL * max|logits|``, else
:class:`ExportCheckError`. Files are written under temporary names and renamed only once the
check passed, so a failed export leaves nothing behind.

>>> from nao.deploy.export import format_of
>>> format_of(None, "model.onnx"), format_of(None, "model.pt"), format_of("torchscript", "m.bin")
('onnx', 'torchscript', 'torchscript')
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nao.errors import ConfigError, NaoError

#: Export formats and the file suffixes that imply them.
FORMATS = {"torchscript": (".pt", ".ts", ".torchscript"), "onnx": (".onnx",)}
#: ONNX opset written (ONNX Runtime >= 1.14 runs it).
ONNX_OPSET = 18
#: Tolerance of the self-check: max |exported - PyTorch| <= ATOL + RTOL * max |PyTorch logits|.
ATOL, RTOL = 1e-4, 1e-4
#: The pip command that installs what ONNX export needs.
EXPORT_EXTRA = 'pip install "nao[export]"  (from a checkout: pip install -e ".[export]")'


class ExportCheckError(NaoError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance."""


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and how well the export matched PyTorch."""

    path: Path
    info_path: Path
    format: str
    size_bytes: int
    max_abs_diff: float
    tolerance: float
    exporter: str


def format_of(fmt: str | None, out: str | os.PathLike) -> str:
    """The export format: ``fmt`` if given, else implied by the suffix of ``out`` (ConfigError otherwise)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(out).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise ConfigError(f"--out {out}: cannot tell the format from the suffix {suffix!r}; pass --format "
                      f"{'|'.join(FORMATS)}")


def require_onnx() -> None:
    """ConfigError naming the pip command unless onnx, onnxruntime and onnxscript import."""
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(f"ONNX export needs {', '.join(missing)} (the [export] extra): {EXPORT_EXTRA}")


def check_out(out: str | os.PathLike) -> Path:
    """``out`` as a Path, refusing a directory (a file name is needed; the JSON goes beside it)."""
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; give a file name such as {path / 'model.onnx'}")
    existing = next((q for q in path.parents if q.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"--out {path}: {existing} is a file, not a folder")
    return path


def info_path(path: Path) -> Path:
    """The JSON written beside an exported file (``model.onnx`` -> ``model.onnx.json``)."""
    return path.with_name(path.name + ".json")


def example_batch(image_size: int, batch: int, seed: int, mean: Any, std: Any) -> torch.Tensor:
    """A seeded batch of random images, normalised as real inputs are."""
    from nao.data.augment import normalize

    g = torch.Generator().manual_seed(seed)
    return normalize(torch.randint(0, 256, (batch, 3, image_size, image_size), dtype=torch.uint8, generator=g),
                     tuple(mean), tuple(std))


def export_model(trained: Any, fmt: str, out: str | os.PathLike, check_batch: int = 8, seed: int = 0) -> ExportReport:
    """Write ``trained`` (a :class:`~nao.deploy.model.TrainedModel`) to ``out`` as ``fmt``, checked (module docstring)."""
    fmt = format_of(fmt, out)
    path = check_out(out)
    if fmt == "onnx":
        require_onnx()
    model = trained.model.eval()
    x = example_batch(trained.image_size, max(check_batch, 2), seed, trained.record["mean"], trained.record["std"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _temporary(path) as tmp_model, _temporary(info_path(path)) as tmp_info:
            return _export_checked(model, trained, fmt, path, x, tmp_model, tmp_info)
    except OSError as e:  # an unwritable folder, a full disk: one line, and the temporaries are gone
        raise ConfigError(f"--out {path}: cannot write ({e.strerror or e})") from None


def export_language_model(ckpt: Path, run_config: dict | None, out: str | os.PathLike,
                          data_dir: str | None = None) -> ExportReport:
    """A recurrent-cell language model as a one-step TorchScript module, checked (:mod:`nao.deploy.lm`)."""
    from nao.deploy.lm import export_lm, open_lm

    path = check_out(out)
    step, info = open_lm(ckpt, run_config, data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _temporary(path) as tmp_model, _temporary(info_path(path)) as tmp_info:
            diff, tol = export_lm(step, info, tmp_model, tmp_info, path, info_path(path))
    except OSError as e:
        raise ConfigError(f"--out {path}: cannot write ({e.strerror or e})") from None
    exporter = f"torch.jit.trace, one time step (torch {torch.__version__})"
    return ExportReport(path, info_path(path), "torchscript", path.stat().st_size, diff, tol, exporter)


def _export_checked(model: torch.nn.Module, trained: Any, fmt: str, path: Path, x: torch.Tensor, tmp_model: Path,
                    tmp_info: Path) -> ExportReport:
    """Export to ``tmp_model``, check it, write ``tmp_info``, and rename both into place."""
    if fmt == "torchscript":
        exporter = f"torch.jit.trace (torch {torch.__version__})"
        _trace(model, x[:2], tmp_model)
        run = _torchscript_runner(tmp_model)
    else:
        exporter = f"torch.onnx.export, dynamo=True, opset {ONNX_OPSET} (torch {torch.__version__})"
        _onnx(model, x[:2], tmp_model)
        run = _onnx_runner(tmp_model)
    diff, tol = _check(model, run, x, fmt)
    info = {
        "format": fmt,
        "file": path.name,
        "exporter": exporter,
        **({"opset": ONNX_OPSET} if fmt == "onnx" else {}),
        "input": {"name": "images", "shape": ["batch", 3, trained.image_size, trained.image_size], "dtype": "float32",
                  "preprocess": _preprocess_text(trained.image_size, trained.record.get("resize", "bilinear"))},
        "output": {"name": "logits", "shape": ["batch", len(trained.class_names)],
                   "meaning": "unnormalised class scores; softmax gives probabilities"},
        **trained.info(),
        "check": {"images": len(x), "max_abs_diff": diff, "tolerance": tol,
                  "rule": f"max |exported - PyTorch| <= {ATOL} + {RTOL} * max |PyTorch logits|",
                  "runtime": _runtime_name(fmt)},
    }
    tmp_info.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp_model, path)
    os.replace(tmp_info, info_path(path))
    return ExportReport(path, info_path(path), fmt, path.stat().st_size, diff, tol, exporter)


def _check(model: torch.nn.Module, run: Any, x: torch.Tensor, fmt: str) -> tuple[float, float]:
    """(max |difference|, tolerance) of ``run`` against ``model`` on ``x`` and on one image; ExportCheckError if off."""
    diff, tol = 0.0, 0.0
    for batch in (x, x[:1]):  # another batch size than the traced one, and one image: the batch dimension is dynamic
        with torch.no_grad():
            ref = model(batch)
        got = run(batch)
        if got.shape != ref.shape:
            raise ExportCheckError(f"exported {fmt} model gives outputs of shape {tuple(got.shape)} for a batch "
                                   f"of {len(batch)}, PyTorch {tuple(ref.shape)}; nothing written")
        diff = max(diff, float((got - ref).abs().max()))
        tol = max(tol, ATOL + RTOL * float(ref.abs().max()))
    if not diff <= tol:  # also catches NaN
        raise ExportCheckError(f"exported {fmt} model differs from PyTorch by {diff:.3g} > tolerance {tol:.3g} "
                               f"on {len(x)} images; nothing written")
    return diff, tol


@contextlib.contextmanager
def _temporary(final: Path) -> Iterator[Path]:
    """A fresh name beside ``final`` (same suffix), removed unless it was renamed onto ``final``."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _trace(model: torch.nn.Module, x: torch.Tensor, out: Path) -> None:
    # torch 2.13 marks TorchScript deprecated (DeprecationWarning on every call); it still works and is
    # still what C++ (libtorch) and older deployments load, so the warning is not passed on.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, x, check_trace=False)
        torch.jit.save(traced, str(out))


def _torchscript_runner(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded(x)

    return run


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter: its progress prints, warnings, and the optimizer's log lines."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # restored below: only while the exporter runs
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _onnx(model: torch.nn.Module, x: torch.Tensor, out: Path) -> None:
    import onnx

    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        program = torch.onnx.export(model, (x,), None, dynamo=True, opset_version=ONNX_OPSET, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes={"x": {0: batch}}, verbose=False)
    proto = program.model_proto
    # The exporter annotates every node with its Python stack trace (this machine's paths): half the
    # file's size and nothing inference needs.
    for node in proto.graph.node:
        del node.metadata_props[:]
    onnx.save(proto, str(out))


def _onnx_runner(path: Path):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])

    return run


def _preprocess_text(size: int, resize: str) -> str:
    how = "block averaging where the side is a multiple, else bilinear" if resize == "area" else "bilinear"
    return (f"RGB (grey repeated, alpha dropped), resized to {size}x{size} ({how}), scaled to 0..1, "
            f"minus mean, divided by std, per channel")


def _runtime_name(fmt: str) -> str:
    if fmt == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)"
    return f"torch.jit.load (torch {torch.__version__})"
