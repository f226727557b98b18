"""The most disk a sweep's checkpoints can take under the experiment-wide checkpoint budget.

The policy (carried out by the runner's ``CheckpointBudget`` callback and Ray's own
per-trial checkpoint manager):

- a trial that can continue keeps its ``tune.keep_checkpoints`` best checkpoints by the
  objective and its latest one; while it writes the next, it holds one more;
- a trial that cannot continue (budget spent, stopped by a trial scheduler, errored,
  diverged, out of memory) keeps nothing, unless it is among the ``tune.keep_best_trials``
  best: those keep their best epoch as weights only. Each ended trial also leaves a
  marker of a few bytes in its latest checkpoint (see :mod:`tune_app.experiment.checkpoints`);
- ``best_model/`` holds one more copy of the best weights.

Trials that can continue at once: every trial under HyperBand (paused trials keep their
checkpoints) and PBT (paused trials, and exploits restoring from others' checkpoints);
otherwise as many as run at once, ``tune.max_concurrent`` or the trial slots of this
machine (unknown on a cluster: then every trial).

Sizes are computed from the model's ``state_dict`` (built without allocating it, with
the number of classes the data can have at most), assuming that the optimizer keeps two
float32 moments per trainable weight, as AdamW does (no registered optimizer keeps more),
plus a per-tensor and per-file allowance for the file format and the filesystem's blocks.

Example:
    >>> from tune_app.spec import load_spec
    >>> budget = disk_budget(load_spec("quickstart"), slots=2)
    >>> budget.alive, budget.full_per_trial, budget.kept
    (2, 3, 3)
    >>> print(budget.describe())  # doctest: +ELLIPSIS
    checkpoints use at most 416 MB: 2 trials that can continue x 3 full checkpoints of 56.6 MB (1 best, ...
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spec import ExperimentSpec

PBT_MIN_KEPT = 4  # PBT exploits other trials' recent checkpoints: fewer kept would break its restores
TENSOR_BYTES = 512  # torch.save's zip entry and pickle record per tensor (measured: about 350)
FILE_BYTES = 64 * 1024  # per checkpoint: RNG, schedule and config records, metrics.json, filesystem blocks
ENDED_BYTES = 16 * 1024  # the marker an ended trial leaves (about 1.5 kB) with its directory's blocks
MOMENTS = 2  # optimizer state per trainable weight, in float32 values (AdamW's two moments)
MB = 2**20
LOGS_BYTES = 50 * MB  # allowance for Ray's logs and result files and tune-app's reports


@dataclass(frozen=True)
class DiskBudget:
    """The bound, in its parts."""

    alive: int  # trials that can hold checkpoints to continue from, at once
    full_per_trial: int  # full checkpoints each holds at most
    full_bytes: int  # one full checkpoint (weights, optimizer state, schedule, RNG)
    kept: int  # ended trials that keep their best weights
    weights_bytes: int  # one weights-only checkpoint, and best_model/
    trials: int  # every trial, for the markers ended trials leave

    @property
    def checkpoints(self) -> int:
        """Bytes of every checkpoint and of ``best_model/``, at most."""
        full = self.alive * self.full_per_trial * self.full_bytes
        return full + (self.kept + 1) * self.weights_bytes + self.trials * ENDED_BYTES if self.full_per_trial else 0

    def describe(self) -> str:
        """One line: the bound and what it is made of."""
        if not self.full_per_trial:
            return "checkpoints: none (tune.checkpoint_every is 0), so no best_model/ either"
        return (f"checkpoints use at most {math.ceil(self.checkpoints / MB)} MB: {self.alive} trials that can continue x "
                f"{self.full_per_trial} full checkpoints of {self.full_bytes / MB:.1f} MB ({self.full_per_trial - 2} "
                f"best, the latest, the one being written) + {self.kept} best ended trials x "
                f"{self.weights_bytes / MB:.1f} MB of weights + best_model/")


def disk_budget(spec: ExperimentSpec, slots: int | None = None) -> DiskBudget:
    """The checkpoint budget of ``spec``'s sweep; ``slots``: trials this machine runs at once (default: its CPUs)."""
    from ..training.models import state_size_for

    tune = spec.tune
    trials = spec.trial_count()
    if not tune.checkpoint_every:
        return DiskBudget(0, 0, 0, 0, 0, trials)
    size = state_size_for(spec.model.name, task=spec.task, encoder=spec.model.encoder,
                          num_classes=max_classes(spec))
    full = size.state_bytes + MOMENTS * size.param_bytes + TENSOR_BYTES * (size.state_tensors + (MOMENTS + 1) *
                                                                           size.param_tensors) + FILE_BYTES
    weights = size.state_bytes + TENSOR_BYTES * size.state_tensors + FILE_BYTES
    kept_each = max(tune.keep_checkpoints, PBT_MIN_KEPT) if tune.trial_scheduler == "pbt" else tune.keep_checkpoints
    return DiskBudget(alive=alive_trials(spec, slots), full_per_trial=kept_each + 2, full_bytes=full,
                      kept=min(tune.keep_best_trials, trials), weights_bytes=weights, trials=trials)


def alive_trials(spec: ExperimentSpec, slots: int | None = None) -> int:
    """How many trials can hold checkpoints to continue from at the same time."""
    tune = spec.tune
    trials = spec.trial_count()
    if tune.trial_scheduler in ("pbt", "hyperband"):
        return trials
    if tune.max_concurrent:
        return min(trials, tune.max_concurrent)
    if tune.address:  # a cluster's size is not known before connecting
        return trials
    return min(trials, slots if slots is not None else local_slots(spec))


def local_slots(spec: ExperimentSpec) -> int:
    """Trials this machine runs at once: its CPUs (and GPUs, when trials ask for them) per trial."""
    cpu, gpu = spec.tune.resources.cpu, spec.tune.resources.gpu
    slots = max(1, int((os.cpu_count() or 1) // cpu))
    if gpu and gpu != "auto":
        import torch

        slots = min(slots, int(torch.cuda.device_count() // gpu))
    return max(slots, 1)


def max_classes(spec: ExperimentSpec) -> int:
    """The most classes the data can have, known without reading it (its head's size follows)."""
    data = spec.data
    if data.dataset == "digits":
        return 10
    if data.dataset == "shapes":
        return 2 if data.binary else 4  # background, circle, square, triangle
    if spec.task == "classification" and data.train_dir:
        folder = Path(data.train_dir).expanduser()
        return max(2, sum(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())) if folder.is_dir() else 2
    return 256  # segmentation masks hold uint8 class indices


def used_bytes(directory: str | os.PathLike[str]) -> tuple[int, int]:
    """Disk blocks under an experiment directory: (checkpoints and best_model/, everything)."""
    checkpoints = total = 0
    for root, _, files in os.walk(directory):
        parts = Path(root).relative_to(directory).parts
        heavy = any(part.startswith("checkpoint_") or part == "best_model" for part in parts)
        for name in files:
            try:
                size = os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # deleted while we looked
                continue
            total += size
            checkpoints += size if heavy else 0
    return checkpoints, total
