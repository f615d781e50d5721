"""Word-level corpora: PTB/WikiText reading, OOV handling, batching, variable BPTT, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nao.data.corpus import (
    EOS,
    UNK,
    batchify,
    check_bptt,
    detect_format,
    eval_batches,
    load_corpus,
    sample_seq_len,
    train_batches,
)
from nao.errors import ConfigError, DataError


def _write(d: Path, names: tuple[str, str, str], train: str, valid: str, test: str) -> Path:
    for name, text in zip(names, (train, valid, test)):
        (d / name).write_text(text)
    return d


PTB = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
WIKI = ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")


def test_ptb_format_eos_and_vocab(tmp_path):
    d = _write(tmp_path, PTB, " a b <unk> \n b c \n", " c a \n", " b \n")
    c = load_corpus(d)
    assert c.format == "ptb" and c.vocab.words == ["a", "b", UNK, EOS, "c"]
    assert c.train.tolist() == [0, 1, 2, 3, 1, 4, 3]
    assert c.valid.tolist() == [4, 0, 3] and c.test.tolist() == [1, 3]


def test_wikitext_format_blank_lines_and_oov(tmp_path):
    d = _write(tmp_path, WIKI, " = Title = \n\n the cat \n", " the dog \n", "\n the \n")
    assert detect_format(d) == "wikitext2"
    c = load_corpus(d)
    # a blank line is a lone <eos>; <unk> is added because training has none
    assert c.train.numel() == 4 + 1 + 3 and UNK in c.vocab
    assert c.valid.tolist() == [c.vocab.index["the"], c.vocab.index[UNK], c.vocab.index[EOS]]
    with pytest.raises(DataError, match=r"wiki\.valid\.tokens: line 1: word 'dog' is not in the training vocabulary"):
        load_corpus(d, oov="error")


def test_missing_and_empty_files_are_named(tmp_path):
    with pytest.raises(DataError, match="corpus directory not found"):
        load_corpus(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"no corpus found \(expected ptb\.train\.txt or wiki\.train\.tokens\)"):
        load_corpus(tmp_path)
    (tmp_path / "ptb.train.txt").write_text("a b\n")
    with pytest.raises(DataError, match=r"ptb\.valid\.txt: corpus file not found"):
        load_corpus(tmp_path)
    (tmp_path / "ptb.valid.txt").write_text("\n \n")
    (tmp_path / "ptb.test.txt").write_text("a\n")
    with pytest.raises(DataError, match=r"ptb\.valid\.txt: corpus file is empty"):
        load_corpus(tmp_path)
    with pytest.raises(ConfigError):
        load_corpus(tmp_path, oov="ignore")


def test_batchify_and_bptt_errors():
    ids = torch.arange(23)
    data = batchify(ids, 4)
    assert data.shape == (5, 4) and data[:, 1].tolist() == [5, 6, 7, 8, 9]  # each column a contiguous stream
    with pytest.raises(DataError, match="too few for batch size 20"):
        batchify(ids, 20)
    with pytest.raises(DataError, match="--bptt 5 is longer than the training stream"):
        check_bptt(data, 5, "training")
    with pytest.raises(DataError):
        next(train_batches(data, 5, None))


def test_variable_bptt_lengths_and_coverage():
    rng = np.random.default_rng(0)
    lens = np.array([sample_seq_len(rng, 35) for _ in range(4000)])
    assert lens.min() >= 5 and lens.max() <= 55
    assert abs(np.median(lens) - 35) <= 1
    assert 0.02 < np.mean(lens < 25) < 0.12  # the bptt/2 branch (prob 0.05) plus the normal tail
    data = batchify(torch.arange(4000), 4)
    seen = []
    for i, x, y in train_batches(data, 35, np.random.default_rng(1)):
        assert i == len(seen) and torch.equal(y, data[i + 1 : i + 1 + len(x)])  # targets: the next words
        seen.extend(x[:, 0].tolist())
    assert seen == data[: len(seen), 0].tolist() and len(seen) >= data.size(0) - 2
    windows = list(eval_batches(data, 300))
    assert sum(len(x) for x, _ in windows) == data.size(0) - 1


def test_real_ptb_counts(ptb_dir):
    c = load_corpus(ptb_dir)
    assert len(c.vocab) == 10000
    assert (c.train.numel(), c.valid.numel(), c.test.numel()) == (929589, 73760, 82430)
