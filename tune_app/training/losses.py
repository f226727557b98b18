"""Loss registry: name -> factory, with the parameters each loss accepts.

Every loss serves classification and segmentation alike. It takes raw logits,
``[B, C]`` or ``[B, C, H, W]``, and integer class targets, ``[B]`` or ``[B, H, W]``
(``long``), and returns the mean loss as a float32 scalar.

The channel count ``C`` of the logits decides the problem, at call time:

* ``C == 1`` is binary: ``sigmoid(logits)`` is the probability of class 1 and the
  target holds 0 or 1 (a one-channel binary segmentation head, ``num_classes=2``).
* ``C > 1`` is single-label multi-class: probabilities are ``softmax(logits, dim=1)``.
  Only ``bce`` reads ``C > 1`` as independent per-class sigmoids (multi-label style).

``ce``, ``bce`` and ``focal`` also take soft targets, class probabilities shaped like the
logits (float ``[B, C]``: what mixup and cutmix make, see :mod:`.mixing`); each is linear in
the target, so a mixed target's loss is the mix of the two labels' losses.

So ``num_classes`` (which counts the background) is never needed to compute a loss,
and one loss object serves any head; :func:`create_loss` takes it to keep the factory
signature stable. Overlap losses (``dice``, ``iou``) sum over the batch and spatial
dims, so for classification they are a soft F1 / Jaccard over the batch. Everything is
computed in float32, also under autocast: sums over many pixels lose too much in bf16.

Example:
    >>> loss = create_loss({"name": "dice_bce", "dice_weight": 0.3}, task="segmentation", num_classes=2)
    >>> # all-background masks, p = 0.5 everywhere: 1 * ln 2 + 0.3 * (1 - (0 + 1) / (64 + 0 + 1))
    >>> loss(torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long))
    tensor(0.9885)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import Param, check_options, fraction, non_negative, positive, unknown_name
from .tasks import TASKS


@dataclass(frozen=True)
class LossInfo:
    """A registered loss: its factory, its parameters and the tasks it applies to."""

    factory: Callable[..., nn.Module]
    params: dict[str, Param] = field(default_factory=dict)
    tasks: tuple[str, ...] = TASKS
    help: str = ""
    soft_targets: bool = False  # takes class probabilities too (mixup, cutmix)


# ------------------------------------------------------------------ helpers
def _check_shapes(logits: torch.Tensor, target: torch.Tensor) -> None:
    # A [B, 1, H, W] mask would broadcast silently into a wrong loss; say so instead.
    if logits.dim() < 2 or logits.shape[:1] + logits.shape[2:] != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: "
                         f"expected logits [B, C, ...] and class indices [B, ...]")


def _one_hot(target: torch.Tensor, channels: int) -> torch.Tensor:
    """Float32 target shaped like the logits: the mask itself for one channel, else one-hot."""
    if channels == 1:
        return target.unsqueeze(1).float()
    return F.one_hot(target.long(), channels).movedim(-1, 1).float()


def is_soft(logits: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``target`` holds class probabilities (mixup, cutmix) rather than class indices."""
    return target.is_floating_point() and target.shape == logits.shape


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return logits.sigmoid() if logits.shape[1] == 1 else logits.softmax(dim=1)


