"""Augmentation policies (``augment``): RandAugment, TrivialAugment, AutoAugment, drawn per image.

torchvision's ``transforms.v2`` implementations, applied to each training image of a batch
inside the batch transform, after its crop and flip and before normalization, on the
uint8 image where it is (on the GPU for GPU trials): each image draws its own operations
and magnitudes from torch's generator, which the engine seeds per trial and keeps in its
checkpoints. Classification only: torchvision's policies draw geometric operations (rotate,
shear, translate) that they cannot apply to a mask, so segmentation is refused.

Example:
    >>> policy = create_policy({"name": "randaugment", "magnitude": 9, "num_ops": 2})
    >>> out = policy(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8))
    >>> out.shape, out.dtype
    (torch.Size([3, 16, 16]), torch.uint8)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..schema import Param, named_options, one_of

Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AugmentInfo:
    """A registered policy: its parameters and a line of help."""

    params: dict[str, Param] = field(default_factory=dict)
    help: str = ""


AUGMENTS: dict[str, AugmentInfo] = {
    "none": AugmentInfo(help="no policy: the crop and flip of data: only"),
    "randaugment": AugmentInfo(
        {"magnitude": Param(int, low=0, high=30, help="strength of every operation, 0-30 (default 9)"),
         "num_ops": Param(int, low=1, high=6, help="operations per image (default 2)")},
        help="RandAugment (Cubuk et al. 2020): num_ops random operations at one magnitude"),
    "trivialaugment": AugmentInfo(help="TrivialAugment Wide: one random operation at a random magnitude"),
    "autoaugment": AugmentInfo({"policy": one_of("imagenet", "cifar10", "svhn", help="the learned policy "
                                                                                     "(default imagenet)")},
                               help="AutoAugment: a learned policy's pairs of operations"),
}


def augment_options(config: str | Mapping[str, Any]) -> dict[str, Any]:
    """``"randaugment"`` or ``{"name": ..., **params}`` -> the checked ``{"name": ..., **params}``."""
    return named_options(config, AUGMENTS, "augment")


def augment_problem(task: str, name: str) -> str | None:
    """Why a trial of ``task`` cannot take policy ``name``, or None when it can."""
    if name != "none" and task != "classification":
        return (f"augment {name!r} is for classification: its rotations, shears and translations cannot move "
                f"{task} masks with their images; use augment none (data.hflip and data.scale move the masks too)")
    return None


def create_policy(config: str | Mapping[str, Any]) -> Policy | None:
    """The per-image policy ``config`` names; None for ``none``."""
    from torchvision.transforms import v2

    options = augment_options(config)
    name = options.pop("name")
    if name == "none":
        return None
    if name == "randaugment":
        transform = v2.RandAugment(num_ops=options.get("num_ops", 2), magnitude=options.get("magnitude", 9),
                                   num_magnitude_bins=31)
    elif name == "trivialaugment":
        transform = v2.TrivialAugmentWide()
    else:
        transform = v2.AutoAugment(v2.AutoAugmentPolicy(options.get("policy", "imagenet")))
    return transform  # one uint8 image [C, H, W] -> the same, with its own draw
