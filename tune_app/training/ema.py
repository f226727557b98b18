"""An exponential moving average of a trial's weights (``ema``), evaluated beside the raw weights.

timm's :class:`~timm.utils.ModelEmaV3` keeps the average (parameters and BatchNorm
statistics) after every optimizer step. Its warmup is on: the decay at step t is
``min(ema, 1 - t ** -2/3)``, so the average of a short trial (one an early-stopping
scheduler ends after an epoch) follows the training instead of staying at the initial
weights: the first step's average is the weights themselves (as in timm's ``train.py``).
With ``ema`` on, a trial's ``val_*`` metrics are the average's and ``val_*_raw`` the raw
weights'; the checkpoint keeps both, and ``best_model/`` the scored ones.

Example:
    >>> from torch import nn
    >>> average = WeightAverage(nn.Linear(2, 1), decay=0.9)
    >>> average.decay_at(1), round(average.decay_at(2), 3), average.decay_at(100)
    (0.0, 0.37, 0.9)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s weights; :meth:`update` after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        from timm.utils import ModelEmaV3

        self._ema = ModelEmaV3(model, decay=decay, use_warmup=True)
        self.steps = 0  # optimizer steps averaged so far

    @property
    def module(self) -> nn.Module:
        return self._ema.module

    @property
    def decay(self) -> float:
        return self._ema.decay

    @decay.setter
    def decay(self, value: float) -> None:  # PBT perturbs it
        self._ema.decay = value

    def decay_at(self, step: int) -> float:
        """The decay applied at optimizer step ``step`` (1 is the first)."""
        return self._ema.get_decay(step)

    def update(self, model: nn.Module) -> None:
        self.steps += 1
        self._ema.update(model, step=self.steps)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.steps = int(state["steps"])

    def restart_from(self, model: nn.Module) -> None:
        """A checkpoint without an average (ema was off): start it at the loaded weights."""
        self._ema.set(model)
        self.steps = 0


def scored_weights(state: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
    """The weights a checkpoint's metrics were measured on: the average's when ``ema`` was on."""
    ema = state.get("ema")
    return ema["weights"] if ema else state["model"]


def raw_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The raw weights' validation metrics, renamed ``val_*_raw``."""
    return {f"{key}_raw": value for key, value in metrics.items()}
