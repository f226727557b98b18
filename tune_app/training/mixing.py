"""Mixup and CutMix on the training batch (``mixup``, ``cutmix``): timm's :class:`~timm.data.Mixup`.

Each batch is mixed where it is (on the GPU for GPU trials), after the batch transform:
``mixup`` and ``cutmix`` are the Beta distributions' alphas (0 is off), ``mixup_prob`` the
chance a batch is mixed at all, ``mixup_switch_prob`` the chance of cutmix when both are on,
``mixup_mode`` whether one draw serves the ``batch``, each ``pair`` or each ``elem``\\ ent.
The targets become class probabilities (timm's ``mixup_target``), which ``ce``, ``bce`` and
``focal`` take (:mod:`.losses`); their label smoothing applies on top, as timm's does.

timm draws from NumPy's global generator, which the engine seeds per trial and keeps in
its checkpoints: the draws repeat with the seed and continue after a resume. timm mixes
image i with image B-1-i and asks for an even batch; of an odd one the last image stays
as it is.

Example:
    >>> import numpy as np
    >>> np.random.seed(0)
    >>> mix = BatchMixing(MixingConfig(mixup=0.8), num_classes=3)
    >>> images, targets = mix(torch.ones(4, 3, 2, 2), torch.tensor([0, 1, 2, 0]))
    >>> targets.shape, bool(torch.allclose(targets.sum(1), torch.ones(4)))
    (torch.Size([4, 3]), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .losses import soft_target_losses

MIXUP_MODES = ("batch", "pair", "elem")


@dataclass(frozen=True)
class MixingConfig:
    """The mixing knobs of a trial (timm's ``Mixup`` arguments)."""

    mixup: float = 0.0
    cutmix: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5
    mode: str = "batch"

    @property
    def on(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.prob > 0


def mixing_problem(task: str, loss: str | None = None) -> str | None:
    """Why a trial of ``task`` (with ``loss``, if given) cannot mix its batches, or None when it can."""
    if task != "classification":
        return (f"mixup and cutmix mix class labels: classification only, not {task} (for segmentation, "
                f"augment the images instead)")
    if loss is not None and loss not in soft_target_losses():
        return f"loss {loss!r} takes no mixed labels; with mixup or cutmix use one of {', '.join(soft_target_losses())}"
    return None


class BatchMixing:
    """Mix a batch of images ``[B, C, H, W]`` and class indices ``[B]``: -> images, probabilities ``[B, classes]``."""

    def __init__(self, config: MixingConfig, num_classes: int) -> None:
        from timm.data import Mixup

        self.num_classes = num_classes
        self._mixup = Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix, prob=config.prob,
                            switch_prob=config.switch_prob, mode=config.mode, label_smoothing=0.0,
                            num_classes=num_classes)

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        even = len(images) // 2 * 2
        if even == 0:
            return images, self._one_hot(targets)
        _, mixed = self._mixup(images[:even], targets[:even])  # mixes the view, so ``images``, in place
        if even < len(images):
            mixed = torch.cat([mixed, self._one_hot(targets[even:])])
        return images, mixed

    def _one_hot(self, targets: torch.Tensor) -> torch.Tensor:
        return F.one_hot(targets.long(), self.num_classes).float()
