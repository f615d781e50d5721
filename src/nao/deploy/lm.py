"""TorchScript export of a trained recurrent-cell language model (PTB / WikiText-2), one time step per call.

The exported module is ``step(tokens, hidden) -> (logits, hidden)``: ``tokens`` ``(batch,)`` int64 word ids,
``hidden`` ``(batch, H)`` float32 (zeros to start), ``logits`` ``(batch, V)``. Feeding a sequence one word at
a time gives exactly what the trained model computes over it (the search's cells are recurrent: a traced
multi-step graph would be fixed to the traced length, so one step is what is exported). The JSON beside it
holds the vocabulary (word of each id, ``<eos>`` ends a line), the hidden size, the architecture, and the
validation / test perplexity of the weights exported (``best.pt``: the best validation checkpoint, the one
the reported test perplexity was measured with). ONNX export, ``nao.load`` and ``nao predict`` of
language models are not supported.

>>> LMStep.__name__
'LMStep'
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nao.errors import ConfigError, DataError
from nao.train.checkpoint import load_checkpoint


class LMStep(nn.Module):
    """One time step of a language model: ``(tokens (B,), hidden (B, H)) -> (logits (B, V), hidden (B, H))``."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, hidden, _ = self.lm(tokens.unsqueeze(0), hidden)  # (B,) -> (1,B) -> (1,B,V)
        return logits.squeeze(0), hidden


def is_language_model(state: dict[str, Any], run_config: dict[str, Any] | None) -> bool:
    """Whether a checkpoint holds a language model (``nao train --task ptb``, a ``trained-rnn`` run's winner)."""
    kind = (run_config or {}).get("kind")
    return (state.get("meta") or {}).get("task") == "ptb" or kind in ("trained-rnn", "supernet-rnn") \
        or ("config" in state and "train_config" not in state)


def open_lm(ckpt: Path, run_config: dict[str, Any] | None, data_dir: str | None) -> tuple[LMStep, dict[str, Any]]:
    """(one-step module in eval mode, JSON-ready info) of the language model saved in ``ckpt``'s folder."""
    from nao.data.corpus import load_corpus
    from nao.data.paths import data_root
    from nao.nn.rnn import build_model
    from nao.spaces import get_space
    from nao.train.lm import LMConfig

    best = ckpt.parent / "best.pt"
    state = load_checkpoint(best if best.is_file() else ckpt)
    meta = state.get("meta") or {}
    cfg = LMConfig.from_dict(state["config"])
    arch = str(meta.get("arch", ""))
    space_name = meta.get("space") or (run_config or {}).get("space")
    if arch.lower() == "lstm" or not space_name:
        raise ConfigError(f"{ckpt}: an LSTM baseline language model; only searched recurrent cells are exported")
    space = get_space(space_name)
    vocab_size = int(state["model"]["encoder.weight"].shape[0])
    model = build_model(cfg.model, vocab_size, genotype=space.decode(space.parse(arch)))
    model.load_state_dict(state["model"])
    root = data_dir or (run_config or {}).get("data_dir") or os.path.join(data_root(), "ptb")
    corpus = load_corpus(root)
    if len(corpus.vocab) != vocab_size:
        raise DataError(f"{root}: a vocabulary of {len(corpus.vocab)} words, the model has {vocab_size}; "
                        f"pass the corpus it was trained on with --data-dir")
    info = {"task": "language model", "arch": arch, "space": space.name, "hidden_size": cfg.model.hidden_size,
            "vocab": list(corpus.vocab.words), "weights": (best if best.is_file() else ckpt).name,
            "perplexity": _perplexities(ckpt), "corpus": str(root)}
    return LMStep(model).eval(), info


def _perplexities(ckpt: Path) -> dict[str, float]:
    """val_ppl / test_ppl reported at the end of training (``nao train``'s metrics.json, a run's result.json)."""
    for path, key in ((ckpt.parent / "metrics.json", None), (ckpt.parent.parent / "result.json", "final")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        record = record.get(key, {}) if key else record
        found = {k: float(record[k]) for k in ("val_ppl", "test_ppl") if isinstance(record.get(k), (int, float))}
        if found:
            return found
    return {}


def export_lm(step: LMStep, info: dict[str, Any], tmp_model: Path, tmp_info: Path, path: Path,
              info_path: Path) -> tuple[float, float]:
    """Trace ``step`` into ``tmp_model``, check three steps at batch 3 and 1, write the JSON, rename both."""
    from nao.deploy.export import ATOL, RTOL, ExportCheckError

    g = torch.Generator().manual_seed(0)
    vocab, hidden = len(info["vocab"]), int(info["hidden_size"])
    tokens = torch.randint(0, vocab, (3, 3), generator=g)  # (steps, batch)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        # The cell's sizes (hidden width) become constants, as they should; batch size does not (checked below).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(step, (tokens[0, :2], torch.zeros(2, hidden)), check_trace=False)
        torch.jit.save(traced, str(tmp_model))
        loaded = torch.jit.load(str(tmp_model))
    diff, tol = 0.0, 0.0
    for batch in (3, 1):
        h_ref = h_got = torch.zeros(batch, hidden)
        for t in range(tokens.shape[0]):
            with torch.no_grad():
                ref, h_ref = step(tokens[t, :batch], h_ref)
                got, h_got = loaded(tokens[t, :batch], h_got)
            diff = max(diff, float((got - ref).abs().max()))
            tol = max(tol, ATOL + RTOL * float(ref.abs().max()))
    if not diff <= tol:
        raise ExportCheckError(f"exported language model differs from PyTorch by {diff:.3g} > tolerance {tol:.3g}; "
                               f"nothing written")
    full = {"format": "torchscript", "file": path.name, "exporter": f"torch.jit.trace (torch {torch.__version__})",
            "input": {"tokens": ["batch"], "hidden": ["batch", hidden]},
            "output": {"logits": ["batch", vocab], "hidden": ["batch", hidden]}, **info,
            "check": {"steps": int(tokens.shape[0]), "max_abs_diff": diff, "tolerance": tol}}
    tmp_info.write_text(json.dumps(full, indent=1) + "\n")
    os.replace(tmp_model, path)
    os.replace(tmp_info, info_path)
    return diff, tol
