"""``tune-app validate``'s last check: every option of every choice built once, one training step each.

A combination that cannot run (a loss that does not fit the model's output, an LR
schedule longer than the budget, ...) is found here, on the CPU, before a sweep, not in it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..errors import SpecError

if TYPE_CHECKING:
    from ..training.datasets import DataBundle
    from .sections import ExperimentSpec


def rehearse(spec: ExperimentSpec, data: DataBundle) -> int:
    """Build model, loss, optimizer and schedule for each variant of the space and step it once; how many.

    Raises:
        SpecError: A variant fails to build or to take its step (naming the variant and the error).
    """
    from ..training import TrainingRun

    variants = spec.space.variants()
    for flat in variants:
        config = dataclasses.replace(spec.train_config(flat), device="cpu")
        try:
            run = TrainingRun(config, data=data)
            run.train_one_epoch(max_steps=1)
            run.evaluate(max_steps=1)
        except Exception as exc:  # a real problem with this combination: name it
            raise SpecError(f"the configuration {spec.space.nest(flat)} fails to build or train one step: "
                            f"{type(exc).__name__}: {exc}") from None
    return len(variants)
