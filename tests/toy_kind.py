"""A run kind defined outside the library: one module, one registration (``@register_kind``).

Importing this module adds ``nao search toy`` with its own flag ``--bonus``; no table of the library is
edited. ``tests/test_plugin_kind.py`` runs it through the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fakes import TokenSum
from nao.config import Config, setting
from nao.presets import register_preset
from nao.results import Objective
from nao.runs.flags import flag
from nao.runs.skeleton import RunContext, RunKind, Search, register_kind
from nao.spaces import get_space


@dataclass
class ToyConfig(Config):
    """A search of NB201 cells scored by their token sum (plus ``bonus``)."""

    preset: str = "default"
    space: str = "nb201"
    strategy: str = "random"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    budget: int = 5
    max_cost: float | None = None
    seed: int = 0
    bonus: float = setting(0.0, min=0.0)


@register_preset("toy", "default")
def _default() -> ToyConfig:
    return ToyConfig()


@register_preset("toy", "long")
def _long() -> ToyConfig:
    return ToyConfig(preset="long", budget=12)


@register_kind
class ToyKind(RunKind):
    name = "toy"
    task, evaluator, default_for_task = "toy", "tokens", True
    help = "a toy search (tests): token sums"
    config_class = ToyConfig
    flags = (flag("--bonus", type=float, help="added to every score"),)
    scores_from = "table"
    resumable_changes = ("budget",)

    def prepare(self) -> None:
        self.space = get_space(self.config.space)

    def build(self, ctx: RunContext) -> Search:
        from nao.strategies import make_strategy

        cfg = self.config
        strategy = make_strategy(cfg.strategy, self.space, seed=cfg.seed, **cfg.strategy_options)
        return Search(self.space, TokenSum(self.space), strategy, Objective("val_acc", "max"), cfg.budget)

    def finish(self, ctx: RunContext, search: Search, study) -> dict[str, Any]:
        return {"bonus": self.config.bonus}
