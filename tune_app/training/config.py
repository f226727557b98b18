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
TASKS = ("classification", "segmentation")

# Metrics each task reports every epoch, with the direction that is better.
METRICS: dict[str, dict[str, str]] = {
    "classification": {"val_acc": "max", "val_f1": "max", "val_loss": "min", "train_loss": "min"},
    "segmentation": {"val_dice": "max", "val_iou": "max", "val_pixel_acc": "max", "val_loss": "min",
                     "train_loss": "min"},
}


def _amp_from_yaml(value: Any) -> Any:
    # `amp: off` is YAML 1.1's boolean false; accept it as the mode "off".
    if value is True:
        raise ValueError(f"must be one of {list(AMP_MODES)}, got on/true (YAML's true): say which precision, "
                         f"e.g. bf16")
    return "off" if value is False else value


class FreezeDepth:
    """``freeze_depth``: an integer number of leading backbone stages, or ``all`` (everything but the head).

    Whether the number fits the model is checked where the model is known (the spec).
    """

    kind = int
    help = "leading backbone stages frozen (stem included); 0 trains everything, all freezes all but the head"

    def check(self, value: Any) -> Any:
        if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f"must be an integer >= 0 or 'all', got {value!r}")

    def describe(self) -> str:
        return "an integer >= 0, or all"


KNOBS: dict[str, Param | dict] = {
    "lr": positive(help="learning rate (peak lr for onecycle)"),
    "weight_decay": non_negative(help="decoupled or L2 weight decay; not applied to biases and norms"),
    "momentum": fraction(high_open=True, help="momentum of sgd / momentum / rmsprop"),
    "optimizer": one_of(*OPTIMIZERS, help="optimizer family"),
    "batch_size": positive(int, help="training batch size"),
    "amp": one_of(*AMP_MODES, coerce=_amp_from_yaml, help="mixed precision"),
    "freeze_depth": FreezeDepth(),
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
    encoder: str | None = None  # smp/<arch> models: the timm encoder
    pretrained: bool | str = False  # a path after the driver resolved it
    freeze_depth: int | str = 0
    freeze_bn: bool = True  # frozen BatchNorm layers stay in eval mode
    # data
    dataset: str = "digits"
    image_size: int = 32
    batch_size: int = 64
    num_workers: int = 0
    train_dir: str | None = None
    val_dir: str | None = None
    binary: bool = False
    hflip: bool = False
    scale: tuple[float, float] | None = None
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
    channels_last: bool | None = None  # None: on CUDA only

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
