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


class ConfusionMatrix:
    """Counts of (target, predicted) class pairs over the whole validation set, kept on the model's device.

    One ``bincount`` per batch: the per-class true/false positives and false negatives
    every metric here needs. (torchmetrics computes the same numbers; importing it
    costs each fresh trial worker half a second, which short trials notice.)
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        n = self.num_classes
        counts = torch.bincount(target.reshape(-1).long() * n + preds.reshape(-1), minlength=n * n)
        if counts.numel() != n * n:  # a label >= num_classes (negative ones make bincount raise)
            raise ValueError(f"a target label is outside 0..{n - 1}: the dataset has more classes than "
                             f"num_classes={n}")
        self.counts += counts

    def stat_scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per class: true positives, false positives, false negatives (float64)."""
        matrix = self.counts.view(self.num_classes, self.num_classes).double()  # rows: target
        tp = matrix.diagonal()
        return tp, matrix.sum(dim=0) - tp, matrix.sum(dim=1) - tp

    def accuracy(self) -> float:
        """Share of all counted samples (or pixels) predicted right; 0 when nothing was counted."""
        total = self.counts.sum()
        return (self.counts.view(self.num_classes, self.num_classes).trace().double() / total).item() if total else 0.0


class _ConfusionMetrics:
    """A task's metrics over one confusion matrix: ``update`` per batch, ``compute`` once."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.matrix = ConfusionMatrix(num_classes, device)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.matrix.update(predictions(logits), target)


class ClassificationMetrics(_ConfusionMetrics):
    """``val_acc``: micro accuracy; ``val_f1``: F1 averaged over the classes seen in targets or predictions."""

    def compute(self) -> dict[str, float]:
        tp, fp, fn = self.matrix.stat_scores()
        f1 = 2 * tp / (2 * tp + fp + fn)  # NaN for a class absent from both: left out of the mean
        return {"val_acc": self.matrix.accuracy(), "val_f1": _nanmean(f1)}


class SegmentationMetrics(_ConfusionMetrics):
    """``val_dice`` and ``val_iou`` over the foreground classes; ``val_pixel_acc`` over all pixels."""

    def compute(self) -> dict[str, float]:
        tp, fp, fn = self.matrix.stat_scores()
        foreground = slice(1, None)  # class 0 is the background
        dice = 2 * tp / (2 * tp + fp + fn)
        iou = tp / (tp + fp + fn)
        # A class absent from both predictions and targets is left out of the mean (0/0).
        return {
            "val_dice": _nanmean(dice[foreground]),
            "val_iou": _nanmean(iou[foreground]),
            "val_pixel_acc": self.matrix.accuracy(),
        }


def _nanmean(values: torch.Tensor) -> float:
    values = values[~torch.isnan(values)]
    return values.mean().item() if len(values) else 0.0


METRIC_SETS = {"classification": ClassificationMetrics, "segmentation": SegmentationMetrics}


def create_metrics(task: str, num_classes: int, device: torch.device | str = "cpu"):
    """The metric accumulator of ``task``; ``update`` per batch, ``compute`` once."""
    return METRIC_SETS[task](num_classes, device)
