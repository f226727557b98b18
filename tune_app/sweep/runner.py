"""Ray Tune assembly: the Tuner of a sweep (trainable, search algorithm, trial scheduler,
resources, storage, checkpoint and failure policy), and resume.

Ray is imported when a sweep starts, so validating a spec does not pay for it. The search
algorithms and trial schedulers themselves are registries in :mod:`.strategies`; what the
sweep needs of Ray's and Optuna's internals is in :mod:`.compat`, with the tested versions;
the experiment around the sweep (files, signals, reports) is :mod:`.lifecycle`'s.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..experiment.location import Location
from ..experiment.study import study_storage
from ..trial_result import EPOCH, POINT_KEY
from . import compat
from .cluster import RaySession, trial_resources, unshared_storage_warning
from .strategies import SEARCH_ALGS, TRIAL_SCHEDULERS

if TYPE_CHECKING:
    from ..spec import ExperimentSpec


# ---------------------------------------------------------------------- sweep
def _trainable(spec: ExperimentSpec, data: Any, resources: dict[str, float]) -> Any:
    from ray import tune

    from .trainable import train_trial

    return tune.with_resources(
        tune.with_parameters(train_trial, make_config=spec.train_config, data=data,
                             num_threads=max(1, int(resources["cpu"])), checkpoint_every=spec.tune.checkpoint_every),
        resources,
    )


def _run_config(spec: ExperimentSpec, location: Location, echo: Callable[[str], None], verbose: bool) -> Any:
    from ray import tune

    from .callbacks import CheckpointBudget, Progress, ReportRefresh
    from .disk import PBT_MIN_KEPT
    from .tracking import tracking_callbacks

    return tune.RunConfig(
        name=location.name,
        storage_path=location.storage,
        verbose=2 if verbose else 0,
        callbacks=[Progress(spec, echo), ReportRefresh(spec, location), CheckpointBudget(spec),
                   *tracking_callbacks(spec, location)],
        failure_config=tune.FailureConfig(max_failures=spec.tune.max_failures),
        # Under PBT a trial whose budget is spent ends here, before PBT sees the result: PBT
        # would pause it at a perturbation on its last epoch (while other trials wait for a
        # slot) and resume it from that checkpoint, which reports the last epoch again, and so
        # on for ever. Not for the others: HyperBand must see the last rung's results itself.
        stop={EPOCH: spec.train.epochs} if spec.tune.trial_scheduler == "pbt" else None,
        # Per trial, while it can continue: its best checkpoints by the objective and, always, its
        # latest (Ray's manager never deletes the latest; a NaN failure result ranks last). Once it
        # cannot, CheckpointBudget takes over. PBT exploits other trials' recent checkpoints:
        # keeping too few breaks its restores.
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=max(spec.tune.keep_checkpoints, PBT_MIN_KEPT) if spec.tune.trial_scheduler == "pbt"
            else spec.tune.keep_checkpoints,
            checkpoint_score_attribute=spec.metric, checkpoint_score_order=spec.mode),
    )


def run_sweep(
    spec: ExperimentSpec,
    location: Location,
    *,
    data: Any,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
    warm: Sequence[Any] = (),
    points: list[dict[str, Any]] | None = None,
    started: Callable[[Path | None], None] | None = None,
    ray: RaySession | None = None,
) -> Any:
    """Run the experiment on Ray Tune into ``location``; returns Ray's ``ResultGrid``.

    The Optuna study goes to ``tune.study_storage`` or ``<experiment>/optuna.db``, named
    after the experiment; an existing one (``tune-app extend``) is continued. ``warm``:
    finished Optuna trials of earlier experiments, given to the study first. With
    ``points``, exactly those flat configs run, once each, in order, instead of what the
    search algorithm would propose (``tune-app confirm``'s configs and seeds).
    ``started`` is called once Ray runs, just before the trials start: where the caller
    (re)installs its signal handlers, which ``ray.init`` replaced (Tune's own SIGINT
    handler is then left out). It gets the folder under which Ray's driver stages the
    experiment's files (see :func:`driver_staging`; None if this Ray has no such folder).
    ``ray``: the caller's session, started; None: a session of the sweep's own. The caller
    checks the installed versions first (:func:`.lifecycle.check_ready`).
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the old reporter honours verbose=0
    with _session(spec, ray, verbose, echo):
        import ray as ray_api
        from ray import tune

        resources = trial_resources(spec.tune.resources)
        if spec.tune.address and (warning := unshared_storage_warning(ray_api.nodes(), location.storage)):
            echo(warning)
        setup = dataclasses.replace(spec.search_setup(), warm=tuple(warm),
                                    study=(study_storage(spec.tune.study_storage, location.local), spec.name))
        scheduler = TRIAL_SCHEDULERS[spec.tune.trial_scheduler].factory(setup, spec.tune.trial_scheduler_options)
        if spec.tune.trial_scheduler == "pbt":
            # PBT mutates trial configs itself and refuses search algorithms: the population
            # is drawn here (given points first) and handed over as one grid of whole configs.
            population = spec.points_to_evaluate()
            population += spec.space.sample(spec.tune.num_samples - len(population), seed=spec.search_seed)
            param_space, search_alg, samples = {POINT_KEY: tune.grid_search(population)}, None, 1
        elif points is not None:
            from .searchers import PointsSearcher

            search_alg, param_space, samples = PointsSearcher(points, spec.metric, spec.mode), {}, len(points)
        else:
            search_alg = SEARCH_ALGS[spec.tune.search_alg].factory(setup, spec.tune.search_alg_options)
            param_space, samples = {}, spec.trial_count()
        tune_config = tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=samples,
            max_concurrent_trials=spec.tune.max_concurrent,
            time_budget_s=spec.tune.time_budget_s,
            # A reused actor saves a worker start per trial (5x on short trials), but under PBT
            # (Ray 2.60, function trainables) exploited trials then lost reported epochs.
            reuse_actors=spec.tune.trial_scheduler != "pbt",
        )
        tuner = tune.Tuner(_trainable(spec, data, resources), param_space=param_space, tune_config=tune_config,
                           run_config=_run_config(spec, location, echo, verbose))
        return _fit(tuner, started)


