"""Loss registry: name -> factory, with the parameters each loss accepts.

Every loss takes raw logits ``[B, C]`` and integer class targets ``[B]`` and returns
the mean loss over the batch.

Example:
    >>> loss = create_loss({"name": "focal", "gamma": 2.0}, task="classification", num_classes=10)
    >>> loss(torch.zeros(4, 10), torch.tensor([0, 1, 2, 3])).shape
    torch.Size([])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .params import Param, fraction, non_negative


@dataclass(frozen=True)
class LossInfo:
    """A registered loss: its factory, its parameters and the tasks it applies to."""

    factory: Callable[..., nn.Module]
    params: dict[str, Param] = field(default_factory=dict)
    tasks: tuple[str, ...] = ("classification",)
    help: str = ""


class FocalLoss(nn.Module):
    """Softmax focal loss (Lin et al. 2017) for single-label multi-class problems.

    ``loss = -alpha * (1 - p_t) ** gamma * log(p_t)`` where ``p_t`` is the softmax
    probability of the true class; ``gamma = 0`` and ``alpha = 1`` give cross entropy.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # log_softmax in float32: autocast would otherwise compute it in bf16.
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -self.alpha * (1.0 - log_p.exp()).pow(self.gamma) * log_p
        return loss.mean()


def _cross_entropy(label_smoothing: float = 0.0) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


LOSSES: dict[str, LossInfo] = {
    "ce": LossInfo(
        _cross_entropy,
        {"label_smoothing": fraction(high_open=True, help="mass spread over the other classes")},
        help="cross entropy",
    ),
    "focal": LossInfo(
        FocalLoss,
        {
            "alpha": fraction(help="weight of the loss (softmax form)"),
            "gamma": non_negative(help="focusing exponent; 0 gives cross entropy"),
        },
        help="focal loss, down-weights easy examples",
    ),
}


def create_loss(config: dict[str, Any], task: str, num_classes: int) -> nn.Module:
    """Build the loss named by ``config["name"]`` with the rest of ``config`` as kwargs."""
    kwargs = dict(config)
    name = kwargs.pop("name")
    info = LOSSES.get(name)
    if info is None:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
    if task not in info.tasks:
        raise ValueError(f"loss {name!r} does not apply to task {task!r}; it supports {', '.join(info.tasks)}")
    return info.factory(**kwargs)
