"""What a trial's checkpoint directory holds, and the forms the checkpoint budget leaves it in.

A checkpoint is one of Ray's ``checkpoint_<n>`` directories in a trial directory, with:

- ``state.pt``: :meth:`~tune_app.training.TrainingRun.state_dict` (model, optimizer, LR
  schedule, scaler, RNG, epoch, config), read with ``weights_only=True``;
- ``metrics.json``: the metrics reported with it (``epoch`` included), so a checkpoint's
  score is known without loading its state.

Once a trial can no longer continue, the budget rewrites its checkpoints (see
:func:`settle`): its best one, if the trial is among the best kept, holds the weights
only; its latest one holds only how the trial ended and its final result (a few
bytes), so that a restore Ray may still attempt from it after a crash of the driver
re-reports that result instead of training again; every other checkpoint is deleted.

Files are reached through a pyarrow filesystem, the same for a local directory and for
a URI such as ``s3://`` (Ray writes checkpoints to either). No Ray here.

Example:
    >>> import tempfile, torch
    >>> trial = tempfile.mkdtemp()
    >>> for epoch, acc in ((1, 0.5), (2, 0.8), (3, 0.7)):
    ...     write_checkpoint(f"{trial}/checkpoint_{epoch - 1:06d}",
    ...                      {"epoch": epoch, "model": {"w": torch.ones(2)}, "optimizer": {}},
    ...                      {"epoch": epoch, "val_acc": acc})
    >>> store = TrialCheckpoints(trial)
    >>> store.best("val_acc", "max").epoch, store.latest().epoch
    (2, 3)
    >>> settle(store, keep=True, ended="finished", result={"epoch": 3, "val_acc": 0.7}, metric="val_acc", mode="max")
    >>> [(c.epoch, c.ended, c.weights) for c in store.list()]
    [(2, 'finished', True), (3, 'finished', False)]
    >>> sorted(store.load(store.best("val_acc", "max")))
    ['ended', 'epoch', 'model', 'result']
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "state.pt"
METRICS_FILE = "metrics.json"
# Keys of a state the budget rewrote: how the trial ended ("finished" / "errored") and its final result.
ENDED = "ended"
RESULT = "result"
WEIGHTS_KEYS = ("epoch", "config", "model")  # what a kept best checkpoint still holds

_NAME = re.compile(r"^checkpoint_(\d+)$")


def write_checkpoint(directory: str | os.PathLike[str], state: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
    """Write a checkpoint directory (local): the state and the metrics reported with it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state), directory / STATE_FILE)
    (directory / METRICS_FILE).write_text(json.dumps(json_safe(metrics)))


def load_state(source: str | os.PathLike[str] | bytes, map_location: Any = "cpu") -> dict[str, Any]:
    """A ``state.pt`` (a path or its bytes), loaded with ``weights_only=True``."""
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    return torch.load(data, map_location=map_location, weights_only=True)


def ended_state(state: Mapping[str, Any] | None, ended: str, result: Mapping[str, Any], epoch: int | None) -> dict:
    """The state of a checkpoint of a trial that ended: weights only (``state`` given) or nothing but the end.

    ``ended`` is ``"finished"`` (budget spent, stopped by a trial scheduler, diverged, out of
    memory) or ``"errored"``; ``result`` is the trial's final result.
    """
    kept = {k: state[k] for k in WEIGHTS_KEYS if k in state} if state is not None else {"epoch": epoch}
    return {**kept, ENDED: ended, RESULT: json_safe(result)}


@dataclass(frozen=True)
class SavedCheckpoint:
    """One checkpoint directory of a trial, as its ``metrics.json`` describes it."""

    path: str  # on its filesystem
    index: int  # Ray's number: checkpoint_000007 -> 7
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def epoch(self) -> int | None:
        return self.metrics.get("epoch")

    @property
    def ended(self) -> str | None:
        return self.metrics.get(ENDED)

    @property
    def weights(self) -> bool:
        """Whether ``state.pt`` still holds the model's weights."""
        return bool(self.metrics.get("weights", True))

    def score(self, metric: str, mode: str) -> float | None:
        """The metric as a number to maximize; None when missing or not finite (a failure result)."""
        value = self.metrics.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value) if mode == "max" else -float(value)


