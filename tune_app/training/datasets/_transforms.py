"""Per-item transforms: joint image/mask augmentation for tensors, timm's for files.

Training augmentation is a random horizontal flip and a RandomResizedCrop; both move
a mask with its image (the mask resampled nearest, so it keeps class indices).
Everything is a plain picklable object, so DataLoader workers can use it.

Example:
    >>> import torch
    >>> t = PairTransform(4, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, hflip=True)
    >>> image, mask = t(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(8, 8, dtype=torch.uint8))
    >>> tuple(image.shape), tuple(mask.shape), image.min().item()
    ((3, 4, 4), (4, 4), -1.0)
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchvision.transforms import InterpolationMode, RandomHorizontalFlip, RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's aspect range, as in torchvision and timm


class PairTransform:
    """Augment (training only), resize, scale to [0, 1] and normalize an image and its mask.

    Args:
        size: Output height and width.
        mean: Per-channel mean, after scaling to [0, 1].
        std: Per-channel standard deviation.
        train: Apply the random augmentation below; evaluation only resizes.
        hflip: Flip horizontally with probability 0.5.
        scale: RandomResizedCrop area range; None resizes the whole image.
        channels: Output channels; a one-channel image is repeated to fill them.
    """

    def __init__(
        self,
        size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool = False,
        hflip: bool = False,
        scale: tuple[float, float] | None = None,
        channels: int = 3,
    ) -> None:
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.train = train
        self.hflip = hflip
        self.scale = scale
        self.channels = channels

    def __call__(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``image``: uint8 or float in [0, 1], ``[C, H, W]``; ``mask``: ``[H, W]`` or None."""
        size = [self.size, self.size]
        if self.train and self.scale is not None:
            box = RandomResizedCrop.get_params(image, list(self.scale), list(RATIO))
            image = TF.resized_crop(image, *box, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
            if mask is not None:
                mask = TF.resized_crop(mask[None], *box, size, interpolation=InterpolationMode.NEAREST)[0]
        elif tuple(image.shape[-2:]) != (self.size, self.size):
            image = TF.resize(image, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
            if mask is not None:
                mask = TF.resize(mask[None], size, interpolation=InterpolationMode.NEAREST)[0]
        if self.train and self.hflip and torch.rand(()) < 0.5:
            image = image.flip(-1)
            mask = None if mask is None else mask.flip(-1)
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        if image.shape[0] != self.channels:
            image = image.expand(self.channels, -1, -1)
        # out of place: the input may be a view of an in-memory dataset's storage
        return (image - self.mean) / self.std, mask


def timm_transform(
    size: int,
    *,
    train: bool,
    hflip: bool,
    scale: tuple[float, float] | None,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
) -> Any:
    """timm's transform for PIL images: RandomResizedCrop (if ``scale``) and flip on train.

    Evaluation (and training without ``scale``) resizes the shorter side to ``size``
    and crops the centre square, so both see the same framing; no colour jitter.

    Example:
        >>> t = timm_transform(32, train=True, hflip=True, scale=(0.5, 1.0), mean=(0.5,) * 3, std=(0.5,) * 3)
        >>> type(t.transforms[0]).__name__
        'RandomResizedCropAndInterpolation'
    """
    from timm.data import create_transform

    common: dict[str, Any] = dict(input_size=(3, size, size), interpolation=interpolation, mean=tuple(mean), std=tuple(std))
    if train and scale is not None:
        return create_transform(**common, is_training=True, scale=tuple(scale), hflip=0.5 if hflip else 0.0,
                                color_jitter=None)
    transform = create_transform(**common, is_training=False, crop_pct=1.0)
    if train and hflip:
        # timm's training pipeline always crops at random; "no scale" means the eval framing plus a flip
        at = next(i for i, t in enumerate(transform.transforms) if "ToTensor" in type(t).__name__)
        transform.transforms.insert(at, RandomHorizontalFlip(0.5))
    return transform
