"""Splits whose images live in one array, read a batch at a time: the input path of every dataset.

The built-in datasets hold their arrays in memory; folder datasets map the decoded-once
cache (see :mod:`._cache`). A :class:`BatchLoader` draws index batches; on a GPU the raw
squares of a batch are gathered (in a background thread), copied as uint8 (a quarter of
float32's bytes) and augmented there by the split's :class:`~._augment.BatchTransform`;
on the CPU the transform cuts each image's crop straight from the array. No image is
decoded and nothing runs per item in Python but the crop of each image.

Example:
    >>> import numpy as np
    >>> from ._augment import BatchTransform
    >>> images = np.zeros((10, 8, 8, 3), np.uint8)
    >>> split = ArrayDataset(images, np.arange(10) % 2, BatchTransform(8, mean=(0.5,) * 3, std=(0.5,) * 3))
    >>> [tuple(x.shape) for x, _ in BatchLoader(split, batch_size=4)]   # raw batches, for a GPU
    [(4, 8, 8, 3), (4, 8, 8, 3), (2, 8, 8, 3)]
    >>> tuple(split.transformed(np.arange(4))[0].shape)               # transformed on the CPU
    (4, 3, 8, 8)
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ._augment import BatchTransform


class ArrayDataset(Dataset):
    """One split of images stored as ``[N, S, S, C]`` squares (channels last), with class labels or masks.

    Args:
        images: ``[N, S, S, C]`` uint8, or float32 in [0, 1]: a NumPy array, or an array-like
            with ``shape``, ``dtype`` and NumPy indexing (the mapped cache).
        targets: ``[N]`` class labels, or ``[N, S, S]`` raw mask values (uint8).
        transform: The split's batch transform (augmentation on training splits).
        rows: The rows of ``images`` and ``targets`` that form this split; None: all of them.
        lut: For masks: 256 entries, raw value -> class index; None: values are classes.
        paths: The image file of each row, where there is one (folder datasets).
    """

    def __init__(self, images: Any, targets: Any, transform: BatchTransform, rows: np.ndarray | None = None,
                 lut: np.ndarray | None = None, paths: Sequence[str] | None = None) -> None:
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets_all = targets
        self.transform = transform
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.lut = lut
        self.paths = paths

    def __len__(self) -> int:
        return len(self.targets_all) if self.rows is None else len(self.rows)

    @property
    def segmentation(self) -> bool:
        return len(self.targets_all.shape) == 3

    @property
    def targets(self) -> np.ndarray:
        """The class label of every item (classification)."""
        labels = np.asarray(self.targets_all)
        return labels if self.rows is None else labels[self.rows]

    @property
    def masks(self) -> Any:
        """The raw masks of every row of the array (segmentation)."""
        if not self.segmentation:
            raise AttributeError("a classification split has labels, not masks")
        return self.targets_all

    @property
    def samples(self) -> list[tuple[str, int]]:
        """``(path, label)`` of every item, for splits read from files."""
        if self.paths is None:
            raise AttributeError("this split was not read from files")
        rows = range(len(self.paths)) if self.rows is None else self.rows
        return [(self.paths[r], int(self.targets_all[r])) for r in rows]

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        return positions if self.rows is None else self.rows[positions]

    def read(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw batch at ``positions`` of this split: stored squares and labels or class masks (CPU)."""
        rows = self._rows(positions)
        images = torch.from_numpy(np.ascontiguousarray(self.images[rows]))
        targets = np.asarray(self.targets_all[rows])
        if targets.ndim == 3 and self.lut is not None:
            targets = self.lut[targets]
        return images, torch.from_numpy(np.ascontiguousarray(targets))

    def transformed(self, positions: np.ndarray, generator: torch.Generator | None = None,
                    out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch at ``positions``, transformed on the CPU straight from the stored arrays (into ``out``)."""
        rows = self._rows(positions)
        masks = self.targets_all if self.segmentation else None
        images, out_masks = self.transform.gather(self.images, rows, masks, self.lut, generator, out)
        if out_masks is not None:
            return images, out_masks.long()
        return images, torch.from_numpy(np.asarray(self.targets_all[rows], dtype=np.int64))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One item, transformed (random draws from torch's global generator)."""
        images, targets = self.transformed(np.array([index]))
        return images[0], targets[0]


class BatchLoader:
    """Index batches of an :class:`ArrayDataset`, and its raw batches (for a copy to a GPU).

    Args:
        dataset: The split.
        batch_size: Items per batch.
        shuffle: A new order every pass, drawn from ``generator`` (so a checkpoint holds it).
        drop_last: Leave out a last, smaller batch.
        generator: The shuffling generator.
        pin_memory: Pin raw batches for asynchronous copies to a GPU.
        prefetch: Read the next batches in a background thread while the current one trains
            (default: with ``pin_memory``, i.e. for a GPU).
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                 generator: torch.Generator | None = None, pin_memory: bool = False,
                 prefetch: bool | None = None) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.pin_memory = pin_memory
        self.prefetch = pin_memory if prefetch is None else prefetch

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def positions(self) -> list[np.ndarray]:
        """One pass's index batches (a new order per call when shuffling)."""
        count = len(self.dataset)
        order = torch.randperm(count, generator=self.generator).numpy() if self.shuffle else np.arange(count)
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        # sorted within a batch: the mapped file is read in order (a batch is a set to the model)
        return [np.sort(order[start:start + self.batch_size]) for start in starts]

    def _read(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = self.dataset.read(positions)
        if self.pin_memory:
            images, targets = images.pin_memory(), targets.pin_memory()
        return images, targets

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Raw batches: stored squares ``[B, S, S, C]`` and targets, untransformed."""
        batches = self.positions()  # the order is drawn now, in this thread
        if not self.prefetch:
            for positions in batches:
                yield self._read(positions)
            return
        yield from _prefetched(self._read, batches)


def _prefetched(read: Any, batches: list[np.ndarray], depth: int = 2) -> Iterator[Any]:
    """``read(b)`` for each batch, computed up to ``depth`` batches ahead in a background thread."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for positions in batches:
                if stop.is_set():
                    return
                ready.put(read(positions))
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)
        ready.put(done)

    thread = threading.Thread(target=work, daemon=True, name="tune-app-batches")
    thread.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
