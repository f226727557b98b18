"""Optimizer registry over timm's optimizer factory.

timm's ``create_optimizer_v2`` already does what a careful fine-tuner wants: no
weight decay on biases and normalization weights, and only the keyword arguments
each optimizer class accepts (``momentum`` reaches SGD, not AdamW).

Example:
    >>> from torch import nn
    >>> create_optimizer("adamw", nn.Linear(2, 2), lr=1e-3, weight_decay=0.01).__class__.__name__
    'AdamW'
"""

from __future__ import annotations

from torch import nn
from torch.optim import Optimizer

# YAML name -> timm optimizer name. timm's "sgd" is Nesterov momentum SGD.
OPTIMIZERS: dict[str, str] = {
    "sgd": "sgd",
    "momentum": "momentum",
    "adam": "adam",
    "adamw": "adamw",
    "nadamw": "nadamw",
    "rmsprop": "rmsproptf",
    "lamb": "lamb",
    "lion": "lion",
}


def create_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float = 0.0, momentum: float = 0.9) -> Optimizer:
    """Build optimizer ``name`` over the trainable parameters of ``model``."""
    from timm.optim import create_optimizer_v2

    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return create_optimizer_v2(model, opt=OPTIMIZERS[name], lr=lr, weight_decay=weight_decay, momentum=momentum)
