"""What a trial reports, in one place: the keys of a result and how to read them back.

The trainable adapter writes results with these keys, the runner's callbacks read them
while the sweep runs, and the report layer reads them from Ray's ``result.json`` files
afterwards. No dependencies (not even on Ray), so all three can import it.

Example:
    >>> result = {EPOCH: 3, "val_acc": 0.9, FAILURE: "oom: out of memory at batch_size 256"}
    >>> epoch_of(result), failure_status(result[FAILURE])
    (3, 'OOM')
    >>> trial_params({POINT_KEY: {"lr": 0.01}})
    {'lr': 0.01}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keys of every result a trial reports.
EPOCH = "epoch"  # epochs completed; Ray's training_iteration also counts results repeated after a restore
FAILURE = "failure"  # "<kind>: <reason>" when the trial ended itself (diverged, out of memory)
RESTORED_FROM_EPOCH = "restored_from_epoch"  # the epoch of the checkpoint this session started from; 0: none
NODE_ID = "node_id"  # the Ray node the trial ran on

# Ray's own counter, for results written before tune-app reported EPOCH (and Ray's schedulers' time_attr).
ITERATION = "training_iteration"

# Keys Ray adds to every reported result; everything else is a metric of ours.
RAY_RESULT_KEYS = frozenset({
    "timestamp", "checkpoint_dir_name", "should_checkpoint", "done", ITERATION, "trial_id", "date",
    "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
    "iterations_since_restore", "experiment_tag",
})

# Failure kinds the trainable reports, as the statuses the reports show for them.
FAILURE_KINDS = ("diverged", "oom")
# Statuses of trials that ended without a usable result: Ray's ERROR and the failure kinds.
FAILED_STATUSES = ("ERROR", *(kind.upper() for kind in FAILURE_KINDS))

# Keys of a trial's config that are not searched parameters: ``tune-app confirm`` runs a
# sweep's trial again under a new seed, and says which trial it repeats.
RUN_SEED = "seed"
ORIGIN_TRIAL = "origin_trial"
RUN_KEYS = (RUN_SEED, ORIGIN_TRIAL)

# PBT needs Ray's own variant generator, which cannot express a conditional space:
# there each trial's flat config travels under this one key.
POINT_KEY = "params"


def epoch_of(result: Mapping[str, Any]) -> Any:
    """The epoch a result belongs to: ``epoch``, else Ray's ``training_iteration`` (None if neither)."""
    return result.get(EPOCH, result.get(ITERATION))


def epochs_trained(result: Mapping[str, Any]) -> int:
    """:func:`epoch_of` as an integer, 0 for a result without one."""
    return int(epoch_of(result) or 0)


# Worded into the error of a trial whose checkpoint did not fit on the storage's disk (ENOSPC).
DISK_FULL = "no space left on device"


def is_disk_full(error: Any) -> bool:
    """Whether a trial's error says its storage's disk was full.

    Example:
        >>> is_disk_full("OSError: [Errno 28] No space left on device"), is_disk_full(None)
        (True, False)
    """
    return isinstance(error, str) and (DISK_FULL in error.lower() or "[errno 28]" in error.lower())


def failure_status(failure: str) -> str:
    """The status a ``failure`` text stands for: ``"diverged: loss is nan"`` -> ``"DIVERGED"``."""
    return str(failure).split(":", 1)[0].upper()


def failure_result(epoch: int, metrics: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The result that ends a trial which failed in ``epoch``: every metric NaN, and the reason.

    Tune needs the objective in each result; NaN ranks last and Optuna records the trial
    as failed.
    """
    return {EPOCH: epoch, **{metric: float("nan") for metric in metrics}, FAILURE: reason}


def trial_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's flat searched parameters, whichever way the search algorithm delivered them."""
    inner = config.get(POINT_KEY)
    return dict(inner) if isinstance(inner, dict) and len(config) == 1 else dict(config)
