"""The shared training function: plain PyTorch, no Ray imports."""

from . import timm_import  # noqa: F401  (first: this process's import of timm leaves W&B out)
from .config import KNOBS, METRICS, TASKS, TrainConfig
from .datasets import DATASETS, DataBundle, DataConfig, build_data
from .engine import DivergedError, TrainingRun
from .losses import LOSSES
from .lr_schedules import LR_SCHEDULES

__all__ = [
    "DATASETS",
    "KNOBS",
    "LOSSES",
    "LR_SCHEDULES",
    "METRICS",
    "TASKS",
    "DataBundle",
    "DataConfig",
    "DivergedError",
    "TrainConfig",
    "TrainingRun",
    "build_data",
]
