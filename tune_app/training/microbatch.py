"""Micro-batches: a batch too big for the device's memory, trained in pieces with gradient accumulation.

The loader still yields whole batches (the same images in the same order), each is split
into micro-batches whose gradients, weighted by their share of the batch, add up to the
whole batch's; the optimizer steps once per batch. So the optimizer takes the same steps,
the LR schedule is the same, and the gradients are the same up to rounding, except for
what sees the micro-batch alone: BatchNorm's batch statistics, and losses over the whole
batch (dice, iou).

Example:
    >>> smaller_micro_batch(64, minimum=8), smaller_micro_batch(8, minimum=8)
    (32, None)
    >>> accumulation(64, 16), accumulation(50, 13)
    (4, 4)
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


def smaller_micro_batch(current: int, minimum: int) -> int | None:
    """Half of ``current`` (rounded up), or None when that would go below ``minimum``."""
    half = math.ceil(current / 2)
    return half if half >= minimum and half < current else None


def accumulation(batch_size: int, micro_batch: int) -> int:
    """Micro-batches (gradient accumulation steps) per batch of ``batch_size``."""
    return math.ceil(batch_size / micro_batch)


def split(images: torch.Tensor, targets: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """``(images, targets, share of the batch)`` for each micro-batch of at most ``size`` images."""
    total = len(targets)
    for start in range(0, total, size):
        part = targets[start:start + size]
        yield images[start:start + size], part, len(part) / total
