"""From a split to device batches: both ways of reading array splits, order and prefetching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tune_app.training.datasets import ArrayDataset, BatchLoader, BatchTransform, DataConfig, build_data
from tune_app.training.loading import SplitLoader


@pytest.fixture(scope="module")
def digits():
    return build_data(DataConfig(image_size=16))


def epoch(split: SplitLoader, seed: int = 0, **kwargs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    split.loader.generator = torch.Generator().manual_seed(seed)
    return [(x.clone(), y.clone()) for x, y in split.batches(torch.device("cpu"), **kwargs)]


@pytest.mark.parametrize("cut_on_cpu", [True, False])
def test_a_pass_covers_every_item_once_in_the_generators_order(digits, cut_on_cpu):
    split = SplitLoader(digits.val, 64, shuffle=True)
    split.cut_on_cpu = cut_on_cpu
    first, again, other = epoch(split), epoch(split), epoch(split, seed=1)
    labels = torch.cat([y for _, y in first])
    assert sorted(labels.tolist()) == sorted(digits.val.targets.tolist())
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(first, other))
    assert all(x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64 for x, y in first)


def test_both_ways_give_the_same_validation_batches(digits):
    cut = SplitLoader(digits.val, 50)
    gpu_way = SplitLoader(digits.val, 50)
    gpu_way.cut_on_cpu = False
    for (x, y), (x2, y2) in zip(epoch(cut), epoch(gpu_way)):
        torch.testing.assert_close(x, x2)
        assert torch.equal(y, y2)


def test_reused_buffers_alternate_so_the_previous_batch_survives(digits):
    split = SplitLoader(digits.val, 64)
    batches = split.batches(torch.device("cpu"), reuse=True)
    first = next(batches)[0]
    kept = first.clone()
    second = next(batches)[0]
    assert torch.equal(first, kept) and first.data_ptr() != second.data_ptr()
    third = next(batches)[0]
    assert third.data_ptr() == first.data_ptr()  # the buffer of two batches ago, written again


def test_prefetching_reads_every_batch_and_passes_errors_on():
    images = np.arange(40 * 4 * 4 * 3, dtype=np.uint8).reshape(40, 4, 4, 3)
    split = ArrayDataset(images, np.arange(40), BatchTransform(4, mean=(0,) * 3, std=(1,) * 3))
    loader = BatchLoader(split, 8, prefetch=True)
    assert sorted(torch.cat([t for _, t in loader]).tolist()) == list(range(40))

    class Broken(ArrayDataset):
        def read(self, positions):
            if positions[0] >= 16:
                raise OSError("the disk went away")
            return super().read(positions)

    broken = BatchLoader(Broken(images, np.arange(40), split.transform), 8, prefetch=True)
    seen = []
    with pytest.raises(OSError, match="the disk went away"):
        for _, targets in broken:
            seen.append(targets)
    assert len(seen) == 2
