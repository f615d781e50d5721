"""Word-level corpora (Penn Treebank, WikiText-2) and language-model batching.

Both formats are plain text, one sentence (PTB) or paragraph (WikiText) per line, tokens
separated by spaces; ``<eos>`` is appended at every line end (blank WikiText lines become
a lone ``<eos>``, as in the AWD-LSTM/DARTS/NAO loaders, which gives the standard token
counts). The vocabulary is built from the training file in order of first appearance.

Out-of-vocabulary words in valid/test (none in Mikolov's PTB, whose vocabulary is closed)
map to ``<unk>`` by default (``<unk>`` is added to the vocabulary if training lacks it);
``oov="error"`` raises :class:`~nao.errors.DataError` naming the file, line and word.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for split in ("train", "valid", "test"):
...     _ = (d / f"ptb.{split}.txt").write_text(" the cat sat \\n the dog sat \\n")
>>> corpus = load_corpus(d)
>>> len(corpus.vocab), corpus.train.tolist()[:4]
(6, [0, 1, 2, 3])
>>> batchify(corpus.train, 2).shape  # 8 tokens -> 4 steps x 2 streams
torch.Size([4, 2])
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nao.errors import ConfigError, DataError

EOS = "<eos>"
UNK = "<unk>"
# File names per format: (train, valid, test).
FORMATS = {
    "ptb": ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
    "wikitext2": ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
}


class Vocabulary:
    """Word <-> id mapping; ids follow first appearance in the training file."""

    def __init__(self, words: list[str] | None = None) -> None:
        self.words: list[str] = []
        self.index: dict[str, int] = {}
        for w in words or []:
            self.add(w)

    def add(self, word: str) -> int:
        if word not in self.index:
            self.index[word] = len(self.words)
            self.words.append(word)
        return self.index[word]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index


@dataclass
class Corpus:
    """A tokenised corpus: the vocabulary and three 1-D int64 id tensors."""

    vocab: Vocabulary
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    root: Path
    format: str


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"{path}: corpus file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text corpus file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: corpus file is empty")
    return lines


def _tokenise(path: Path, vocab: Vocabulary, grow: bool, oov: str) -> torch.Tensor:
    ids: list[int] = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        for word in line.split() + [EOS]:
            i = vocab.index.get(word)
            if i is None:
                if grow:
                    i = vocab.add(word)
                elif oov == "error":
                    raise DataError(f"{path}: line {line_no}: word {word!r} is not in the training vocabulary")
                else:
                    i = vocab.index[UNK]
            ids.append(i)
    return torch.tensor(ids, dtype=torch.long)


def detect_format(root: str | os.PathLike) -> str:
    """``"ptb"`` or ``"wikitext2"``, whichever training file exists under ``root``."""
    root = Path(root)
    for name, files in FORMATS.items():
        if (root / files[0]).exists():
            return name
    expected = " or ".join(files[0] for files in FORMATS.values())
    if not root.exists():
        raise DataError(f"{root}: corpus directory not found (expected {expected} inside)")
    raise DataError(f"{root}: no corpus found (expected {expected})")


def load_corpus(root: str | os.PathLike, format: str | None = None, oov: str = "unk") -> Corpus:
    """Read ``root``'s train/valid/test files (format auto-detected when ``None``).

    Args:
        root: directory holding the three files (PTB: ``ptb.{train,valid,test}.txt``,
            WikiText-2: ``wiki.{train,valid,test}.tokens``).
        format: ``"ptb"``, ``"wikitext2"`` or ``None``.
        oov: ``"unk"`` (map unknown valid/test words to ``<unk>``) or ``"error"``.
    """
    root = Path(root)
    if oov not in ("unk", "error"):
        raise ConfigError(f"oov must be 'unk' or 'error', got {oov!r}")
    fmt = format or detect_format(root)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
    train_f, valid_f, test_f = (root / f for f in FORMATS[fmt])
    vocab = Vocabulary()
    train = _tokenise(train_f, vocab, grow=True, oov=oov)
    if oov == "unk":
        vocab.add(UNK)  # no-op when training already has <unk> (PTB, WikiText)
    valid = _tokenise(valid_f, vocab, grow=False, oov=oov)
    test = _tokenise(test_f, vocab, grow=False, oov=oov)
    return Corpus(vocab, train, valid, test, root, fmt)


def batchify(ids: torch.Tensor, batch_size: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Cut a 1-D id stream into ``batch_size`` parallel streams: shape ``(T, batch_size)``.

    The tail that does not fill a whole row is dropped (as in every AWD-LSTM-style loader).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    steps = ids.numel() // batch_size
    if steps < 2:
        raise DataError(f"{ids.numel()} tokens are too few for batch size {batch_size} (need at least 2 per stream)")
    data = ids[: steps * batch_size].view(batch_size, steps).t().contiguous()  # (N,) -> (B, T) -> (T, B)
    return data.to(device)


def check_bptt(data: torch.Tensor, bptt: int, what: str = "data") -> None:
    """Raise DataError when ``bptt`` does not fit the ``(T, B)`` stream ``data``."""
    if bptt < 1:
        raise ConfigError(f"--bptt must be at least 1, got {bptt}")
    if bptt > data.size(0) - 1:
        raise DataError(
            f"--bptt {bptt} is longer than the {what} stream ({data.size(0)} steps per batch column, "
            f"so at most {data.size(0) - 1}); use a smaller --bptt or --batch-size"
        )


def get_batch(data: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``data[i:i+L]`` and next-word targets ``data[i+1:i+1+L]``, both ``(L, B)``."""
    seq_len = min(seq_len, data.size(0) - 1 - i)
    return data[i : i + seq_len], data[i + 1 : i + 1 + seq_len]


