"""LM training evaluator: score each recurrent cell by training a language model with it briefly.

Every candidate (an architecture of the ``rnn``, ``rnn-darts`` or ``rnn-enas`` space) gets a
fresh :class:`~nao.nn.rnn.RNNLanguageModel`, seeded the same way, trained with one
:class:`~nao.train.lm.LMConfig` (a preset such as ``preset("small", epochs=1)``) on a
:class:`~nao.data.corpus.Corpus`, and reports its best validation perplexity: metrics
``val_ppl`` and ``val_loss`` (lower is better; the run's objective minimises ``val_ppl``, no
sign is flipped here). Test perplexity is never computed during search.

With ``checkpoint_root``, candidate ``a`` trains in ``checkpoint_root/candidate_id(a)``
(:func:`nao.evaluators.training.candidate_id`), checkpointed at every validation and resumed
from there; a finished candidate is answered from its ``result.json``. A diverging run (NaN or
infinite loss) or an out-of-memory error gives a failed :class:`~nao.results.Result`.

Picklable for process-pool and Ray workers: the corpus stays on the CPU and the device is a
name resolved in the worker.

>>> import tempfile, pathlib
>>> from nao.data.corpus import load_corpus
>>> from nao.spaces import get_space
>>> from nao.train.lm import preset
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for split in ("train", "valid", "test"):
...     _ = (d / f"ptb.{split}.txt").write_text("a b c d e f g h\\n" * 40)
>>> space = get_space("rnn")
>>> ev = LMTrainingEvaluator(space, load_corpus(d), preset("tiny", epochs=1))
>>> r = ev.evaluate([space.named("NAO")])[0]
>>> r.status, sorted(r.metrics)
('ok', ['params_m', 'val_loss', 'val_ppl'])
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from nao.data.corpus import Corpus, batchify, check_bptt
from nao.device import is_oom, resolve_device
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.evaluators.training import (
    RESULT_NAME,
    _last_rung,
    candidate_id,
    check_meta,
    read_cached,
    write_cached,
)
from nao.nn.rnn import build_model, count_parameters
from nao.registry import EVALUATORS
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.spaces.rnn import RNNCellSpace
from nao.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nao.train.lm import LMConfig, preset, train_lm

log = logging.getLogger(__name__)


def default_config() -> LMConfig:
    """The search default: the CPU ``small`` preset for one epoch (about 6 minutes of PTB on a CPU)."""
    return preset("small", epochs=1)


@EVALUATORS.register("lm-training")
class LMTrainingEvaluator(Evaluator):
    """Short from-scratch language-model training of each recurrent cell; scored by validation perplexity.

    Args:
        space: a recurrent cell space (``rnn``, ``rnn-darts``, ``rnn-enas``).
        corpus: the tokenised corpus (CPU tensors); only ``train`` and ``valid`` are read.
        config: model size and schedule (default :func:`default_config`); its ``seed`` is
            replaced by ``seed`` when that is given.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, resolved in the worker that trains.
        seed: seeds the initialisation, dropout masks and sequence lengths (the same for every
            candidate); ``None``: ``config.seed``.
        checkpoint_root: if given, each candidate trains and checkpoints in its own directory below.

    Each result's ``fidelity`` is the epochs trained (fractional: training may stop mid-pass) and its
    ``cost`` those epochs times the training tokens (unit ``token_epochs``, about the tokens processed);
    a run that diverges mid-training records only its seconds (``cost_s``).
    """

    batch_size = 1  # candidates are trained one at a time
    cost_unit = "token_epochs"

    def __init__(
        self,
        space: SearchSpace,
        corpus: Corpus,
        config: LMConfig | None = None,
        *,
        device: str = "cpu",
        seed: int | None = None,
        checkpoint_root: str | os.PathLike | None = None,
    ) -> None:
        if not isinstance(space, RNNCellSpace):
            raise ConfigError(f"the lm-training evaluator needs a recurrent cell space (rnn, rnn-darts, rnn-enas), "
                              f"not {space.name!r}")
        config = config or default_config()
        if seed is not None:
            config = replace(config, seed=seed)
        # Fail now, not in every worker: the streams must hold at least one BPTT window.
        check_bptt(batchify(corpus.train, config.batch_size), config.bptt, "training")
        check_bptt(batchify(corpus.valid, config.eval_batch_size), config.bptt, "validation")
        self.space, self.corpus, self.config = space, corpus, config
        self.device = device
        self.checkpoint_root = Path(checkpoint_root) if checkpoint_root is not None else None

    def candidate_dir(self, arch: Architecture) -> Path | None:
        """Where ``arch`` trains and checkpoints (None without ``checkpoint_root``)."""
        return self.checkpoint_root / candidate_id(self.space, arch) if self.checkpoint_root else None

    def candidate_meta(self, arch: Architecture) -> dict[str, Any]:
        """What a candidate's checkpoint must have been written for to be resumed."""
        # Sizes, not the corpus path: a Ray worker may see the same corpus under another path.
        return {"task": "lm", "space": self.space.name, "arch": self.space.format(arch), "config": asdict(self.config),
                "vocab": len(self.corpus.vocab), "train_tokens": int(self.corpus.train.numel()),
                "valid_tokens": int(self.corpus.valid.numel())}

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        return [self._one(arch) for arch in archs]

    #: Fidelity unit of :meth:`evaluate_at`: passes over the training text (fractions allowed).
    fidelity_unit = "epochs"

    @property
    def max_fidelity(self) -> float:
        """The top rung: the planned passes (``config.epochs``)."""
        return float(self.config.epochs)

    def rung_steps(self, epochs: float) -> int:
        """Steps of a rung of ``epochs`` passes, a whole number of validation intervals (at least one).

        Validations decide the best checkpoint and when averaging starts, so a rung that ends on
        one keeps a continued candidate's run identical to the planned longer one. When the validation
        interval is a whole pass or more, rungs are plain fractions of the pass and a rung's own
        validation is one the planned run would not have made (it can only start averaging earlier).
        """
        spe = max(1, (batchify(self.corpus.train, self.config.batch_size).size(0) - 2) // self.config.bptt)
        per_eval = self.config.eval_every or spe
        if per_eval >= spe:  # at most one validation per pass: a rung ends where it must, on its own validation
            return max(1, round(epochs * spe))
        return per_eval * max(1, round(epochs * spe / per_eval))

    def evaluate_at(self, archs: Sequence[Architecture], epochs: float) -> list[Result]:
        """Train each of ``archs`` up to ``epochs`` passes (a fidelity rung; a fraction of a pass is fine).

        A candidate trained to a lower rung *continues from its checkpoint* (constant learning rate
        with averaged SGD triggered by validations: nothing in the schedule depends on the planned
        length, so continuing is the longer training). Needs ``checkpoint_root``.
        """
        if self.checkpoint_root is None:
            raise ConfigError("--fidelity needs candidate checkpoints to continue from (checkpoint_root)")
        if not 0 < epochs <= self.config.epochs:
            raise ConfigError(f"--fidelity: rung of {epochs:g} epochs outside (0, {self.config.epochs}]")
        until = None if epochs >= self.config.epochs else self.rung_steps(epochs)
        return [self._one(arch, until, rung=True) for arch in archs]

    def _one(self, arch: Architecture, until: int | None = None, rung: bool = False) -> Result:
        t0 = time.perf_counter()
        out, meta = self.candidate_dir(arch), self.candidate_meta(arch)
        name = RESULT_NAME if until is None else f"result_s{until}.json"
        start_steps = 0
        if out is not None:
            cached = read_cached(out, arch, meta, name)
            if cached is not None:
                return cached
            if (out / CHECKPOINT_NAME).is_file():
                state = load_checkpoint(out / CHECKPOINT_NAME)
                check_meta(out / CHECKPOINT_NAME, state.get("meta"), meta)
                start_steps = int(state.get("trainer", {}).get("steps", 0))
        device = torch.device(resolve_device(self.device))  # in the worker: its own torch decides
        try:
            model = build_model(self.config.model, len(self.corpus.vocab), self.space.decode(arch), seed=self.config.seed)
            run = train_lm(model, self.corpus, self.config, out_dir=out, device=device, resume=True, quiet=True,
                           meta=meta, test=False, until_steps=until)
            result = _result(arch, run, count_parameters(model) / 1e6, time.perf_counter() - t0,
                             int(self.corpus.train.numel()))
            if rung:  # a promotion pays only the steps it adds to its last rung (its checkpoint had the rest)
                result.info["from_step"] = start_steps
                paid = _last_rung(out, "result_s", run.steps) / max(1, run.steps) * run.epochs_done
                result = replace(result, cost=float((run.epochs_done - paid) * int(self.corpus.train.numel())))
        except FloatingPointError as e:  # LMTrainer.step's divergence signal
            result = Result(arch, "failed", {}, time.perf_counter() - t0, f"diverged: {e}")
        except Exception as e:  # an OOM must not end the search; anything else is a bug
            if not is_oom(e):
                raise
            log.warning("out of memory training %s: %s", self.space.format(arch), e)
            return Result.failed(arch, f"out of memory: {str(e).splitlines()[0]}", time.perf_counter() - t0)
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if out is not None:
            write_cached(out, result, meta, name)  # divergence is deterministic: a failure is final too
        return result


def _result(arch: Architecture, run: Any, params_m: float, cost_s: float, train_tokens: int) -> Result:
    info = {"epochs": run.epochs_done, "steps": run.steps, "tokens_per_s": run.tokens_per_s, "averaged": run.averaged}
    spent = {"fidelity": float(run.epochs_done), "cost": float(run.epochs_done * train_tokens)}
    if not (math.isfinite(run.val_loss) and math.isfinite(run.val_ppl)):
        return Result(arch, "failed", {}, cost_s, f"validation loss is {run.val_loss:.4g} nats (diverged)", info,
                      **spent)
    return Result(arch, "ok", {"val_ppl": run.val_ppl, "val_loss": run.val_loss, "params_m": params_m}, cost_s, None,
                  info, **spent)
