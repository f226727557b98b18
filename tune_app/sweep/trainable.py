"""The Ray Tune adapter around the shared training function.

Restore first, then loop (Ray Tune's own pattern): a trial that Ray restarts after a
failure, that HyperBand resumes, or that PBT restarts from a better trial's
checkpoint continues from that checkpoint. Every epoch's metrics are reported with
a checkpoint (every ``checkpoint_every`` epochs; the directory layout is
:mod:`~tune_app.experiment.checkpoints`), so schedulers such as ASHA can stop weak trials and no
finished epoch is lost. The training itself is plain PyTorch
(:class:`~tune_app.training.TrainingRun`), the same that ``tune-app train`` runs.
"""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from ..experiment.checkpoints import ENDED, RESULT, restorable_state, write_checkpoint
from ..training import METRICS, DataBundle, DivergedError, TrainConfig, TrainingRun
from ..training.lr_schedules import current_lr
from ..trial_result import (
    DISK_FULL,
    EPOCH,
    FAILURE,
    NODE_ID,
    RESTORED_FROM_EPOCH,
    failure_result,
    is_disk_full,
    trial_params,
)
from . import compat

compat.restores_from_a_missing_checkpoint()  # a state naming a deleted checkpoint: see restorable_state


def train_trial(
    config: dict[str, Any],
    *,
    make_config: Callable[[dict[str, Any]], TrainConfig],
    data: DataBundle,
    num_threads: int = 1,
    checkpoint_every: int = 1,
) -> None:
    """One trial: ``config`` holds the searched values Tune chose (flat, dotted names)."""
    torch.set_num_threads(num_threads)
    run = TrainingRun(make_config(trial_params(config)), data=data)
    restored_from = 0
    node = ray.get_runtime_context().get_node_id()
    checkpoint = tune.get_checkpoint()
    state = None
    if checkpoint is not None:
        state = restorable_state(checkpoint.path, checkpoint.filesystem, map_location=run.device)
    if state is not None and state.get(ENDED) == "finished":
        # The checkpoint budget settled this trial after it ended, but the driver died before
        # Ray recorded the end (its saved state still said running): the trial is done, and
        # its history ends again with its final result.
        tune.report({**state[RESULT], RESTORED_FROM_EPOCH: state["epoch"], NODE_ID: node})
        return
    # A full state continues; an errored trial's ended state starts afresh (the budget took its checkpoints).
    if state is not None and state.get(ENDED) is None:
        run.load_state_dict(state)
        # PBT restarts a trial from another trial's checkpoint with perturbed values:
        # this trial's config, not the checkpoint's, sets the hyperparameters from here on.
        run.adopt_hyperparameters(state["config"])
        restored_from = run.epoch
        if run.epoch >= run.config.epochs:
            # Restored with the budget spent (PBT cloned a finished trial, or Ray restarted one
            # whose last results it had not yet taken in): nothing is left to train, but the
            # trial's history must end at that epoch, with what these weights score.
            tune.report({EPOCH: run.epoch, **run.evaluate(), "lr": current_lr(run.optimizer),
                         RESTORED_FROM_EPOCH: restored_from, NODE_ID: node})
            return
    for metrics in _epochs_or_failure(run):
        metrics = {**metrics, RESTORED_FROM_EPOCH: restored_from, NODE_ID: node}
        if FAILURE in metrics:
            tune.report(metrics)  # ends the trial: retrying a diverged or out-of-memory run would fail again
            return
        last = run.epoch == run.config.epochs
        if checkpoint_every and (run.epoch % checkpoint_every == 0 or last):
            _report_with_checkpoint(run, metrics)
        else:
            tune.report(metrics)


def _report_with_checkpoint(run: TrainingRun, metrics: dict[str, Any]) -> None:
    """Report ``metrics`` with a checkpoint of ``run``; a full disk becomes an error that says so.

    The error (Ray's retries restore from the last checkpoint that was saved) names the
    checkpoint's size and what to do; ``tune-app resume --retry-errored`` continues the
    trial once there is room.
    """
    with tempfile.TemporaryDirectory() as directory:
        try:
            write_checkpoint(directory, run.state_dict(), metrics)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        except OSError as exc:
            if not is_disk_full(str(exc)) and exc.errno != errno.ENOSPC:
                raise
            _remove_partial_checkpoint()
            size = sum(f.stat().st_size for f in Path(directory).rglob("*") if f.is_file()) / 2**20
            raise OSError(errno.ENOSPC, f"{DISK_FULL} for the checkpoint of epoch {run.epoch} ({size:.1f} MB): free "
                                        f"space in the experiment's storage (or the temporary directory "
                                        f"{tempfile.gettempdir()}), then tune-app resume DIR --retry-errored "
                                        f"continues this trial from its last checkpoint") from None


def _remove_partial_checkpoint() -> None:
    """Delete what the failed upload of a checkpoint left in storage: it holds the disk's last bytes
    (the reports and other trials' results need them), and it is no checkpoint to restore from."""
    found = compat.reported_checkpoint_dir()  # Ray numbered the checkpoint before uploading it
    if found is None:  # another Ray layout: the error below is what matters
        return
    filesystem, directory = found
    try:
        filesystem.delete_dir(directory)
    except Exception:  # nothing was written: the error below is what matters
        pass


def _epochs_or_failure(run: TrainingRun) -> Iterator[dict[str, Any]]:
    """The run's epochs; a diverging loss or an out-of-memory error ends them with a failure result.

    The result carries every metric as NaN and the reason, e.g. ``"oom: out of memory at
    batch_size 256 with amp bf16, even in micro-batches of 8 ..."``, which the reports show
    (see ``trial_result``). Before that, the run itself retried in smaller micro-batches.
    """
    config = run.config
    try:
        yield from run.epochs()
        return
    except DivergedError as exc:
        reason = f"diverged: {exc}"
    except torch.OutOfMemoryError as exc:
        reason = f"oom: {run.oom_text()} ({str(exc)[:200]})"
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    yield failure_result(run.epoch + 1, METRICS[config.task], reason)
