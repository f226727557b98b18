"""The validation metrics equal torchmetrics' on the same batches (torchmetrics is the reference, in the dev extra)."""

from __future__ import annotations

import pytest
import torch

from tune_app.training.metrics import create_metrics


def _batches(seed: int, num_classes: int, shape: tuple[int, ...], absent: int | None):
    """Three batches of (logits, targets); class ``absent`` never occurs in targets nor predictions."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(3):
        logits = torch.randn((shape[0], num_classes, *shape[1:]), generator=generator)
        target = torch.randint(0, num_classes, shape, generator=generator)
        if absent is not None:
            logits[:, absent] = -1e9
            target[target == absent] = (absent + 1) % num_classes
        yield logits, target


@pytest.mark.parametrize("absent", [None, 3], ids=["all-classes", "one-class-absent"])
@pytest.mark.parametrize("seed", [0, 1])
def test_classification_metrics_equal_torchmetrics(seed, absent):
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

    mine = create_metrics("classification", num_classes=5)
    accuracy, f1 = MulticlassAccuracy(5, average="micro"), MulticlassF1Score(5, average="macro")
    for logits, target in _batches(seed, 5, (37,), absent):
        mine.update(logits, target)
        accuracy.update(logits.argmax(1), target)
        f1.update(logits.argmax(1), target)
    result = mine.compute()
    assert result["val_acc"] == pytest.approx(accuracy.compute().item(), abs=1e-6)
    assert result["val_f1"] == pytest.approx(f1.compute().item(), abs=1e-6)


@pytest.mark.parametrize(("num_classes", "absent"), [(1, None), (4, None), (4, 2)],
                         ids=["binary-one-channel", "four-classes", "four-classes-one-absent"])
def test_segmentation_metrics_equal_torchmetrics_stat_scores(num_classes, absent):
    from torchmetrics.classification import MulticlassStatScores

    classes = max(num_classes, 2)  # one channel: background / foreground by a 0.5 threshold
    mine = create_metrics("segmentation", num_classes=classes)
    stats = MulticlassStatScores(classes, average=None, multidim_average="global")
    generator = torch.Generator().manual_seed(7)
    for logits, target in _batches(7, num_classes, (2, 9, 11), absent):
        if num_classes == 1:
            target = torch.randint(0, 2, target.shape, generator=generator)
        mine.update(logits, target)
        preds = (logits[:, 0] > 0).long() if num_classes == 1 else logits.argmax(1)
        stats.update(preds, target)
    tp, fp, _, fn, _ = stats.compute().double().unbind(dim=1)
    dice, iou = 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)
    expected_dice = dice[1:][~dice[1:].isnan()].mean().item()
    expected_iou = iou[1:][~iou[1:].isnan()].mean().item()
    result = mine.compute()
    assert result["val_dice"] == pytest.approx(expected_dice, abs=1e-9)
    assert result["val_iou"] == pytest.approx(expected_iou, abs=1e-9)
    assert result["val_pixel_acc"] == pytest.approx((tp.sum() / (tp + fn).sum()).item(), abs=1e-9)


def test_a_label_beyond_num_classes_is_a_clear_error():
    metrics = create_metrics("classification", num_classes=3)
    with pytest.raises(ValueError, match=r"outside 0..2"):
        metrics.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 5]))


def test_an_empty_validation_set_scores_zero_not_nan():
    assert create_metrics("classification", num_classes=3).compute() == {"val_acc": 0.0, "val_f1": 0.0}