class TrialCheckpoints:
    """The checkpoints of one trial directory, on a pyarrow filesystem (the local one by default)."""

    def __init__(self, trial_path: str | os.PathLike[str], filesystem: Any = None) -> None:
        import pyarrow.fs as pafs

        self.fs = filesystem or pafs.LocalFileSystem()
        self.path = str(trial_path).rstrip("/")

    def list(self) -> list[SavedCheckpoint]:
        """Every checkpoint directory, oldest first."""
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for info in infos:
            match = _NAME.match(info.base_name)
            if match and info.type == pafs.FileType.Directory:
                found.append(SavedCheckpoint(info.path, int(match.group(1)), self._metrics(info.path)))
        return sorted(found, key=lambda c: c.index)

    def latest(self) -> SavedCheckpoint | None:
        saved = self.list()
        return saved[-1] if saved else None

    def best(self, metric: str, mode: str) -> SavedCheckpoint | None:
        """The checkpoint with weights with the best finite ``metric`` (the later one of equals, as Ray keeps)."""
        scored = [(c.score(metric, mode), c.index, c) for c in self.list()
                  if c.weights and c.score(metric, mode) is not None]
        return max(scored, key=lambda item: item[:2])[2] if scored else None

    def load(self, saved: SavedCheckpoint, map_location: Any = "cpu") -> dict[str, Any]:
        with self.fs.open_input_stream(f"{saved.path}/{STATE_FILE}") as stream:
            return load_state(stream.readall(), map_location)

    def rewrite(self, saved: SavedCheckpoint, state: Mapping[str, Any], weights: bool) -> None:
        """Replace a checkpoint's state (written aside, then moved over) and mark it in its metrics."""
        buffer = io.BytesIO()
        torch.save(dict(state), buffer)
        self._write(f"{saved.path}/{STATE_FILE}", buffer.getvalue())
        metrics = {**saved.metrics, ENDED: state[ENDED], "weights": weights}
        self._write(f"{saved.path}/{METRICS_FILE}", json.dumps(json_safe(metrics)).encode())

    def delete(self, saved: SavedCheckpoint) -> None:
        self.fs.delete_dir(saved.path)

    def _metrics(self, directory: str) -> dict[str, Any]:
        try:
            with self.fs.open_input_stream(f"{directory}/{METRICS_FILE}") as stream:
                data = json.loads(stream.readall())
        except (FileNotFoundError, OSError, ValueError):  # a checkpoint of an older tune-app, or cut short
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, path: str, data: bytes) -> None:
        aside = f"{path}.tmp"
        with self.fs.open_output_stream(aside) as stream:
            stream.write(data)
        self.fs.move(aside, path)


def settle(store: TrialCheckpoints, *, keep: bool, ended: str, result: Mapping[str, Any], metric: str,
           mode: str) -> None:
    """Leave an ended trial's checkpoints as the budget wants them; idempotent.

    Kept (``keep``): the best checkpoint holds its weights only. Always: the latest holds
    how the trial ended and its final result (with the weights too when it is the kept
    best). Every other checkpoint is deleted. Rewrites come before deletions, so a
    driver killed half-way leaves a checkpoint Ray can restore from.
    """
    saved = store.list()
    if not saved:
        return
    latest = saved[-1]
    best = store.best(metric, mode) if keep else None
    for checkpoint in dict.fromkeys(c for c in (best, latest) if c is not None):
        if checkpoint.ended and checkpoint.weights == (checkpoint == best):
            continue  # already in its final form
        if checkpoint == best:
            state = ended_state(store.load(checkpoint), ended, result, checkpoint.epoch)
        else:
            state = ended_state(None, ended, result, checkpoint.epoch)
        store.rewrite(checkpoint, state, weights=checkpoint == best)
    for checkpoint in saved:
        if checkpoint not in (best, latest):
            store.delete(checkpoint)


def json_safe(value: Any) -> Any:
    """Plain JSON values: tuples as lists, NumPy and torch scalars as numbers (NaN stays: Python's json reads it)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return str(value)


def restorable_state(path: str, filesystem: Any = None, map_location: Any = "cpu") -> dict[str, Any] | None:
    """The state of checkpoint ``path``, or, when it is gone, of the newest checkpoint its trial still has.

    A driver killed between Ray's deletion of a trial's previous latest checkpoint and its
    next save of the experiment state leaves that state naming the deleted one (with a trial
    keeping its best and its latest, any checkpoint but the best goes when the next one
    comes). The trial then continues from its newest surviving checkpoint instead of
    failing; None when it has none left (it starts afresh). A checkpoint cut short (the job
    killed while Ray copied it into place) is passed over for the one before; when every
    one fails to load, that error is raised, not a fresh start.
    """
    parent, _, _ = str(path).rstrip("/").rpartition("/")
    store = TrialCheckpoints(parent, filesystem)
    named = SavedCheckpoint(str(path).rstrip("/"), -1)
    unreadable: Exception | None = None
    for saved in [named, *reversed(store.list())]:
        try:
            return store.load(saved, map_location=map_location)
        except (FileNotFoundError, OSError):
            continue
        except (RuntimeError, EOFError) as exc:  # torch's "failed reading zip archive", a truncated pickle
            unreadable = exc
    if unreadable is not None:
        raise unreadable
    return None