def _smoothed(target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    # Binary form of ce's smoothing: each 0/1 target moves towards 1/2.
    return target * (1.0 - label_smoothing) + 0.5 * label_smoothing


# ------------------------------------------------------------------- losses
class CrossEntropyLoss(nn.Module):
    """Cross entropy; for one channel, binary cross entropy with the same smoothing.

    Label smoothing spreads ``label_smoothing`` evenly over the classes, as in
    :func:`torch.nn.functional.cross_entropy`; with one channel the two classes are
    0 and 1, so the target becomes ``t * (1 - s) + s / 2``. A one-channel head thus
    gets exactly the loss of a two-channel head with logits ``[0, z]``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        soft = is_soft(logits, target)
        if not soft:
            _check_shapes(logits, target)
        logits = logits.float()
        if logits.shape[1] == 1:
            soft_target = target.float() if soft else _one_hot(target, 1)
            return F.binary_cross_entropy_with_logits(logits, _smoothed(soft_target, self.label_smoothing))
        # Probabilities are smoothed as indices are: t * (1 - s) + s / C (timm's mixup_target with smoothing).
        return F.cross_entropy(logits, target.float() if soft else target, label_smoothing=self.label_smoothing)


class BCELoss(nn.Module):
    """Per-class sigmoid binary cross entropy against the one-hot target (multi-label style).

    Args:
        pos_weight: Weight of the positive term of every class (> 1 favours recall);
            None weighs positives and negatives alike.
        label_smoothing: Every 0/1 target moves to ``t * (1 - s) + s / 2``.
    """

    def __init__(self, pos_weight: float | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.pos_weight = pos_weight
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        given = is_soft(logits, target)
        if not given:
            _check_shapes(logits, target)
        logits = logits.float()
        soft = _smoothed(target.float() if given else _one_hot(target, logits.shape[1]), self.label_smoothing)
        pos_weight = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits, soft, pos_weight=pos_weight)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017), per element, averaged.

    One channel: the sigmoid form, equal to ``torchvision.ops.sigmoid_focal_loss(...,
    reduction="mean")``: ``alpha_t * (1 - p_t) ** gamma * BCE`` with ``alpha_t = alpha``
    for positives and ``1 - alpha`` for negatives. More channels: the softmax form
    ``-alpha * (1 - p_t) ** gamma * log(p_t)``, ``p_t`` the probability of the true
    class; ``alpha = 1, gamma = 0`` is cross entropy.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma

    def _modulate(self, one_minus_p_t: torch.Tensor) -> torch.Tensor:
        # (1 - p_t) ** gamma has an infinite slope at 0 for gamma < 1; a confident, right
        # prediction (p_t == 1.0 in float32) would turn the gradient into NaN.
        return one_minus_p_t.clamp_min(torch.finfo(torch.float32).tiny).pow(self.gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        soft = is_soft(logits, target)
        if not soft:
            _check_shapes(logits, target)
        logits = logits.float()
        if logits.shape[1] == 1:  # the same operations as torchvision, so the values agree exactly
            y = target.float() if soft else _one_hot(target, 1)
            p = logits.sigmoid()
            bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
            p_t = p * y + (1 - p) * (1 - y)
            alpha_t = self.alpha * y + (1 - self.alpha) * (1 - y)
            return (alpha_t * self._modulate(1 - p_t) * bce).mean()
        if soft:  # -alpha * sum_c t_c (1 - p_c) ** gamma log p_c: the index form for a one-hot t
            log_p = F.log_softmax(logits, dim=1)
            return (-self.alpha * target.float() * self._modulate(-torch.expm1(log_p)) * log_p).sum(1).mean()
        log_p_t = F.log_softmax(logits, dim=1).gather(1, target.long().unsqueeze(1))
        # -expm1(log p) is 1 - p without cancellation when p is close to 1
        return (-self.alpha * self._modulate(-torch.expm1(log_p_t)) * log_p_t).mean()


class _OverlapLoss(nn.Module):
    """``1 - mean over classes of a soft overlap score``, summed over batch and spatial dims.

    Per class ``c`` with probabilities ``p`` and one-hot target ``y``:
    ``I = sum(p * y)`` and ``S = sum(p) + sum(y)``. One channel has one class, the
    foreground; with more, ``include_background=False`` leaves class 0 out.
    """

    def __init__(self, smooth: float = 1.0, include_background: bool = True) -> None:
        super().__init__()
        self.smooth = smooth
        self.include_background = include_background

    def score(self, intersection: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, target)
        probs = _probabilities(logits.float())
        y = _one_hot(target, probs.shape[1])
        if probs.shape[1] > 1 and not self.include_background:
            probs, y = probs[:, 1:], y[:, 1:]
        dims = [0, *range(2, probs.dim())]  # everything but the class dim
        intersection = (probs * y).sum(dims)
        total = probs.sum(dims) + y.sum(dims)
        return 1.0 - self.score(intersection, total).mean()


class DiceLoss(_OverlapLoss):
    """Soft Dice: ``1 - mean_c (2 I + smooth) / (S + smooth)`` (see :class:`_OverlapLoss`)."""

    def score(self, intersection: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        # clamp: with smooth=0, an absent class whose sigmoid underflowed would give 0/0
        return (2 * intersection + self.smooth) / (total + self.smooth).clamp_min(1e-7)


class JaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU): ``1 - mean_c (I + smooth) / (S - I + smooth)`` (see :class:`_OverlapLoss`)."""

    def score(self, intersection: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        return (intersection + self.smooth) / (total - intersection + self.smooth).clamp_min(1e-7)


class DiceBCELoss(nn.Module):
    """``bce_weight * BCE + dice_weight * Dice``; the defaults (1, 1) are the chapter's ``BCE + dice_loss``.

    ``BCE`` is the batch-mean binary cross entropy for one channel, cross entropy for more.
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0,
                 include_background: bool = True) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.ce = CrossEntropyLoss()
        self.dice = DiceLoss(smooth=smooth, include_background=include_background)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce_weight * self.ce(logits, target) + self.dice_weight * self.dice(logits, target)


class FocalBCELoss(nn.Module):
    """The chapter's focal loss: ``alpha * (1 - exp(-BCE)) ** gamma * BCE`` on the batch-mean ``BCE``.

    One focusing factor for the whole batch, from its mean cross entropy (binary for one
    channel, softmax cross entropy for more), unlike :class:`FocalLoss`, which weighs every
    element by its own ``p_t``.
    """

    def __init__(self, alpha: float = 0.8, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.ce = CrossEntropyLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = self.ce(logits, target)
        # -expm1(-bce) is 1 - exp(-bce) without cancellation when bce is small
        return self.alpha * (-torch.expm1(-bce)).clamp_min(torch.finfo(torch.float32).tiny).pow(self.gamma) * bce


class MSELoss(nn.Module):
    """Mean squared error between the probabilities and the one-hot target, over all elements.

    For ``C > 1`` this is the Brier score divided by ``C``.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, target)
        probs = _probabilities(logits.float())
        return F.mse_loss(probs, _one_hot(target, probs.shape[1]))


# ----------------------------------------------------------------- registry
_SMOOTH = non_negative(help="added to numerator and denominator; keeps empty classes from scoring 0")
_BACKGROUND = Param(bool, help="with C > 1 channels, whether class 0 counts in the mean over classes")

LOSSES: dict[str, LossInfo] = {
    "ce": LossInfo(
        CrossEntropyLoss,
        {"label_smoothing": fraction(high_open=True, help="probability mass spread evenly over the classes")},
        help="-mean log p_target (binary cross entropy for a one-channel head)",
        soft_targets=True,
    ),
    "bce": LossInfo(
        BCELoss,
        {
            "pos_weight": positive(help="weight of the positive term of every class; default 1"),
            "label_smoothing": fraction(high_open=True, help="each 0/1 target moves to t*(1-s) + s/2"),
        },
        help="-mean [w y log s(z) + (1 - y) log(1 - s(z))] per class, sigmoid s, one-hot y (multi-label style)",
        soft_targets=True,
    ),
    "focal": LossInfo(
        FocalLoss,
        {
            "alpha": fraction(help="weight of positives (sigmoid form) or of the whole loss (softmax form)"),
            "gamma": non_negative(help="focusing exponent; 0 gives (weighted) cross entropy"),
        },
        help="mean alpha_t (1 - p_t)^gamma (-log p_t) per element (Lin et al., torchvision's sigmoid_focal_loss)",
        soft_targets=True,
    ),
    "focal_bce": LossInfo(
        FocalBCELoss,
        {
            "alpha": positive(help="scale of the loss (default 0.8)"),
            "gamma": non_negative(help="focusing exponent (default 2)"),
        },
        help="alpha (1 - exp(-BCE))^gamma BCE on the batch-mean BCE (the chapter's focal loss)",
    ),
    "dice": LossInfo(
        DiceLoss,
        {"smooth": _SMOOTH, "include_background": _BACKGROUND},
        help="1 - mean_c (2 sum(p y) + smooth) / (sum p + sum y + smooth), soft Dice",
    ),
    "dice_bce": LossInfo(
        DiceBCELoss,
        {
            "bce_weight": non_negative(help="weight of the (binary) cross entropy (default 1)"),
            "dice_weight": non_negative(help="weight of the soft Dice loss (default 1)"),
            "smooth": _SMOOTH,
            "include_background": _BACKGROUND,
        },
        help="bce_weight BCE + dice_weight Dice (default 1 and 1: the chapter's BCE + Dice)",
    ),
    "iou": LossInfo(
        JaccardLoss,
        {"smooth": _SMOOTH, "include_background": _BACKGROUND},
        help="1 - mean_c (sum(p y) + smooth) / (sum p + sum y - sum(p y) + smooth), soft Jaccard",
    ),
    "mse": LossInfo(MSELoss, help="mean (p - y)^2 over every element, probabilities against the one-hot target"),
}


def soft_target_losses() -> tuple[str, ...]:
    """The losses that take class probabilities (mixup, cutmix)."""
    return tuple(name for name, info in LOSSES.items() if info.soft_targets)


def create_loss(config: dict[str, Any], task: str, num_classes: int) -> nn.Module:
    """Build the loss named by ``config["name"]`` with the rest of ``config`` as keyword arguments.

    Args:
        config: ``{"name": ..., **params}``; every parameter is checked against its :class:`Param`.
        task: ``classification`` or ``segmentation``; the loss must list it in its ``tasks``.
        num_classes: Classes including the background (2 for a one-channel binary head).
            Not used by the current losses, which read the class count from the logits.

    Raises:
        ValueError: For an unknown loss, a task the loss does not support, or an
            unknown or out-of-range parameter.
    """
    kwargs = dict(config)
    name = kwargs.pop("name")
    info = LOSSES.get(name)
    if info is None:
        raise ValueError(unknown_name(name, LOSSES, "loss"))
    if task not in info.tasks:
        raise ValueError(f"loss {name!r} does not apply to task {task!r}; it supports {', '.join(info.tasks)}")
    return info.factory(**check_options(f"loss {name!r}", info.params, kwargs))
