"""The shared training function: plain PyTorch, no Ray imports."""

from .config import KNOBS, METRICS, TASKS, TrainConfig
from .data import DATASETS, DataBundle, DataConfig, build_data
from .engine import DivergedError, TrainingRun
from .losses import LOSSES
from .schedulers import SCHEDULERS

__all__ = [
    "DATASETS",
    "KNOBS",
    "LOSSES",
    "METRICS",
    "SCHEDULERS",
    "TASKS",
    "DataBundle",
    "DataConfig",
    "DivergedError",
    "TrainConfig",
    "TrainingRun",
    "build_data",
]
