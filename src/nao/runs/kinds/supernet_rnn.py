"""Kind ``supernet-rnn``: NAO-WS on a word-level corpus (Penn Treebank), recurrent cells.

The Study drives the strategy against an :class:`~nao.evaluators.rnn_supernet.RNNSupernetEvaluator`:
each round trains the shared weights on the pool and scores every pool member on a fixed
validation slice; the objective is the validation loss, lower is better (equivalently, perplexity).
Besides the common run files: ``supernet.json`` (per-round history, final pool ranking) and
``supernet.pt`` (the state a resume continues from).

Presets ``supernet-rnn/small`` (CPU, minutes), ``paper`` (the official NAO-WS PTB search), ``tiny`` (tests).

>>> from nao.presets import preset
>>> cfg = preset("supernet-rnn/tiny")
>>> cfg.supernet.seed_pool, cfg.resolved_budget()
(4, 8)
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from nao.config import Config, setting
from nao.data.corpus import Corpus, load_corpus
from nao.data.paths import data_root
from nao.device import resolve_device
from nao.errors import ConfigError
from nao.evaluators.rnn_supernet import RNNSupernetConfig, RNNSupernetEvaluator, supernet_preset
from nao.evaluators.rounds import SUPERNET_CHECKPOINT, resume_point
from nao.presets import register_preset
from nao.results import Objective, Result
from nao.rundir import RunDir
from nao.runs.flags import DEVICE_FLAGS, flag
from nao.runs.skeleton import RunContext, RunKind, Search, register_kind
from nao.spaces import get_space
from nao.spaces.resolve import RNN_SPACES
from nao.strategies import check_strategy_options, make_strategy
from nao.study import Study
from nao.threads import torch_threads


@dataclass
class PtbSearchConfig(Config):
    """A NAO-WS search of recurrent cells.

    Attributes:
        preset: the preset it came from.
        space: ``rnn`` (NAO-WS), ``rnn-darts`` or ``rnn-enas``.
        strategy, strategy_options: the search strategy; for ``nao`` the round sizes default to the
            supernet's (``seed_archs = seed_pool``, ``per_round = new_per_round``).
        budget: architectures scored (0: three supernet rounds).
        seed: seeds the supernet and the strategy.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: torch CPU threads (0: the current count, recorded so a resume reuses it: CPU sums
            depend on it).
        data_dir: folder with ``ptb.*.txt`` or ``wiki.*.tokens`` (default ``$NAO_DATA/ptb``).
        supernet: supernet size, training and scoring.
    """

    preset: str = "small"
    space: str = "rnn"
    strategy: str = "nao"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    budget: int = setting(0, min=0)
    max_cost: float | None = None  # a bound on compute, in the evaluator's cost_unit (None: count only)
    seed: int = 0
    device: str = "cpu"
    threads: int = setting(0, min=0)
    data_dir: str | None = None
    supernet: RNNSupernetConfig = field(default_factory=lambda: supernet_preset("small"))

    def resolved_budget(self) -> int:
        return self.budget or self.supernet.seed_pool + 2 * self.supernet.new_per_round


def _register(name: str) -> None:
    register_preset("supernet-rnn", name)(lambda: PtbSearchConfig(preset=name, supernet=supernet_preset(name)))


for _name in ("small", "paper", "tiny"):
    _register(_name)


def ptb_dir(data_dir: str | None) -> str:
    """``data_dir`` or ``$NAO_DATA/ptb`` (the folder holding ptb.*.txt or wiki.*.tokens)."""
    return str(data_dir) if data_dir else str(data_root() / "ptb")


@register_kind
class SupernetRnnKind(RunKind):
    """NAO-WS-RNN: supernet rounds on a corpus; the best pool member by validation loss wins."""

    name = "supernet-rnn"
    task, evaluator, default_for_task = "ptb", "supernet", True
    help = "recurrent cells on Penn Treebank: supernet (default) or training"
    config_class = PtbSearchConfig
    flags = (*DEVICE_FLAGS, *(
        flag(name, key, type=t, choices=c, help=h, group="rnn supernet (--evaluator supernet)")
        for name, key, t, c, h in (
            ("--hidden-size", ("supernet.lm.model.hidden_size", "supernet.lm.model.emb_size"), int, None,
             "supernet embedding = hidden width"),
            ("--share", "supernet.share", str, ("node_input_act", "node_input"), "weight blocks per (node, input[, act])"),
            ("--seed-pool", "supernet.seed_pool", int, None, "architectures in the first round"),
            ("--new-per-round", "supernet.new_per_round", int, None, "architectures each later round adds"),
            ("--pool-size", "supernet.pool_size", int, None, "architectures trained on per round"),
            ("--steps-per-round", "supernet.steps_per_round", int, None, "supernet mini-batches per round"),
            ("--score-tokens", "supernet.score_tokens", int, None, "validation tokens each architecture is scored on"),
        )))
    scores_from = "supernet"
    no_executor = "a supernet search evaluates in this process only: its shared weights live there"
    resumable_changes = ("device", "data_dir", "threads")
    objective = Objective("val_loss", "min")

    def __init__(self, config: PtbSearchConfig, corpus: Corpus | None = None) -> None:
        super().__init__(config)
        self.corpus = corpus

    def budget(self) -> int:
        return self.config.resolved_budget()

    def threads(self) -> AbstractContextManager:
        return torch_threads(self.config.threads)

    def prepare(self) -> None:
        cfg = self.config
        if cfg.space not in RNN_SPACES:
            raise ConfigError(f"--space {cfg.space!r} is not a recurrent cell space; choose one of {', '.join(RNN_SPACES)}")
        if cfg.threads == 0:
            self.config = cfg = replace(cfg, threads=torch.get_num_threads())
        self.device = resolve_device(cfg.device)
        self.space = get_space(cfg.space)
        check_strategy_options(cfg.strategy, cfg.strategy_options, self.space)
        self.corpus = self.corpus or load_corpus(ptb_dir(cfg.data_dir))  # a missing corpus fails before the run dir

    def build(self, ctx: RunContext) -> Search:
        cfg = self.config
        options = dict(cfg.strategy_options)
        if cfg.strategy == "nao":
            options.setdefault("seed_archs", cfg.supernet.seed_pool)
            options.setdefault("per_round", cfg.supernet.new_per_round)
        strategy = make_strategy(cfg.strategy, self.space, seed=cfg.seed, objective=self.objective, **options)
        self.evaluator = RNNSupernetEvaluator(self.space, self.corpus, cfg.supernet, device=self.device, seed=cfg.seed,
                                              on_round=_round_line(ctx),
                                              checkpoint_path=ctx.rundir.path / SUPERNET_CHECKPOINT)
        return Search(self.space, self.evaluator, strategy, self.objective, cfg.resolved_budget(),
                      callbacks=[self.evaluator.observe])

    def resume_point(self, rundir: RunDir, search: Search) -> tuple[list[Result], list[str]]:
        previous, state, notes = resume_point(rundir.path, rundir.journal_path, self.space, self.device)
        if state is not None:
            self.evaluator.resume_from(state)
        notes.append(f"the supernet continues after round {state['rounds'] if state else 0}")
        return previous, notes

    def after_search(self, ctx: RunContext, search: Search, study: Study) -> None:
        ranking = [{"arch": self.space.format(a), "val_ppl": p} for a, p in self.evaluator.ranking()]
        ctx.rundir.write_json("supernet.json", {"history": self.evaluator.history, "ranking": ranking})

    def finish(self, ctx: RunContext, search: Search, study: Study) -> dict[str, Any]:
        ranking = [{"arch": self.space.format(a), "val_ppl": p} for a, p in self.evaluator.ranking()]
        return {"final_pool_best": ranking[0] if ranking else None, "rounds": self.evaluator.rounds}

    def is_finished(self, result: dict[str, Any]) -> bool:
        return True  # nothing follows the search


def _round_line(ctx: RunContext):
    def on_round(s: dict[str, Any]) -> None:
        ctx.say(f"round {s['round']}: {s['new']} new, pool {s['pool']}, {s['steps']} steps, train ppl "
                f"{s['train_ppl']:.1f}, val ppl best {s['best_val_ppl']:.1f} median {s['median_val_ppl']:.1f}, "
                f"{s['tokens_per_s']:.0f} tok/s, {s['seconds']:.0f}s")

    return on_round

