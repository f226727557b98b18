"""Augmentation of whole batches, drawn once per batch and applied where the batch is.

Images are stored as squares, ``[N, S, S, C]`` (channels last: a crop of one image is
one block of memory) uint8, or float in [0, 1], with class labels ``[N]`` or masks
``[N, S, S]``. Validation takes the centre ``size`` crop; training a RandomResizedCrop
(``scale``: the area share of the stored square, aspect ratio 3/4 to 4/3, drawn as
torchvision draws it) or without ``scale`` the centre crop, then a horizontal flip with
probability 1/2 (``hflip``). Random numbers come from a CPU generator the caller owns,
so a checkpoint can hold its state.

Two ways to apply the same draws:

- on a GPU (:meth:`BatchTransform.__call__`): the stored squares travel as uint8 and one
  ``grid_sample`` resamples the whole batch there;
- on the CPU (:meth:`BatchTransform.gather`): each image's box is cut from the stored
  array (the mapped cache) as a view, resized with torch's vectorized uint8 resize and
  normalized into the batch while it is in the processor's cache, so the full squares
  are never copied.

Example:
    >>> import torch
    >>> t = BatchTransform(4, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, hflip=True, scale=(0.5, 1.0))
    >>> images, masks = t(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), torch.zeros(2, 8, 8, dtype=torch.uint8))
    >>> tuple(images.shape), tuple(masks.shape), images.min().item()
    ((2, 3, 4, 4), (2, 4, 4), -1.0)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's aspect range, as in torchvision and timm
ATTEMPTS = 10  # torchvision's tries at a box inside the image before it falls back to the whole image


def sample_boxes(count: int, side: int, scale: tuple[float, float], generator: torch.Generator | None = None,
                 ratio: tuple[float, float] = RATIO) -> torch.Tensor:
    """RandomResizedCrop boxes ``[count, 4]`` as (top, left, height, width) in pixels of a ``side`` square.

    torchvision's rule, vectorized: area share uniform in ``scale``, log aspect ratio
    uniform in ``ratio``, the first of ``ATTEMPTS`` draws that fits, else the whole
    square; then a uniform position.

    Example:
        >>> boxes = sample_boxes(1000, 64, (0.25, 0.5), torch.Generator().manual_seed(0))
        >>> bool(((boxes[:, 2] * boxes[:, 3]) <= 0.5 * 64 * 64 + 64).all())
        True
    """
    area = side * side
    shares = torch.empty(count, ATTEMPTS).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(count, ATTEMPTS).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = log_ratio.exp()
    widths = (shares * area * aspect).sqrt().round()
    heights = (shares * area / aspect).sqrt().round()
    fits = (widths > 0) & (heights > 0) & (widths <= side) & (heights <= side)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((count,), -1))
    rows = torch.arange(count)
    height = torch.where(first >= 0, heights[rows, first.clamp_min(0)], torch.full((count,), float(side)))
    width = torch.where(first >= 0, widths[rows, first.clamp_min(0)], torch.full((count,), float(side)))
    offsets = torch.rand(count, 2, generator=generator)
    top = (offsets[:, 0] * (side - height + 1)).floor().clamp(0, side - 1)
    left = (offsets[:, 1] * (side - width + 1)).floor().clamp(0, side - 1)
    return torch.stack([top, left, height, width], 1)


class BatchTransform:
    """Crop (random on training, centre on validation), flip, scale to [0, 1] and normalize a batch.

    Args:
        size: Output height and width.
        mean: Per-channel mean, after scaling to [0, 1].
        std: Per-channel standard deviation.
        train: Apply the random augmentation; validation only crops the centre.
        hflip: Flip horizontally with probability 0.5 (training).
        scale: RandomResizedCrop area range of the stored square; None: the centre crop.
        channels: Output channels; one-channel images are repeated to fill them.
        policy: A per-image augmentation policy (``augment``, see
            :mod:`~tune_app.training.augment_policies`), applied to training images after the
            crop and flip, on uint8, before normalization.
    """

    def __init__(self, size: int, *, mean: Sequence[float], std: Sequence[float], train: bool = False,
                 hflip: bool = False, scale: tuple[float, float] | None = None, channels: int = 3,
                 policy: Any = None) -> None:
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.train = train
        self.hflip = hflip
        self.scale = scale
        self.channels = channels
        self.policy = policy

    def for_trial(self, policy: Any, *, hflip: bool, scale: tuple[float, float] | None) -> BatchTransform:
        """This transform with a trial's own augmentation: its policy, flip and crop range."""
        changed = copy.copy(self)
        changed.policy, changed.hflip, changed.scale = policy, hflip, scale
        return changed

    # ---------------------------------------------------------------- draws
    def draw(self, count: int, side: int, generator: torch.Generator | None) -> tuple[Any, Any]:
        """This batch's random choices: boxes (or None: the centre) and flips (or None)."""
        flips = (torch.rand(count, generator=generator) < 0.5) if self.train and self.hflip else None
        boxes = sample_boxes(count, side, self.scale, generator) if self.train and self.scale is not None else None
        return boxes, flips

    def _affine(self, peak: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``x * scale + shift`` is ``(x / peak - mean) / std``, per channel."""
        scale = 1.0 / (self.std * peak)
        return scale.to(device), (-self.mean / self.std).to(device)

    # ------------------------------------------------------- batch on a device
    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A stored batch ``[B, S, S, C]`` (and masks ``[B, S, S]``) where it is -> ``[B, 3, size, size]`` float."""
        count, side = images.shape[0], images.shape[1]
        peak = 255.0 if images.dtype == torch.uint8 else 1.0
        boxes, flips = self.draw(count, side, generator)
        images = images.permute(0, 3, 1, 2)
        if boxes is not None:
            images, masks = self._resample(images, masks, boxes, flips)
        else:
            images, masks = _centre(images, self.size), None if masks is None else _centre(masks, self.size)
            if flips is not None and flips.any():
                flips = flips.to(images.device)
                images = torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)
                masks = None if masks is None else torch.where(flips.view(-1, 1, 1), masks.flip(-1), masks)
        if self.train and self.policy is not None:
            images = self._each_through_policy(_as_bytes(images, peak))
            peak = 255.0
        images = images.float()
        if images.shape[1] != self.channels:
            images = images.expand(-1, self.channels, -1, -1)
        scale, shift = self._affine(peak, images.device)
        return torch.addcmul(shift.view(1, -1, 1, 1), images, scale.view(1, -1, 1, 1)), masks

    def _each_through_policy(self, images: torch.Tensor) -> torch.Tensor:
        """Every uint8 image ``[B, C, H, W]`` through the policy, each with its own draw."""
        out = torch.empty_like(images)
        for k in range(len(images)):
            out[k] = self.policy(images[k])
        return out

    def _resample(self, images: torch.Tensor, masks: torch.Tensor | None, boxes: torch.Tensor,
                  flips: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each image's box resized to ``size`` by one batched grid_sample (bilinear; masks nearest)."""
        side = images.shape[-1]
        top, left, height, width = boxes.unbind(1)
        # affine_grid maps output [-1, 1] onto input [-1, 1] (align_corners=False): scale and shift per box
        sx, sy = width / side, height / side
        cx = (left + width / 2) / side * 2 - 1
        cy = (top + height / 2) / side * 2 - 1
        if flips is not None:
            sx = torch.where(flips, -sx, sx)
        theta = torch.zeros(len(boxes), 2, 3)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, sy, cy
        grid = F.affine_grid(theta.to(images.device), [len(boxes), 1, self.size, self.size], align_corners=False)
        out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        if masks is not None:
            masks = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="border",
                                  align_corners=False)[:, 0].to(masks.dtype)
        return out, masks

    # ------------------------------------------------------- batch on the CPU
    def gather(self, images: Any, rows: np.ndarray, masks: Any = None, lut: np.ndarray | None = None,
               generator: torch.Generator | None = None,
               out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The transformed batch of ``rows`` of stored arrays (NumPy or mapped), cut image by image on the CPU.

        ``masks`` (``[N, S, S]`` raw values, mapped through ``lut``) come back as uint8 class masks.
        ``out``, a float ``[>= len(rows), C, size, size]`` buffer, is written instead of a new one:
        a new 40 MB batch costs more in page faults than its normalization.
        """
        side = images.shape[1]
        count = len(rows)
        boxes, flips = self.draw(count, side, generator)
        peak = 255.0 if images.dtype == np.uint8 else 1.0
        policy = self.policy if self.train else None
        # through a policy every image becomes uint8
        scale, shift = (v.view(-1, 1, 1) for v in self._affine(255.0 if policy else peak, torch.device("cpu")))
        shape = (self.channels, self.size, self.size)
        out = out[:count] if out is not None and len(out) >= count and out.shape[1:] == shape else torch.empty(
            count, *shape)
        out_masks = None if masks is None else torch.empty(count, self.size, self.size, dtype=torch.uint8)
        start = round((side - self.size) / 2.0)
        centre = (start, start, self.size, self.size)
        for k, row in enumerate(rows):
            top, left, height, width = centre if boxes is None else (int(v) for v in boxes[k].tolist())
            # a view of the stored square's box: nothing outside it is read
            crop = torch.from_numpy(np.asarray(images[row, top:top + height, left:left + width])).permute(2, 0, 1)
            if (height, width) != (self.size, self.size):
                crop = _resize(crop, self.size)
            flip = flips is not None and bool(flips[k])
            crop = crop.flip(-1) if flip else crop
            mask = None
            if out_masks is not None:
                found = np.asarray(masks[row, top:top + height, left:left + width])
                if lut is not None:
                    found = lut[found]
                mask = torch.from_numpy(np.ascontiguousarray(found))
                if (height, width) != (self.size, self.size):
                    mask = F.interpolate(mask[None, None], size=(self.size, self.size), mode="nearest-exact")[0, 0]
                mask = mask.flip(-1) if flip else mask
            if policy is not None:
                crop = policy(_as_bytes(crop, peak))
            # copy_ converts uint8 to float vectorized (addcmul on uint8 does not), then in place
            out[k].copy_(crop).mul_(scale).add_(shift)
            if out_masks is not None:
                out_masks[k] = mask
        return out, out_masks


def _as_bytes(images: torch.Tensor, peak: float) -> torch.Tensor:
    """Images in [0, ``peak``] as uint8 (what the augmentation policies take); uint8 stays as it is."""
    if images.dtype == torch.uint8:
        return images
    return (images.float() * (255.0 / peak)).round_().clamp_(0, 255).to(torch.uint8)


def _resize(crop: torch.Tensor, size: int) -> torch.Tensor:
    """``[C, h, w]`` -> ``[C, size, size]``, antialiased bilinear; uint8 stays uint8 (torch's vectorized path)."""
    batch = crop[None].contiguous(memory_format=torch.channels_last)
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def _centre(batch: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size`` x ``size`` crop of the last two dims (the stored square itself if it is that size)."""
    side = batch.shape[-1]
    if side == size:
        return batch
    if side < size:
        raise ValueError(f"stored images are {side} px, smaller than the {size} px crop")
    start = round((side - size) / 2.0)
    return batch[..., start:start + size, start:start + size]
