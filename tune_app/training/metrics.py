"""Validation metrics of each task, accumulated over the whole validation set.

Classification: ``val_acc`` (micro accuracy) and ``val_f1`` (macro F1).
Segmentation: ``val_dice`` and ``val_iou`` from per-class pixel counts over the whole
set, averaged over the foreground classes (background is most pixels; including it
would flatter every model), plus ``val_pixel_acc``.

Example:
    >>> metrics = create_metrics("segmentation", num_classes=2)
    >>> metrics.update(torch.full((1, 1, 2, 2), 5.0), torch.ones(1, 2, 2, dtype=torch.long))
    >>> metrics.compute()["val_dice"]
    1.0
"""

from __future__ import annotations

import torch


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from raw logits: argmax over channels, or a 0.5 threshold for one channel."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


class ClassificationMetrics:
    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        self.accuracy = MulticlassAccuracy(num_classes, average="micro").to(device)
        self.f1 = MulticlassF1Score(num_classes, average="macro").to(device)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        preds = predictions(logits)
        self.accuracy.update(preds, target)
        self.f1.update(preds, target)

    def compute(self) -> dict[str, float]:
        return {"val_acc": self.accuracy.compute().item(), "val_f1": self.f1.compute().item()}


class SegmentationMetrics:
    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        from torchmetrics.classification import MulticlassStatScores

        self.stats = MulticlassStatScores(num_classes, average=None, multidim_average="global").to(device)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.stats.update(predictions(logits), target)

    def compute(self) -> dict[str, float]:
        tp, fp, tn, fn, _ = self.stats.compute().double().unbind(dim=1)
        foreground = slice(1, None)  # class 0 is the background
        dice = 2 * tp / (2 * tp + fp + fn)
        iou = tp / (tp + fp + fn)
        # A class absent from both predictions and targets is left out of the mean (0/0).
        return {
            "val_dice": _nanmean(dice[foreground]),
            "val_iou": _nanmean(iou[foreground]),
            "val_pixel_acc": (tp.sum() / (tp + fn).sum()).item(),
        }


def _nanmean(values: torch.Tensor) -> float:
    values = values[~torch.isnan(values)]
    return values.mean().item() if len(values) else 0.0


METRIC_SETS = {"classification": ClassificationMetrics, "segmentation": SegmentationMetrics}


def create_metrics(task: str, num_classes: int, device: torch.device | str = "cpu"):
    """The metric accumulator of ``task``; ``update`` per batch, ``compute`` once."""
    return METRIC_SETS[task](num_classes, device)