def resume_sweep(
    spec: ExperimentSpec,
    location: Location,
    *,
    data: Any,
    retry_errored: bool = False,
    verbose: bool = False,
    started: Callable[[Path | None], None] | None = None,
    ray: RaySession | None = None,
) -> Any:
    """Finish an interrupted experiment: finished trials stay, running ones continue from checkpoints.

    With ``retry_errored``, errored trials continue from their last checkpoint too;
    ``started`` and ``ray`` as for :func:`run_sweep`.
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with _session(spec, ray, verbose, print):
        from ray import tune

        from .searchers import experiment_at

        resources = trial_resources(spec.tune.resources)
        if location.remote is None:
            compat.search_state_moved_to(location.local)
        with experiment_at(location.local):
            tuner = tune.Tuner.restore(location.remote or str(location.local),
                                       trainable=_trainable(spec, data, resources), resume_unfinished=True,
                                       resume_errored=retry_errored)
            return _fit(tuner, started)


@contextmanager
def _session(spec: ExperimentSpec, given: RaySession | None, verbose: bool,
             echo: Callable[[str], None]) -> Iterator[RaySession]:
    """The caller's Ray session, or one started here (before Ray Tune is imported) and shut down after the sweep."""
    if given is not None:
        yield given
        return
    session = RaySession(spec.tune.address, verbose=verbose, dashboard=spec.tune.dashboard, echo=echo).start()
    try:
        yield session
    finally:
        session.stop()


SAVE_SHARE = 19  # a save of Ray's experiment state waits 19 times its duration: at most 5% of the driver's time


def _snapshots_within_their_share() -> AbstractContextManager[None]:
    """Keep Ray's saves of the experiment state to ~5% of the driver's time, also those forced by checkpoints.

    Ray forces a save whenever a trial has made ``num_to_keep`` checkpoints since the last
    one (see :func:`~tune_app.sweep.compat.forced_saves_within`). With one checkpoint kept
    that is a save per checkpoint, and each save writes every trial's state: at 2,000
    one-epoch trials the driver spent 1.8 s per trial on it (benchmarks/many_trials.py).
    Here a forced save waits until ``SAVE_SHARE`` times the last save's duration has passed
    since it: small sweeps still save after each checkpoint (the trials' ``result.json``
    reach the experiment directory with each save), large ones every so many seconds. A
    state that names deleted checkpoints (a driver killed between two saves) is harmless:
    the trainable restores from the trial's newest surviving checkpoint
    (:func:`~tune_app.experiment.checkpoints.restorable_state`), and deleting a checkpoint
    that is already gone is no error.
    """
    return compat.forced_saves_within(SAVE_SHARE)


def _fit(tuner: Any, started: Callable[[Path | None], None] | None) -> Any:
    """Run ``tuner`` with the caller handling SIGINT and SIGTERM (see ``run_sweep``) and Ray's saves in their share."""
    if started is not None:
        # Tune's SIGINT handler stops the sweep through Ray, which a signal to the whole job has already stopped.
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        started(compat.staging_root())
    with _snapshots_within_their_share(), compat.whole_files_in_local_storage():
        return tuner.fit()


def driver_staging(root: Path | None, location: Location) -> Path | None:
    """The driver's local copy of the experiment's small files, newer than the experiment's own.

    Ray copies it there (uploads it, for a remote one) with each save of its experiment
    state (see :func:`_snapshots_within_their_share`); after a signal to the whole job no
    copy comes again, so the caller makes it itself. Found without Ray (the caller may be
    handling a signal), see :func:`~tune_app.sweep.compat.staged_driver_files`.
    """
    return None if root is None else compat.staged_driver_files(root, location.name)
