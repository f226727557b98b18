"""A trial's complete, plain configuration and the knobs a search may turn.

:class:`TrainConfig` is what the training function runs from: no Ray, no YAML, no
pydantic. ``KNOBS`` lists every hyperparameter that may appear under ``search:``:
either a :class:`~tune_app.schema.Param` (a value) or a registry (a family
such as ``loss`` whose options carry their own parameters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..schema import Param, fraction, non_negative, one_of, positive
from .augment_policies import AUGMENTS
from .datasets import DataConfig, scale_problem
from .losses import LOSSES
from .lr_schedules import LR_SCHEDULES
from .mixing import MIXUP_MODES, MixingConfig
from .optimizers import OPTIMIZERS
from .tasks import METRICS, TASKS  # noqa: F401  (part of this module's public face)

AMP_MODES = ("off", "fp16", "bf16", "auto")


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


class AreaRange:
    """``scale``: RandomResizedCrop's area range ``[low, high]`` of training images (also ``data.scale``)."""

    kind = list
    help = "RandomResizedCrop's area range [low, high] of training images (also data.scale)"

    def check(self, value: Any) -> Any:
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise ValueError(f"must be a list [low, high] of two numbers, got {value!r}")
        if problem := scale_problem(value):
            raise ValueError(problem)
        return [float(v) for v in value]

    def describe(self) -> str:
        return "a list [low, high] with 0 < low <= high <= 1 (search it as a choice of ranges)"


KNOBS: dict[str, Param | dict] = {
    "lr": positive(help="learning rate (peak lr for onecycle)"),
    "weight_decay": non_negative(help="decoupled or L2 weight decay; not applied to biases and norms"),
    "momentum": fraction(high_open=True, help="momentum of sgd / momentum / rmsprop"),
    "optimizer": OPTIMIZERS,
    "batch_size": positive(int, help="training batch size"),
    "amp": one_of(*AMP_MODES, coerce=_amp_from_yaml, help="mixed precision"),
    "freeze_depth": FreezeDepth(),
    "unfreeze_epoch": non_negative(int, help="epochs trained with freeze_depth (the head first), then every layer "
                                             "trains (fastai's fine_tune); unset: freeze_depth holds throughout"),
    "drop_path": fraction(high_open=True, help="stochastic depth: the deepest block's drop-path rate (timm's "
                                               "drop_path_rate, torchvision's stochastic_depth_prob); 0 is off"),
    "dropout": fraction(high_open=True, help="dropout before the classifier (timm's drop_rate, torchvision's "
                                             "dropout); 0 is off"),
    "layer_decay": Param(float, low=0.0, high=1.0, low_open=True,
                         help="layer-wise lr decay: a layer n groups below the head learns at lr * layer_decay**n "
                              "(timm models); 1 is off"),
    "head_lr_mult": Param(float, low=1.0, help="the head's lr as a multiple of lr (the new classifier; a "
                                               "segmentation model's decoder and head); 1 is off"),
    "ema": fraction(high_open=True, help="decay of an exponential moving average of the weights, evaluated as "
                                         "val_* (the raw weights as val_*_raw); 0 is off"),
    "mixup": non_negative(help="mixup's Beta alpha: images and labels mixed in pairs (timm's Mixup); 0 is off; "
                               "classification, with ce, bce or focal"),
    "cutmix": non_negative(help="cutmix's Beta alpha: a box of one image pasted into its pair, labels mixed by "
                                "area; 0 is off"),
    "mixup_prob": fraction(help="chance that a batch is mixed at all (default 1)"),
    "mixup_switch_prob": fraction(help="chance of cutmix instead of mixup when both are on (default 0.5)"),
    "mixup_mode": one_of(*MIXUP_MODES, help="one mixing draw per batch, per pair or per image (default batch)"),
    "hflip": Param(bool, help="random horizontal flips of training images (also data.hflip)"),
    "scale": AreaRange(),
    "augment": AUGMENTS,
    "loss": LOSSES,
    "scheduler": LR_SCHEDULES,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one trial needs, with plain values; the data part is a :class:`DataConfig`.

    Frozen: a different trial is a new config (``dataclasses.replace``).

    Example:
        >>> config = TrainConfig(epochs=2, loss={"name": "focal", "gamma": 2.0}, data=DataConfig(image_size=16))
        >>> config.loss["name"], config.task, config.data.image_size, config.optimizer
        ('focal', 'classification', 16, {'name': 'adamw'})
    """

    # what to train
    model: str = "timm/resnet18"
    encoder: str | None = None  # smp/<arch> models: the timm encoder
    pretrained: bool | str = False  # a path after the driver resolved it
    freeze_depth: int | str = 0
    freeze_bn: bool = True  # frozen BatchNorm layers stay in eval mode
    unfreeze_epoch: int | None = None  # after this many epochs every layer trains; None: freeze_depth holds
    # regularization built into the model (None: the model's own default; see training/regularization.py)
    drop_path: float | None = None
    dropout: float | None = None
    # data: what to read (the task included); the batch size is a knob of its own
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 64
    # optimization
    epochs: int = 8
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "adamw"})  # name plus its parameters
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    # how fast the backbone learns next to the head (see training/param_groups.py)
    layer_decay: float | None = None
    head_lr_mult: float = 1.0
    ema: float = 0.0  # decay of the weights' moving average; 0 is off (see training/ema.py)
    # mixing images and labels on the batch (see training/mixing.py); 0 is off
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    mixup_mode: str = "batch"
    augment: dict[str, Any] = field(default_factory=lambda: {"name": "none"})  # see training/augment_policies.py
    loss: dict[str, Any] = field(default_factory=lambda: {"name": "ce"})
    scheduler: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    amp: str = "off"
    precise_bn: int | str = "auto"  # auto | off | N batches: BatchNorm statistics recomputed before evaluating
    # out of memory: retry the batch in micro-batches of half the size, down to oom_min_batch images
    oom_retry: bool = True
    oom_min_batch: int = 8
    # reproducibility and placement
    seed: int = 0
    deterministic: bool = False  # cuDNN deterministic, no cuDNN benchmark, torch's deterministic algorithms
    device: str = "auto"
    channels_last: bool | None = None  # None: on CUDA only

    def __post_init__(self) -> None:
        if isinstance(self.optimizer, str):  # a bare name, as in YAML
            object.__setattr__(self, "optimizer", {"name": self.optimizer})
        if isinstance(self.augment, str):
            object.__setattr__(self, "augment", {"name": self.augment})

    @property
    def regularization(self) -> dict[str, float | None]:
        """What :func:`~tune_app.training.models.create_model` builds the model with."""
        return {"drop_path": self.drop_path, "dropout": self.dropout}

    @property
    def mixing(self) -> MixingConfig:
        """What :class:`~tune_app.training.mixing.BatchMixing` mixes the training batches with."""
        return MixingConfig(self.mixup, self.cutmix, self.mixup_prob, self.mixup_switch_prob, self.mixup_mode)

    @property
    def task(self) -> str:
        """The task, which the data decides (class labels or masks)."""
        return self.data.task

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict` (e.g. the config a checkpoint carries).

        Example:
            >>> config = TrainConfig(lr=0.01, data=DataConfig(image_size=16))
            >>> TrainConfig.from_dict(config.to_dict()) == config
            True
        """
        return cls(**{**values, "data": DataConfig(**values["data"])})
