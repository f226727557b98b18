"""Per-trial tracking as Ray Tune callbacks: one MLflow run per trial under a parent run for the
sweep; TensorBoard event files per trial; one W&B run per trial.

It imports Ray: the runner imports it when a sweep starts. The driver alone talks to the tracking
server: runs are created and written from the callbacks, keyed by Ray's trial id, so
concurrent trials never share a run (Ray's own MLflow callback put 20 trials into one
W&B-style run, ray #28919) and never log a parameter twice with another value ("Changing
param values is not allowed", ray #30649). A resumed or extended sweep finds its parent
and its trials' runs again instead of creating new ones.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from ..experiment.location import Location
from ..trial_result import EPOCH, FAILURE, RAY_RESULT_KEYS, epochs_trained, failure_status, trial_params

if TYPE_CHECKING:
    from ..spec import ExperimentSpec

MLFLOW_DB = "mlflow.db"  # the local store in the experiment directory when MLFLOW_TRACKING_URI is unset
# Tags of tune-app's runs; `mlflow.parentRunId` nests a trial's run under the sweep's.
EXPERIMENT_DIR_TAG = "tune_app.experiment_dir"
TRIAL_ID_TAG = "trial_id"


def mlflow_uri(location: Location) -> str:
    """``MLFLOW_TRACKING_URI``, else a SQLite store in the experiment (``mlflow ui --backend-store-uri`` it)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{location.local / MLFLOW_DB}"


class MlflowTracking(Callback):
    """One MLflow run per trial: parameters by dotted name, every metric each epoch, tags.

    Tags: ``experiment``, ``trial_id``, ``trial_scheduler``, ``search_alg``, ``seed``; the
    sweep's parent run also carries the experiment's directory, by which a resumed or
    extended sweep finds it again. The MLflow experiment is named after tune-app's.
    """

    def __init__(self, spec: ExperimentSpec, location: Location) -> None:
        self.spec, self.location = spec, location
        self.client: Any = None
        self.parent: str | None = None
        self.runs: dict[str, str] = {}  # Ray trial id -> MLflow run id

    # Callbacks are pickled with the experiment state: the client (a connection) is not.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "client": None, "parent": None, "runs": {}}

    def setup(self, **info: Any) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=mlflow_uri(self.location))
        found = self.client.get_experiment_by_name(self.spec.name)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(self.spec.name)
        tags = self._tags()
        where = f"tags.`{EXPERIMENT_DIR_TAG}` = '{self.location}'"
        for run in self.client.search_runs([self.experiment_id], filter_string=where, max_results=10_000):
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent is None:
                self.parent = run.info.run_id
            elif TRIAL_ID_TAG in run.data.tags:
                self.runs[run.data.tags[TRIAL_ID_TAG]] = run.info.run_id
        if self.parent is None:
            self.parent = self.client.create_run(self.experiment_id, run_name=self.spec.name, tags=tags).info.run_id
        else:
            self.client.update_run(self.parent, status="RUNNING")

    def _tags(self) -> dict[str, str]:
        return {"experiment": self.spec.name, "trial_scheduler": self.spec.tune.trial_scheduler,
                "search_alg": self.spec.tune.search_alg, "seed": str(self.spec.train.seed),
                EXPERIMENT_DIR_TAG: str(self.location)}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._run_of(trial)

    def _run_of(self, trial: Any) -> str | None:
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        from mlflow.entities import Param

        try:
            tags = {**self._tags(), TRIAL_ID_TAG: trial.trial_id, "mlflow.parentRunId": self.parent}
            run = self.client.create_run(self.experiment_id, run_name=trial.trial_id, tags=tags).info.run_id
            params = [Param(k, str(v)) for k, v in sorted(trial_params(trial.config).items())]
            self.client.log_batch(run, params=params)
        except Exception as exc:  # tracking must never stop the sweep
            logging.getLogger(__name__).warning("could not create the MLflow run of trial %s: %s", trial.trial_id, exc)
            return None
        self.runs[trial.trial_id] = run
        return run

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        from mlflow.entities import Metric

        run = self._run_of(trial)
        if run is None:
            return
        now, step = int(time.time() * 1000), epochs_trained(result)
        metrics = [Metric(k, float(v), now, step) for k, v in result.items()
                   if k not in RAY_RESULT_KEYS and k != EPOCH and isinstance(v, (int, float))
                   and not isinstance(v, bool) and math.isfinite(v)]
        try:
            self.client.log_batch(run, metrics=metrics)
        except Exception as exc:
            logging.getLogger(__name__).warning("could not log trial %s to MLflow: %s", trial.trial_id, exc)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        ended = failure_status(result[FAILURE]) if result.get(FAILURE) else (
            "done" if epochs_trained(result) >= self.spec.train.epochs else "stopped")
        self._end(trial, "FAILED" if result.get(FAILURE) else "FINISHED", ended)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FAILED", "ERROR")

    def _end(self, trial: Any, status: str, ended: str) -> None:
        run = self._run_of(trial)
        if run is None:
            return
        try:
            self.client.set_tag(run, "ended", ended)
            self.client.set_terminated(run, status=status)
        except Exception as exc:
            logging.getLogger(__name__).warning("could not end the MLflow run of trial %s: %s", trial.trial_id, exc)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.client is not None and self.parent is not None:
            self.client.set_terminated(self.parent, status="FINISHED")


