"""The tasks a trial can train, and the metrics each one reports.

Every registry (losses, models, datasets) says which of these tasks an entry supports.

Example:
    >>> TASKS
    ('classification', 'segmentation')
    >>> METRICS["segmentation"]["val_dice"]
    'max'
"""

from __future__ import annotations

TASKS = ("classification", "segmentation")

# Metrics each task reports every epoch, with the direction that is better.
METRICS: dict[str, dict[str, str]] = {
    "classification": {"val_acc": "max", "val_f1": "max", "val_loss": "min", "train_loss": "min"},
    "segmentation": {"val_dice": "max", "val_iou": "max", "val_pixel_acc": "max", "val_loss": "min",
                     "train_loss": "min"},
}
