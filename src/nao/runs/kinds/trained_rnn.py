"""Kind ``trained-rnn``: NAO on recurrent cells, every candidate trained briefly on a corpus and scored by
validation perplexity (lower is better); the winner is trained with ``final`` and tested.

Presets (``trained-rnn/NAME``): ``smoke`` (seconds, tests), ``cpu``, ``paper``.

Zero-cost proxies (``--zero-cost all``, off by default): each candidate's untrained language model is scored
with the proxies defined for one (:mod:`nao.proxies.lm`) on seeded windows of the search's training text before
it trains (:mod:`nao.runs.trained` says how the strategy uses them and how their seconds join the cost, in
``token_epochs``).

>>> from nao.presets import preset
>>> preset("trained-rnn/smoke").lm.epochs
1
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nao.config import Config
from nao.data.corpus import Corpus
from nao.device import resolve_device
from nao.errors import ConfigError
from nao.evaluators.lm_training import LMTrainingEvaluator
from nao.fidelity.runs import check_fidelity
from nao.presets import register_preset
from nao.proxies.lm import LM_PROXIES, check_lm_names
from nao.results import Objective
from nao.runs.executor import ExecutorConfig
from nao.runs.flags import DEVICE_FLAGS, EXECUTOR_FLAGS, LADDER_FLAGS
from nao.runs.kinds.supernet_rnn import ptb_dir
from nao.runs.skeleton import RunContext, Search, register_kind
from nao.runs.trained import CANDIDATES_DIR, ZERO_COST_BATCH, ProxyCharging, TrainedKind, zero_cost_flags
from nao.spaces import get_space
from nao.spaces.resolve import RNN_SPACES
from nao.study import Study
from nao.train.lm import LMConfig
from nao.train.lm import preset as lm_preset


@dataclass
class TrainedRnnConfig(Config):
    """A recurrent-cell search that trains every candidate on a corpus (``lm``) and the winner with ``final``.

    ``zero_cost`` names the zero-cost proxies (:data:`nao.proxies.lm.LM_PROXIES`) each candidate is scored with
    before it trains (empty: none), on ``zero_cost_batch`` seeded windows of ``lm.bptt`` training tokens.
    """

    preset: str = "smoke"
    space: str = "rnn"
    strategy: str = "nao"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    budget: int = 6
    max_cost: float | None = None  # a bound on compute, in the evaluator's cost_unit (None: count only)
    fidelity: str = "none"  # none, asha, sh, hyperband: rungs of lm.epochs / eta**k passes (nao.fidelity)
    eta: float = 3.0  # the fidelity scheduler's reduction factor (the top 1/eta of a rung is promoted)
    min_fidelity: float | None = None  # the lowest rung (None: max / eta**2, three rungs)
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    data_dir: str | None = None
    #: Train/validate candidates on the first this many tokens of each split (0: all); the final training uses all.
    search_tokens: tuple[int, int] = (0, 0)
    #: The same for the winner's final training (0: all); the test split is always whole.
    final_tokens: tuple[int, int] = (0, 0)
    lm: LMConfig = field(default_factory=LMConfig)
    final: LMConfig = field(default_factory=LMConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    zero_cost: tuple[str, ...] = ()
    zero_cost_batch: int = ZERO_COST_BATCH


@register_preset("trained-rnn", "smoke")
def _rnn_smoke() -> TrainedRnnConfig:
    # One epoch of PTB in ~200 large batches of a 32-unit model: seconds per candidate, deterministic
    # (a time limit would make resumed runs differ).
    tiny = replace(lm_preset("tiny"), batch_size=32, eval_batch_size=32, bptt=35, max_seq_len_delta=5, epochs=1)
    return TrainedRnnConfig(preset="smoke", lm=tiny, final=tiny, search_tokens=(20_000, 5_000),
                            final_tokens=(20_000, 5_000),
                            strategy_options={"seed_archs": 4, "per_round": 2, "top_k": 2, "candidates": 4,
                                              "controller": {"epochs": 25, "pretrain_archs": 0}})


@register_preset("trained-rnn", "cpu")
def _rnn_cpu() -> TrainedRnnConfig:
    # Each candidate: the small LM preset's network (128 units) for one pass over the first 200k PTB training
    # tokens, scored on the first 20k validation tokens (a fixed amount of work, so resumes are exact; ~1 min
    # a candidate on one free core); 20 seeds + 2 rounds of 10; the winner gets the small preset for 2 epochs.
    brief = lm_preset("small", epochs=1, eval_every=0)
    return TrainedRnnConfig(preset="cpu", budget=40, lm=brief, final=lm_preset("small", epochs=2),
                            search_tokens=(200_000, 20_000),
                            strategy_options={"seed_archs": 20, "per_round": 10, "top_k": 10, "candidates": 40})


@register_preset("trained-rnn", "paper")
def _rnn_paper() -> TrainedRnnConfig:
    # The paper's PTB search trains candidates with the 850-unit recipe briefly; the winner with the full recipe.
    return TrainedRnnConfig(preset="paper", budget=1500, device="auto", threads=0,
                            lm=lm_preset("paper", epochs=10), final=lm_preset("paper"),
                            strategy_options={"seed_archs": 600, "per_round": 300, "top_k": 100, "candidates": 300})


@register_kind
class TrainedRnnKind(TrainedKind):
    """Recurrent cells, every candidate trained briefly and scored by validation perplexity (lower is better)."""

    name = "trained-rnn"
    task, evaluator = "ptb", "training"
    config_class = TrainedRnnConfig
    flags = (*DEVICE_FLAGS, *EXECUTOR_FLAGS, *LADDER_FLAGS, *zero_cost_flags(LM_PROXIES, "token_epochs"))
    objective = Objective("val_ppl", "min")

    def prepare(self) -> None:
        from nao.data.corpus import load_corpus

        cfg = self.config
        if cfg.space not in RNN_SPACES:
            raise ConfigError(f"--space {cfg.space!r} is not a recurrent cell space; choose one of {', '.join(RNN_SPACES)}")
        self.space = get_space(cfg.space)
        self.check_strategy(check_lm_names)  # the options, and --zero-cost's names (defined for an LM), batch, needs
        self.device = resolve_device(cfg.device)
        self.corpus = load_corpus(ptb_dir(cfg.data_dir))
        self.proxy_batch = None
        if cfg.zero_cost:  # seeded windows of the text the candidates train on (a NaoError if it is too short)
            from nao.proxies.lm import token_batch

            self.proxy_batch = token_batch(_head(self.corpus, cfg.search_tokens).train, cfg.zero_cost_batch,
                                           cfg.lm.bptt, cfg.seed)
        # Fractions of a pass (rungs end on a validation: LMTrainingEvaluator.rung_steps).
        self.rungs = check_fidelity(cfg.fidelity, cfg.eta, cfg.lm.epochs, cfg.budget, cfg.min_fidelity)
        self.executor = cfg.executor.build()

    def build(self, ctx: RunContext) -> Search:
        cfg = self.config
        evaluator = LMTrainingEvaluator(self.space, _head(self.corpus, cfg.search_tokens), cfg.lm, device=self.device, seed=cfg.seed,
                                        checkpoint_root=ctx.rundir.path / CANDIDATES_DIR)
        executor, zero_cost = self.executor, None
        if cfg.zero_cost:
            from nao.proxies.lm import lm_zero_cost

            zero_cost = lm_zero_cost(self.space, self.proxy_batch, cfg.zero_cost, cfg.lm.model, len(self.corpus.vocab),
                                     seed=cfg.seed, device=self.device)
            executor = ProxyCharging(self.executor, zero_cost)
        strategy = self.strategy(None if self.rungs is None else float(cfg.lm.epochs), zero_cost=zero_cost)
        if self.rungs is not None:
            ctx.say(f"fidelity {cfg.fidelity}: rungs of {', '.join(f'{r:.3g}' for r in self.rungs)} passes, the top "
                    f"1/{cfg.eta:g} of each promoted and continued from its checkpoint")
        if zero_cost is not None:
            ctx.say(f"zero-cost proxies {','.join(cfg.zero_cost)} on {cfg.zero_cost_batch} windows of {cfg.lm.bptt} "
                    f"training tokens before each candidate trains (charged in token_epochs at the run's training "
                    f"throughput)")
        return Search(self.space, evaluator, strategy, self.objective, cfg.budget, executor,
                      scheduler=self.scheduler())

    def finish(self, ctx: RunContext, search: Search, study: Study) -> dict[str, Any]:
        from nao.nn.rnn import build_model
        from nao.train.lm import train_lm

        best = study.best()
        if best is None:
            raise ConfigError(f"every candidate failed to train; see {ctx.rundir.journal_path}")
        shown = self.space.format(best.arch)
        ctx.say(f"final training of the winner ({self.config.final.epochs} epochs max) {shown}")
        model = build_model(self.config.final.model, len(self.corpus.vocab), self.space.decode(best.arch),
                            seed=self.config.final.seed)
        run = train_lm(model, _head(self.corpus, self.config.final_tokens), self.config.final, out_dir=ctx.rundir.path / "final", device=self.device,
                       resume=ctx.resumed, quiet=ctx.quiet, meta={"arch": shown})
        final = {"arch": shown, "status": "ok", "val_ppl": run.val_ppl, "test_ppl": run.test_ppl,
                 "epochs": run.epochs_done, "seconds": run.train_time_s}
        ctx.say(f"test perplexity {run.test_ppl:.1f} (validation {run.val_ppl:.1f})")
        return {"final": final}



def _head(corpus: Corpus, tokens: tuple[int, int]) -> Corpus:
    """``corpus`` with its training and validation splits cut to their first ``tokens`` (0: whole)."""
    n_train, n_valid = tokens
    return replace(corpus, train=corpus.train[: n_train or None], valid=corpus.valid[: n_valid or None])
