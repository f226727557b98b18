"""From a dataset split to batches on the trial's device, ready for the model.

Array-backed splits (every built-in dataset, and folders read through the cache) are
read a batch at a time and moved to the device as stored (uint8), then augmented
there by the split's batch transform. Splits read per item (``data.cache: off``) go
through a torch ``DataLoader`` (with ``data.num_workers`` processes) that transforms
each item on the CPU.

Example:
    >>> from tune_app.training.datasets import DataConfig, build_data
    >>> data = build_data(DataConfig(image_size=16))
    >>> split = SplitLoader(data.val, batch_size=100)
    >>> images, labels = next(split.batches(torch.device("cpu")))
    >>> tuple(images.shape), images.dtype, labels.dtype
    ((100, 3, 16, 16), torch.float32, torch.int64)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from .datasets import ArrayDataset, BatchLoader


class SplitLoader:
    """One split's batches: shuffled from ``generator`` when asked, on ``device``, transformed.

    Args:
        dataset: The split.
        batch_size: Items per batch.
        shuffle: A new order every pass, drawn from ``generator``.
        drop_last: Leave out a last, smaller batch.
        generator: The shuffling generator (its state is part of a checkpoint).
        num_workers: DataLoader worker processes, for splits read per item.
        pin_memory: Pin host memory for asynchronous copies (CUDA).
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                 generator: torch.Generator | None = None, num_workers: int = 0, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.arrays = isinstance(dataset, ArrayDataset)
        # On the CPU each crop is cut from the stored array; False takes a GPU's way there too (tests).
        self.cut_on_cpu = True
        if self.arrays:
            self.loader: BatchLoader | DataLoader = BatchLoader(dataset, batch_size, shuffle=shuffle,
                                                                 drop_last=drop_last, generator=generator,
                                                                 pin_memory=pin_memory)
        else:
            self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                                     generator=generator, num_workers=num_workers, pin_memory=pin_memory,
                                     persistent_workers=num_workers > 0)

    def __len__(self) -> int:
        return len(self.loader)

    def batches(self, device: torch.device, memory_format: torch.memory_format = torch.contiguous_format,
                augment: torch.Generator | None = None,
                reuse: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every batch of one pass, on ``device``; ``augment`` draws the random augmentation.

        With ``reuse`` (a training loop that is done with a batch when it asks for the one
        after next), CPU batches are written into two alternating buffers.
        """
        if self.arrays and device.type == "cpu" and self.cut_on_cpu:  # no copy of whole squares
            buffers: list[torch.Tensor | None] = [None, None]
            for step, positions in enumerate(self.loader.positions()):
                images, targets = self.dataset.transformed(positions, augment, buffers[step % 2])
                if reuse and buffers[step % 2] is None:
                    buffers[step % 2] = images
                yield images.contiguous(memory_format=memory_format), targets
            return
        for images, targets in self.loader:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if self.arrays:  # raw squares, augmented here on the device
                images, masks = self.dataset.transform(images, targets if targets.ndim == 3 else None, augment)
                targets = targets if masks is None else masks
            yield images.contiguous(memory_format=memory_format), targets.long()
