"""Faults injected for tests: out of GPU memory, which a CPU-only machine cannot run into otherwise.

``TUNE_APP_INJECT_FAULT`` in the environment holds one fault as JSON; it applies to the
trials whose config matches every ``if`` entry (dotted keys):

- ``{"fault": "oom", "epoch": 2}``: the first step of epoch 2 runs out of memory (at any
  micro-batch, so retrying smaller cannot help);
- ``{"fault": "oom", "above_batch": 16}``: every forward pass on more than 16 images runs
  out of memory, as a model too big for the card at that batch would.

Example:
    >>> fault = InjectedOOM(epoch=None, above_batch=16)
    >>> fault.check(epoch=1, first_step=True, images=16)  # fits
    >>> fault.check(epoch=1, first_step=False, images=32)
    Traceback (most recent call last):
    ...
    torch.OutOfMemoryError: CUDA out of memory: 32 images (injected by TUNE_APP_INJECT_FAULT)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch

FAULT_ENV = "TUNE_APP_INJECT_FAULT"


@dataclass(frozen=True)
class InjectedOOM:
    epoch: int | None  # the first step of this epoch raises
    above_batch: int | None  # a forward pass on more images than this raises

    def check(self, epoch: int, first_step: bool, images: int) -> None:
        """Raise ``torch.OutOfMemoryError`` if this forward pass (``images`` of ``epoch``, 1-based) must fail."""
        if (self.epoch is not None and first_step and epoch == self.epoch) or (
                self.above_batch is not None and images > self.above_batch):
            raise torch.OutOfMemoryError(f"CUDA out of memory: {images} images (injected by {FAULT_ENV})")


def injected_oom(config_values: dict[str, Any]) -> InjectedOOM | None:
    """The out-of-memory fault the environment injects into a trial with these config values, if any."""
    text = os.environ.get(FAULT_ENV)
    if not text:
        return None
    fault = json.loads(text)
    if fault.get("fault") != "oom":
        return None
    for key, expected in fault.get("if", {}).items():
        value: Any = config_values
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value != expected:
            return None
    epoch, above = fault.get("epoch"), fault.get("above_batch")
    return InjectedOOM(epoch=None if epoch is None else int(epoch), above_batch=None if above is None else int(above))