def tensorboard_events(spec: ExperimentSpec, location: Location) -> Callback:
    """TensorBoard event files per trial, in its directory: Ray's own writer (tags ``ray/tune/<metric>``,
    step = Ray's training iteration), explicit here so it stays when Ray's automatic loggers are off."""
    from ray.tune.logger import TBXLoggerCallback

    return TBXLoggerCallback()


class WandbTracking(Callback):
    """One W&B run per trial, created and written by the driver (``wandb.init(reinit="create_new")``).

    Project ``WANDB_PROJECT`` or the experiment's name, grouped by the experiment, run id and
    name the trial id, the searched values by dotted name as its config, every metric each
    epoch (step = epoch), tags ``experiment:``, ``trial_scheduler:``, ``search_alg:``,
    ``seed:``. Not Ray's W&B callback: its logging actors are killed when the sweep ends,
    which lost the last trials' offline records here. ``WANDB_MODE=offline`` keeps the runs
    in ``<experiment>/wandb/`` for ``wandb sync``.
    """

    def __init__(self, spec: ExperimentSpec, location: Location) -> None:
        self.spec, self.location = spec, location
        self.runs: dict[str, Any] = {}  # Ray trial id -> the live wandb Run

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "runs": {}}

    def _run_of(self, trial: Any) -> Any:
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        import wandb

        spec = self.spec
        try:
            run = wandb.init(project=os.environ.get("WANDB_PROJECT") or spec.name, group=spec.name,
                             id=trial.trial_id, name=trial.trial_id, resume="allow", reinit="create_new",
                             dir=str(self.location.local), config=trial_params(trial.config),
                             tags=[f"experiment:{spec.name}", f"trial_scheduler:{spec.tune.trial_scheduler}",
                                   f"search_alg:{spec.tune.search_alg}", f"seed:{spec.train.seed}"],
                             settings=wandb.Settings(console="off"))  # the driver's console is every trial's
        except Exception as exc:  # tracking must never stop the sweep
            logging.getLogger(__name__).warning("could not start the W&B run of trial %s: %s", trial.trial_id, exc)
            return None
        self.runs[trial.trial_id] = run
        return run

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._run_of(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        run = self._run_of(trial)
        if run is None:
            return
        metrics = {k: v for k, v in result.items() if k not in RAY_RESULT_KEYS and isinstance(v, (int, float))
                   and not isinstance(v, bool) and math.isfinite(v)}
        try:
            run.log(metrics, step=epochs_trained(result))
        except Exception as exc:
            logging.getLogger(__name__).warning("could not log trial %s to W&B: %s", trial.trial_id, exc)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, 1 if (trial.last_result or {}).get(FAILURE) else 0)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, 1)

    def _end(self, trial: Any, exit_code: int) -> None:
        run = self.runs.pop(trial.trial_id, None)
        if run is not None:
            run.finish(exit_code=exit_code)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial_id in list(self.runs):  # trials an interrupted sweep leaves running
            self.runs.pop(trial_id).finish()


TRACKERS = {"mlflow": MlflowTracking, "tensorboard": tensorboard_events, "wandb": WandbTracking}


def tracking_callbacks(spec: ExperimentSpec, location: Location) -> list[Callback]:
    """The callbacks of ``tune.loggers``, in their order."""
    return [TRACKERS[name](spec, location) for name in spec.tune.loggers]
