"""The Ray Tune adapter around the shared training function.

Every epoch's metrics are reported to Tune, which trial schedulers such as ASHA
use to stop weak trials early. The training itself is plain PyTorch
(:class:`~tune_app.training.TrainingRun`), the same that ``tune-app train`` runs.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from ray import tune

from .training import DataBundle, TrainConfig, TrainingRun


def train_trial(
    config: dict[str, Any],
    *,
    make_config: Callable[[dict[str, Any]], TrainConfig],
    data: DataBundle,
    num_threads: int = 1,
) -> None:
    """One trial: ``config`` is the flat dict of searched values Tune sampled."""
    torch.set_num_threads(num_threads)
    run = TrainingRun(make_config(config), data=data)
    for metrics in run.epochs():
        tune.report(metrics)
