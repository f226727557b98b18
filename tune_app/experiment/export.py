"""The best model of an experiment, exported: ``best_model/`` with ``model.safetensors`` and ``config.json``.

``model.safetensors`` holds the weights of the best trial (the reports' leaderboard
winner, or ``--trial``) at its best checkpointed epoch: the model's ``state_dict`` in its
library's own layout (for timm, what ``timm.create_model(arch, num_classes=n)`` holds).
``config.json`` follows timm's pretrained-config layout, so plain timm loads a timm model
(``timm.create_model("local-dir:<dir>", pretrained=True)``); it also says where the model
comes from (``source``: timm / torchvision / smp), which trial and epoch it is, the
objective and its value, and the trial's full config::

    {"architecture": "resnet10t", "num_classes": 10, "label_names": ["0", ...],
     "pretrained_cfg": {"input_size": [3, 32, 32], "mean": [...], "std": [...],
                        "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "center", ...},
     "source": "timm", "model": "timm/resnet10t", "task": "classification",
     "trial_id": "385d3cd5", "epoch": 4, "metric": "val_acc", "metric_value": 1.0, "config": {...}}

``pretrained_cfg`` is exactly the preprocessing the trials' validation used
(:func:`~tune_app.training.datasets.eval_preprocessing`), recorded when the
sweep started (``data.json``). No Ray here.

Example:
    >>> exported = export_best_model(Location.open("tune_results/quickstart"))  # doctest: +SKIP
    >>> print(exported.describe())  # doctest: +SKIP
    best_model/: trial 385d3cd5 at epoch 4 (val_acc 1.0000) -> tune_results/quickstart/best_model
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..report import best_trial_id, read_spec, read_trials, results_frame
from ..training import DataBundle, TrainConfig
from ..training.datasets import eval_preprocessing
from ..training.ema import scored_weights
from ..training.engine import build_data_for
from ..training.models import output_channels, split_model_name
from ..training.weights import EXPORTED_CONFIG, EXPORTED_WEIGHTS
from .checkpoints import TrialCheckpoints, json_safe
from .location import Location

BEST_MODEL = "best_model"
MODEL_DATA_FILE = "data.json"  # what the sweep's data is (and what a model of it needs): written when it starts


@dataclass(frozen=True)
class Exported:
    """What :func:`export_best_model` wrote."""

    path: Path
    trial_id: str
    epoch: int
    metric: str
    value: float
    best_value: float | None  # the trial's best over all its epochs (results.csv)

    def describe(self) -> str:
        text = f"best model: trial {self.trial_id} at epoch {self.epoch} ({self.metric} {self.value:.4f}) -> {self.path}"
        if self.best_value is not None and self.best_value != self.value:
            text += (f" (its best epoch, {self.metric} {self.best_value:.4f}, left no checkpoint, as with "
                     f"tune.checkpoint_every > 1)")
        return text


def data_summary(config: TrainConfig, bundle: DataBundle) -> dict[str, Any]:
    """``data.json``: the classes and validation preprocessing of a sweep's data, and how it was read.

    The preprocessing is that of the data config ``bundle`` was built from (completed for
    the model: :func:`~tune_app.training.engine.build_data_for`).
    """
    built = bundle.config if bundle.config is not None else config.data  # a bundle made by hand keeps none
    return {"dataset": config.data.dataset, "task": bundle.task, "num_classes": bundle.num_classes,
            "in_chans": bundle.in_chans, "class_names": list(bundle.class_names),
            "preprocessing": json_safe(eval_preprocessing(built)),
            "train_images": len(bundle.train), "val_images": len(bundle.val), "notes": list(bundle.notes),
            "skipped": list(bundle.skipped), "ignored": list(bundle.ignored)}


def export_best_model(location: Location, trial_id: str | None = None, out: str | Path | None = None) -> Exported:
    """Write ``best_model/`` (or ``out``) from the best (or the given) trial's best checkpoint.

    Raises:
        SpecError: No such trial, no trial reported the metric, or the trial has no
            checkpoint with weights left (the budget keeps only the best trials').
    """
    directory = location.local
    train = read_spec(directory).get("train", {})
    metric, mode = train.get("metric", "val_acc"), train.get("mode", "max")
    trials = read_trials(directory)
    results = results_frame(trials, metric, mode)
    trial_id = trial_id or best_trial_id(results, metric, mode)
    if trial_id is None:
        raise SpecError(f"{location}: no trial reported {metric}, so there is no best model to export")
    trial = next((t for t in trials if t.trial_id == trial_id), None)
    if trial is None or trial.directory is None:
        known = ", ".join(t.trial_id for t in trials[:20])
        raise SpecError([("--trial", f"no trial {trial_id!r} in {location}; its trials: {known}")])
    fs, root = location.filesystem()
    store = TrialCheckpoints(f"{root}/{trial.directory.name}", fs)
    saved = store.best(metric, mode)
    if saved is None:
        raise SpecError(f"trial {trial_id} has no checkpoint with weights left: once trials end, only the "
                        f"tune.keep_best_trials best keep their best epoch (tune.checkpoint_every 0 keeps none)")
    state = store.load(saved)
    config = TrainConfig.from_dict(state["config"])
    data = _data_file(directory) or data_summary(config, build_data_for(config))
    target = Path(out) if out is not None else directory / BEST_MODEL
    write_model(target, scored_weights(state), config, data, {
        "trial_id": trial_id, "epoch": int(state["epoch"]), "metric": metric, "mode": mode,
        "metric_value": saved.metrics[metric], "params": trial.config})
    if out is None:
        location.push([target / EXPORTED_WEIGHTS, target / EXPORTED_CONFIG])
    return Exported(target, trial_id, int(state["epoch"]), metric, float(saved.metrics[metric]),
                    trial.best(metric, mode))


def write_model(target: Path, weights: Mapping[str, Any], config: TrainConfig, data: Mapping[str, Any],
                about: Mapping[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` of one model into ``target``."""
    from safetensors.torch import save_file

    source, arch = split_model_name(config.model)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}  # no shared storage
    if source == "torchvision" and all(k.startswith("model.") for k in tensors):
        # torchvision's segmentation models sit in a wrapper that returns their "out" logits
        tensors = {k[len("model."):]: v for k, v in tensors.items()}
    outputs = output_channels(config.task, int(data["num_classes"]))
    preprocessing = dict(data["preprocessing"])
    preprocessing.setdefault("crop_mode", "center" if config.task == "classification" else "squash")
    document = {
        "architecture": arch,
        "num_classes": outputs,
        "label_names": list(data["class_names"]),
        "pretrained_cfg": {**preprocessing, "num_classes": outputs},
        "source": source,
        "model": config.model,
        "encoder": config.encoder,
        "task": config.task,
        "in_chans": int(data.get("in_chans", 3)),
        **about,
        "config": config.to_dict(),
    }
    target.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target / EXPORTED_WEIGHTS), metadata={"format": "pt"})
    (target / EXPORTED_CONFIG).write_text(json.dumps(json_safe(document), indent=2) + "\n")


def _data_file(directory: Path) -> dict[str, Any] | None:
    path = directory / MODEL_DATA_FILE
    return json.loads(path.read_text()) if path.is_file() else None
