"""Configuration of the NAO controller (encoder-predictor-decoder) and of its training.

Sizes and optimiser follow the official NAO code (renqianluo/NAO_pytorch, NAO-WS CNN
controller): embedding 48, hidden 96, one LSTM layer, predictor MLP 3x200 with dropout
0.1, trade-off lambda 0.8, Adam lr 1e-3, weight decay 1e-4, gradient clipping 5. A few
project defaults depart from it (each field says why); :func:`official` is the official
controller, :func:`paper` the values the NeurIPS paper states (lambda 0.9, step size 10).

>>> cfg = ControllerConfig()
>>> cfg.trade_off, cfg.hidden_size
(0.8, 96)
>>> paper().trade_off, official().beam_width
(0.9, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nao.config import Config
from nao.errors import ConfigError


@dataclass(frozen=True)
class ControllerConfig(Config):
    """Sizes and training hyperparameters of :class:`~nao.controller.model.EncoderPredictorDecoder`.

    Defaults are the official code's where the comment says "official"; the five fields
    marked "(project default)" depart from it for reasons given there and measured in
    BENCHMARKS.md. :func:`official` restores the official behaviour exactly.
    """

    # Token embedding width, shared by encoder and decoder inputs (official: 48).
    embedding_size: int = 48
    # LSTM hidden width; also the size of the architecture embedding (official: 96).
    hidden_size: int = 96
    # Stacked LSTM layers in encoder and decoder (official: 1).
    layers: int = 1
    # Hidden layers of the predictor MLP (official: 3).
    mlp_layers: int = 3
    # Width of each predictor MLP layer (official: 200).
    mlp_hidden_size: int = 200
    # Dropout on embeddings and between predictor layers (official: 0.1).
    dropout: float = 0.1
    # (project default) Add a learned position embedding to encoder and decoder inputs
    # (official: none). The decoder then keeps its place when an early token changes, so
    # alternative decodings differ from their source locally instead of shifting the rest.
    positional: bool = True
    # (project default) Predictor output "linear" or "sigmoid" (official). A sigmoid
    # saturates for the best architectures, exactly those whose gradient moves embeddings.
    predictor_output: str = "linear"
    # lambda in  lambda * MSE(score) + (1 - lambda) * NLL(reconstruction)  (official code: 0.8).
    trade_off: float = 0.8
    # Adam learning rate (official: 1e-3).
    lr: float = 1e-3
    # Adam L2 weight decay (official: 1e-4).
    weight_decay: float = 1e-4
    # Global gradient-norm clipping (official: 5).
    grad_clip: float = 5.0
    # Mini-batch size (official: 100).
    batch_size: int = 100
    # Training epochs of one fit; None = scale with the data (see fit.default_epochs).
    epochs: int | None = None
    # (project default) Target normalisation per fit: "rank" (uniform in [0, 1] by rank)
    # or "minmax" (official). Min-max lets outliers such as NB201's ~10%-accuracy cells
    # squash every good architecture into a sliver near 1; ranks resolve the top region.
    target_transform: str = "rank"
    # Replace each training architecture by a random equivalent encoding (space.augment)
    # every epoch, as the official code swaps the two branches of a node.
    augment: bool = True
    # Random, unevaluated architectures the encoder/decoder first learn to reconstruct
    # (0 = none, as the official NAO; SemiNAS, the authors' follow-up, uses unlabelled
    # architectures too). They cost no queries and make decoding of moved embeddings reliable.
    pretrain_archs: int = 1000
    # Gradient steps (mini-batches of batch_size) of that reconstruction pre-training.
    pretrain_steps: int = 200
    # Adam learning rate of the pre-training (reconstruction alone tolerates a larger one).
    pretrain_lr: float = 1e-2
    # Largest step size eta tried by generation (official: 50-100 for 40-token cells).
    max_step: float = 50.0
    # Step-size increment: eta = step_increment, 2*step_increment, ... (official: 1).
    step_increment: float = 1.0
    # (project default) Sequences kept per moved embedding when decoding proposals:
    # 1 = greedy (official); W > 1 keeps the W most likely, so when the greedy result was
    # already evaluated the most likely *new* architecture near the embedding is used.
    beam_width: int = 16

    def __post_init__(self) -> None:
        positive = ("embedding_size", "hidden_size", "layers", "mlp_hidden_size", "batch_size", "beam_width")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"controller.{name} must be >= 1, got {getattr(self, name)}")
        if self.mlp_layers < 0:
            raise ConfigError(f"controller.mlp_layers must be >= 0, got {self.mlp_layers}")
        if not 0.0 <= self.trade_off <= 1.0:
            raise ConfigError(f"controller.trade_off must be in [0, 1], got {self.trade_off}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"controller.dropout must be in [0, 1), got {self.dropout}")
        if self.predictor_output not in ("sigmoid", "linear"):
            raise ConfigError(f"controller.predictor_output must be 'sigmoid' or 'linear', got {self.predictor_output!r}")
        if self.target_transform not in ("minmax", "rank"):
            raise ConfigError(f"controller.target_transform must be 'minmax' or 'rank', got {self.target_transform!r}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"controller.epochs must be >= 1, got {self.epochs}")
        if self.pretrain_archs < 0 or self.pretrain_steps < 0 or self.pretrain_lr <= 0:
            raise ConfigError("controller.pretrain_archs/steps must be >= 0 and pretrain_lr > 0")
        if self.lr <= 0 or self.step_increment <= 0 or self.max_step < self.step_increment:
            raise ConfigError("controller.lr and step_increment must be > 0 and max_step >= step_increment")


def official() -> ControllerConfig:
    """The official code's controller: sigmoid predictor, min-max targets, greedy decoding,
    no position embeddings and no reconstruction pre-training."""
    return ControllerConfig(
        positional=False,
        predictor_output="sigmoid",
        target_transform="minmax",
        pretrain_archs=0,
        beam_width=1,
    )


def paper() -> ControllerConfig:
    """The official controller with the values the NAO paper states: lambda 0.9, eta 10."""
    return official().override(trade_off=0.9, max_step=10.0)


# Sequences up to this many tokens get the compact controller of :func:`for_space`.
_SHORT_SPACE = 12


def for_space(space: Any) -> ControllerConfig:
    """Default controller for a space: official sizes, compact for short sequences.

    A 6-token space such as NAS-Bench-201 (vocabulary 5) needs far less capacity than a
    40-token conv cell; the compact controller (embedding 32, hidden 64, MLP 3x64) fits
    in a fraction of the time. The rule depends only on ``space.length``, never on a
    benchmark.
    """
    if space.length <= _SHORT_SPACE:
        return ControllerConfig(embedding_size=32, hidden_size=64, mlp_hidden_size=64)
    return ControllerConfig()
