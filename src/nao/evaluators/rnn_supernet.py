"""RNN supernet evaluator (NAO-WS on Penn Treebank): score recurrent cells with shared weights.

One :class:`~nao.nn.rnn.SharedCell` language model holds the weights of every cell of an
``rnn*`` space. Each call to :meth:`RNNSupernetEvaluator.evaluate` is one *round*, as in the
official NAO-WS search (renqianluo/NAO ``NAO-WS/rnn/train_search.py``) and as in the
project's conv supernet evaluator: the new architectures join the pool (replacing the
worst-scored old ones so the pool keeps ``pool_size`` members), the supernet trains
``steps_per_round`` mini-batches drawing one pool architecture uniformly per mini-batch,
then every pool member is re-scored. ``batch_size`` is the next round's size, so the Study
asks the strategy for exactly one round.

Scoring, and why it differs from the official code: the official code scores each
architecture on one *random* validation batch; here every architecture is scored on the
same fixed slice of the validation stream (its first ``score_tokens`` tokens, zero initial
state, dropout off), so scores are comparable and repeatable. Isomorphic encodings share a
key but would use different weight blocks, so the canonical encoding is the one trained
and scored. Test data is never read.

Metrics (search sees only validation ones):

* ``val_ppl``: perplexity on the slice; ``val_loss``: its log (nats per token);
* ``val_score = -val_loss``: higher is better; **the objective to maximise** (what
  :func:`nao.cli.lm.search_ptb` passes to the Study and the strategy);
* ``val_acc``: next-word top-1 accuracy on the slice, a true fraction (strategies that can
  only read ``val_acc`` then optimise accuracy, which tracks perplexity but is not it).

>>> import numpy as np, tempfile, pathlib
>>> from nao.data.corpus import load_corpus
>>> from nao.spaces import get_space
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for split in ("train", "valid", "test"):
...     _ = (d / f"ptb.{split}.txt").write_text("a b c d e f g h\\n" * 60)
>>> space = get_space("rnn")
>>> ev = RNNSupernetEvaluator(space, load_corpus(d), supernet_preset("tiny"))
>>> rng = np.random.default_rng(0)
>>> results = ev.evaluate([space.sample(rng) for _ in range(ev.batch_size)])
>>> [r.status for r in results], results[0].metrics["val_ppl"] > 1
(['ok', 'ok', 'ok', 'ok'], True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nao.config import Config
from nao.data.corpus import Corpus, batchify, perplexity
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.evaluators.rounds import PoolRounds
from nao.nn.rnn import SHARE_MODES, ModelConfig, RNNLanguageModel, build_model
from nao.presets import register_preset
from nao.registry import EVALUATORS
from nao.spaces.base import Architecture, SearchSpace
from nao.spaces.rnn import RecurrentGenotype, RNNCellSpace
from nao.train.lm import LMConfig, LMTrainer, evaluate_lm
from nao.train.lm import preset as lm_preset

log = logging.getLogger(__name__)

#: The metric search maximises with this evaluator.
OBJECTIVE = "val_score"


@dataclass(frozen=True)
class RNNSupernetConfig(Config):
    """Supernet size, training and scoring settings.

    Attributes:
        lm: network sizes/dropouts and the SGD settings of supernet training
            (``epochs``/``eval_every``/``time_limit_s`` are not used here).
        share: weight blocks per (node, input, activation) -- NAO-WS -- or per (node, input) -- ENAS.
        seed_pool: architectures in the first round (official: 1000 seed archs).
        new_per_round: architectures each later round adds (official: up to 300 + 50 random).
        pool_size: architectures trained on per round (official: the pool keeps its size, 1000).
        steps_per_round: supernet mini-batches per round (official: 200 epochs per round).
        score_tokens: validation tokens each architecture is scored on (0: the whole validation set).
    """

    lm: LMConfig = field(default_factory=LMConfig)
    share: str = "node_input_act"
    seed_pool: int = 1000
    new_per_round: int = 300
    pool_size: int = 1000
    steps_per_round: int = 100_000
    score_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("seed_pool", "new_per_round", "pool_size", "steps_per_round"):
            if getattr(self, name) < 1:
                raise ConfigError(f"rnn supernet setting {name} must be at least 1, got {getattr(self, name)}")
        if self.share not in SHARE_MODES:
            raise ConfigError(f"rnn supernet share must be one of {', '.join(SHARE_MODES)}, got {self.share!r}")
        if self.new_per_round > self.pool_size:
            raise ConfigError(f"new_per_round {self.new_per_round} exceeds pool_size {self.pool_size}")


def supernet_preset(name: str, **overrides: Any) -> RNNSupernetConfig:
    """``paper`` (NAO-WS PTB search), ``small`` (a CPU run of minutes) or ``tiny`` (tests), from the
    one registry (:func:`nao.presets.preset`); ``overrides`` set (dotted) :class:`RNNSupernetConfig` fields."""
    from nao.presets import preset

    return preset(f"rnn-supernet/{name}", **overrides)


@register_preset("rnn-supernet", "paper")
def _paper_supernet() -> RNNSupernetConfig:
    # renqianluo/NAO NAO-WS/rnn/train_search.py defaults and train_search.sh: emb = hidden = 300,
    # batch 256 (eval 256), bptt 35, lr 0.25 (sic), clip 10, dropouts 0.75/0.25/0.75/0.2/0,
    # weight decay 5e-7, beta 1e-3; 1000 seed archs, 300 new per round; 200 epochs per round.
    lm = LMConfig(
        model=ModelConfig(300, 300, 0.75, 0.25, 0.75, 0.2, 0.0),
        batch_size=256, eval_batch_size=256, lr=0.25, clip=10.0, weight_decay=5e-7,
    )
    return RNNSupernetConfig(lm=lm, steps_per_round=200 * (929_589 // (256 * 35)))


@register_preset("rnn-supernet", "small")
def _small_supernet() -> RNNSupernetConfig:
    # The LM "small" preset's network and SGD settings (nao.train.lm).
    lm = replace(lm_preset("small"), eval_batch_size=64)
    return RNNSupernetConfig(lm=lm, share="node_input", seed_pool=40, new_per_round=20, pool_size=40,
                             steps_per_round=300, score_tokens=16_384)


@register_preset("rnn-supernet", "tiny")
def _tiny_supernet() -> RNNSupernetConfig:
    lm = LMConfig(
        model=ModelConfig(16, 16, 0.1, 0.1, 0.1, 0.1),
        batch_size=4, eval_batch_size=4, bptt=8, max_seq_len_delta=4, lr=5.0,
    )
    return RNNSupernetConfig(lm=lm, seed_pool=4, new_per_round=2, pool_size=4, steps_per_round=6, score_tokens=256)


@dataclass
class _Member:
    """A pool architecture, its cell, and its latest scores (``rank = -val_loss``; ``-inf`` until scored)."""

    arch: Architecture
    genotype: RecurrentGenotype
    key: Hashable
    rank: float = float("-inf")
    metrics: dict[str, float] = field(default_factory=dict)


@EVALUATORS.register("rnn-supernet")
class RNNSupernetEvaluator(PoolRounds[_Member], Evaluator):
    """Scores rounds of recurrent cells with a weight-sharing language model (module docstring).

    Args:
        space: an ``rnn*`` space.
        corpus: the corpus; only ``train`` and ``valid`` are read.
        cfg: supernet settings (:func:`supernet_preset`).
        device: where the supernet lives.
        seed: seeds weights, dropout masks, sequence lengths and architecture draws.
        on_round: called after each round with a summary dict (progress display).
    """

    def __init__(
        self,
        space: SearchSpace,
        corpus: Corpus,
        cfg: RNNSupernetConfig | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        on_round: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_path: Path | None = None,
    ) -> None:
        if not isinstance(space, RNNCellSpace):
            raise ConfigError(f"the rnn-supernet evaluator needs an rnn space (rnn, rnn-darts, rnn-enas), not {space.name!r}")
        self.space, self.corpus = space, corpus
        self.cfg = cfg or supernet_preset("small")
        self.device = torch.device(device)
        self.on_round = on_round
        lm = self.cfg.lm
        self.model: RNNLanguageModel = build_model(
            lm.model, len(corpus.vocab), cell="supernet", steps=space.steps, share=self.cfg.share, seed=seed
        ).to(self.device)
        self.trainer = LMTrainer(self.model, batchify(corpus.train, lm.batch_size, self.device), lm, seed=seed)
        valid = corpus.valid if self.cfg.score_tokens <= 0 else corpus.valid[: self.cfg.score_tokens]
        self.score_data = batchify(valid, lm.eval_batch_size, self.device)
        self.rng = np.random.default_rng(seed)
        self.pool: list[_Member] = []
        self._init_rounds(checkpoint_path)
        self.history: list[dict[str, Any]] = []

    # -- the round (nao.evaluators.rounds.PoolRounds) -------------------------------------------
    def _train_round(self, failed: dict[Hashable, str]) -> list[float]:
        return self.train_on_pool(self.cfg.steps_per_round)

    def _score_member(self, m: _Member, failed: dict[Hashable, str]) -> float:
        return self._score(m)

    def _metrics(self, m: _Member) -> dict[str, float]:
        return dict(m.metrics)

    def _result_info(self) -> dict[str, Any]:
        return {"round": self.rounds, "supernet_steps": self.trainer.steps}

    def _round_summary(self, n_new: int, n_failed: int, trained: list[float], seconds: float) -> dict[str, Any]:
        scores = [m.metrics["val_ppl"] for m in self.pool]
        summary = {
            "round": self.rounds,
            "new": n_new,
            "pool": len(self.pool),
            "steps": self.trainer.steps,
            "train_ppl": perplexity(float(np.mean(trained))) if trained else float("nan"),
            "best_val_ppl": min(scores),
            "median_val_ppl": float(np.median(scores)),
            "tokens_per_s": self.trainer.tokens_per_s,
            "seconds": seconds,
        }
        self.history.append(summary)
        log.info(
            "rnn supernet round %d: %d new, pool %d, %d steps, train ppl %.1f, val ppl best %.1f median %.1f, %.0fs",
            summary["round"], summary["new"], summary["pool"], summary["steps"], summary["train_ppl"],
            summary["best_val_ppl"], summary["median_val_ppl"], summary["seconds"],
        )
        return summary

    def train_on_pool(self, steps: int, pool: Sequence[Architecture] | None = None) -> list[float]:
        """``steps`` supernet mini-batches, each with a pool architecture drawn uniformly."""
        members = self.pool if pool is None else [self._member(a) for a in pool]
        if not members:
            raise ConfigError("the rnn supernet has no architectures to train on")
        return self.trainer.run(steps, genotype_fn=lambda: members[int(self.rng.integers(len(members)))].genotype)

    def score(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        """Validation metrics of each architecture with the current weights (no training)."""
        out = []
        for a in archs:
            m = self._member(a)
            self._score(m)
            out.append(m.metrics)
        return out

    def _ranking_value(self, m: _Member) -> float | None:
        """Validation perplexity (the pool is ranked by minus the validation loss)."""
        return m.metrics["val_ppl"] if m.metrics else None

    # -- checkpoints (resume, nao.evaluators.rounds) --------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "trainer": self.trainer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "pool": self._pool_state(),
            "history": [dict(row) for row in self.history],
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.trainer.load_state_dict(state["trainer"])
        self.rng.bit_generator.state = state["rng"]
        self._restore_pool(state["pool"])
        self.history = [dict(row) for row in state["history"]]

    def _member_row(self, m: _Member) -> dict[str, Any]:
        return {"score": m.rank, "metrics": dict(m.metrics)}  # "score": the checkpoint's name for the rank

    def _load_member_row(self, m: _Member, row: dict[str, Any]) -> None:
        m.rank, m.metrics = row["score"], dict(row["metrics"])

    # -- helpers -----------------------------------------------------------------------------
    def _member(self, arch: Architecture) -> _Member:
        canon = self.space.canonical(arch)
        return _Member(arch, self.space.decode(canon), self.space.key(arch))

    def _score(self, m: _Member) -> float:
        """Score ``m`` in place on the fixed slice; returns the seconds it took."""
        t0 = time.perf_counter()
        with self.trainer.averager.swapped():
            loss, acc = evaluate_lm(self.model, self.score_data, self.cfg.lm.bptt, genotype=m.genotype, bf16=self.cfg.lm.bf16)
        m.rank = -loss
        m.metrics = {"val_score": -loss, "val_loss": loss, "val_ppl": perplexity(loss), "val_acc": acc}
        return time.perf_counter() - t0

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.cfg)


__all__ = ["OBJECTIVE", "RNNSupernetConfig", "RNNSupernetEvaluator", "supernet_preset"]
