"""A trial's complete, plain configuration and the knobs a search may turn.

:class:`TrainConfig` is what the training function runs from: no Ray, no YAML, no
pydantic. ``KNOBS`` lists every hyperparameter that may appear under ``search:``:
either a :class:`~tune_app.training.params.Param` (a value) or a registry (a family
such as ``loss`` whose options carry their own parameters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .params import Param, fraction, non_negative, one_of, positive
from .schedulers import SCHEDULERS

AMP_MODES = ("off", "fp16", "bf16", "auto")
TASKS = ("classification",)

# Metrics each task reports every epoch, with the direction that is better.
METRICS: dict[str, dict[str, str]] = {
    "classification": {"val_acc": "max", "val_f1": "max", "val_loss": "min", "train_loss": "min"},
}


def _amp_from_yaml(value: Any) -> Any:
    # `amp: off` is YAML 1.1's boolean false; accept it as the mode "off".
    return "off" if value is False else value


KNOBS: dict[str, Param | dict] = {
    "lr": positive(help="learning rate (peak lr for onecycle)"),
    "weight_decay": non_negative(help="decoupled or L2 weight decay; not applied to biases and norms"),
    "momentum": fraction(high_open=True, help="momentum of sgd / momentum / rmsprop"),
    "optimizer": one_of(*OPTIMIZERS, help="optimizer family"),
    "batch_size": positive(int, help="training batch size"),
    "amp": one_of(*AMP_MODES, coerce=_amp_from_yaml, help="mixed precision"),
    "loss": LOSSES,
    "scheduler": SCHEDULERS,
}


@dataclass
class TrainConfig:
    """Everything one trial needs, with plain values.

    Example:
        >>> TrainConfig(epochs=2, loss={"name": "focal", "gamma": 2.0}).loss["name"]
        'focal'
    """

    # what to train
    task: str = "classification"
    model: str = "timm/resnet18"
    pretrained: bool = False
    # data
    dataset: str = "digits"
    image_size: int = 32
    batch_size: int = 64
    num_workers: int = 0
    # optimization
    epochs: int = 8
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    loss: dict[str, Any] = field(default_factory=lambda: {"name": "ce"})
    scheduler: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    amp: str = "off"
    # reproducibility and placement
    seed: int = 0
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