def sample_seq_len(rng: np.random.Generator, bptt: int, max_delta: int = 20) -> int:
    """AWD-LSTM's variable BPTT: ``N(bptt, 5)`` with prob. 0.95, else ``N(bptt/2, 5)``.

    Clamped to ``[5, bptt + max_delta]`` (and to ``[1, ...]`` for a tiny ``bptt``).
    """
    base = bptt if rng.random() < 0.95 else bptt / 2.0
    seq_len = int(rng.normal(base, 5))
    return max(min(5, bptt), min(seq_len, bptt + max_delta))


def train_batches(
    data: torch.Tensor, bptt: int, rng: np.random.Generator | None, start: int = 0, max_delta: int = 20
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """One pass over ``(T, B)`` ``data`` from ``start``: yields ``(i, inputs, targets)``.

    With ``rng`` the sequence lengths vary (:func:`sample_seq_len`); without, they are ``bptt``.
    Callers scale the learning rate by ``len(inputs) / bptt``, as AWD-LSTM does.
    """
    check_bptt(data, bptt)
    i = start
    while i < data.size(0) - 2:
        seq_len = sample_seq_len(rng, bptt, max_delta) if rng is not None else bptt
        x, y = get_batch(data, i, seq_len)
        yield i, x, y
        i += x.size(0)


def eval_batches(data: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive fixed-length windows covering ``data`` (the last may be shorter)."""
    if bptt < 1:
        raise ConfigError(f"--bptt must be at least 1, got {bptt}")
    for i in range(0, data.size(0) - 1, bptt):
        yield get_batch(data, i, bptt)


def perplexity(loss_nats: float) -> float:
    """``exp(loss)``, saturating at ``inf`` instead of overflowing."""
    return math.exp(loss_nats) if loss_nats < 700 else float("inf")


__all__ = [
    "EOS",
    "FORMATS",
    "UNK",
    "Corpus",
    "Vocabulary",
    "batchify",
    "check_bptt",
    "detect_format",
    "eval_batches",
    "get_batch",
    "load_corpus",
    "perplexity",
    "sample_seq_len",
    "train_batches",
]
