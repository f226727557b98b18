"""An experiment's lifecycle around its sweeps: storage, files, signals, reports, export.

``tune-app search``, ``resume``, ``extend``, ``compare`` and ``confirm`` all run sweeps
the same way: the experiment directory is checked (it can hold the sweep's checkpoints)
and written (``spec.yaml``, ``parameters.json``, ``data.json``) before anything trains;
while the sweep runs, SIGTERM / SIGINT write the reports from what is on disk (see
:mod:`.interrupts`; under :mod:`tune_app.supervisor`, which this process tells of each
experiment, the supervisor writes them once this process has ended); whatever happened,
the reports are written when it ends, then the best model is exported and what the disk
holds is said. :class:`Experiment` is that sequence, once.

Example:
    >>> from tune_app.spec import load_spec
    >>> experiment = Experiment.create(load_spec("quickstart"))  # doctest: +SKIP
    >>> experiment.search()  # doctest: +SKIP
    0
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunError, SpecError
from ..experiment.location import Location
from ..experiment.study import study_storage
from ..supervision import tell, watched
from .cluster import RaySession
from .disk import LOGS_BYTES, MB, disk_budget, used_bytes

if TYPE_CHECKING:
    import pandas as pd

    from ..spec import ExperimentSpec
    from ..training.datasets import DataBundle

Echo = Callable[[str], None]


def _uses_a_study(spec: ExperimentSpec) -> bool:
    """Whether the sweep's search keeps an Optuna study (every search algorithm but grid; PBT has none)."""
    return spec.tune.search_alg != "grid" and spec.tune.trial_scheduler != "pbt"


def check_ready(spec: ExperimentSpec) -> None:
    """What a sweep needs, checked before anything is created or started: each tracker of ``tune.loggers``
    has its package, and Ray and Optuna are versions tune-app was tested with (:func:`.compat.check_versions`)."""
    from ..spec.loggers import missing_packages
    from .compat import check_versions

    problems = missing_packages(spec.tune.loggers)
    if problems:
        raise SpecError(problems)
    check_versions()


def new_location(spec: ExperimentSpec, *, study: bool = True) -> Location:
    """Where a new experiment goes; nothing may be there yet, nor (``study``) an Optuna study of its name."""
    from ..experiment.study import check_new_study

    location = Location.create(spec.tune.storage, spec.name)
    if study:
        check_new_study(study_storage(spec.tune.study_storage, location.local), spec.name)
    return location


def shared_data(spec: ExperimentSpec, echo: Echo = print) -> DataBundle:
    """The datasets, built once in the driver and shared with every trial through Ray.

    In-memory datasets travel whole; a folder's travels as its file list, and each node
    maps its own image cache (built here first for this node, so a bad image stops the
    sweep before any training).
    """
    from ..training.engine import build_data_for

    try:
        data = build_data_for(spec.train_config())
    except ValueError as exc:  # a folder that cannot be read as a dataset: the data section's problem
        raise SpecError(str(exc)) from None
    for note in data.notes:
        echo(note)
    return data


def make_directory(spec: ExperimentSpec, location: Location) -> None:
    """Create the experiment directory, or fail now, before any training, if it cannot hold the sweep.

    For a remote experiment this checks its local mirror; the remote store's own limits
    are its provider's.
    """
    directory = location.local
    try:
        directory.mkdir(parents=True)
        probe = directory / ".write-test"
        probe.write_bytes(b"\0" * 65536)
        probe.unlink()
    except OSError as exc:
        raise SpecError([("tune.storage", f"cannot write the experiment directory {directory}: "
                                          f"{exc.strerror or exc}")]) from None
    budget = disk_budget(spec)
    need = (0 if location.remote else budget.checkpoints) + LOGS_BYTES
    free = shutil.disk_usage(directory).free
    if free < need:
        directory.rmdir()
        raise SpecError([("tune.storage", f"only {free / MB:.0f} MB free at {directory}; this sweep needs up to "
                                          f"{need / MB:.0f} MB ({budget.describe()}; plus {LOGS_BYTES / MB:.0f} MB "
                                          f"for logs and reports). Free space, use --storage elsewhere, or lower "
                                          f"tune.max_concurrent / tune.keep_best_trials / tune.keep_checkpoints")])


def start_ray_building_data(spec: ExperimentSpec, *, echo: Echo = print, verbose: bool = False,
                            study: str | None = None) -> tuple[RaySession, DataBundle]:
    """Start Ray (in this thread) while another thread builds the data; both, or the first error.

    A local Ray instance takes seconds to start its processes, and the data about as long
    to build; they need nothing of each other. The other thread also readies what the
    driver needs after the sweep and nothing of Ray: a new ``study``'s tables, the reports'
    libraries. Ray is shut down again if the data fails.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="tune-app-data") as pool:
        data = pool.submit(_driver_ready, spec, echo, study)
        ray = RaySession(spec.tune.address, verbose=verbose, dashboard=spec.tune.dashboard, echo=echo).start()
    try:
        return ray, data.result()
    except BaseException:
        ray.stop()
        raise


def _driver_ready(spec: ExperimentSpec, echo: Echo, study: str | None) -> DataBundle:
    """The data, then (while Ray still starts) the study's tables and the final reports' libraries."""
    from ..report import preload

    data = shared_data(spec, echo)
    if study is not None:
        from ..experiment.study import rdb_storage

        rdb_storage(study)  # creates a new study's tables: 0.6 s on a new SQLite file
    preload()
    return data


def copy_staged(location: Location, root: Path | None, echo: Echo = print) -> None:
    """What the driver had not yet copied to the experiment (Ray does with each save of its state, every few
    seconds on a large sweep), copied (uploaded) there now: for the reports, and for resume. No Ray needed."""
    from .runner import driver_staging

    local_copy = driver_staging(root, location)
    if local_copy is not None:
        location.push_tree(local_copy)
        echo(f"{'uploaded' if location.remote else 'copied'} the driver's latest results and state to {location}")


def reports_from_disk(location: Location, spec: ExperimentSpec | None = None, *,
                      csv_first: bool = False) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Every report of the experiment, from what is on disk now (``spec``: the experiment's, read from its
    ``spec.yaml`` if not given); a remote experiment's mirror is pulled first and pushed after. No Ray needed.

    ``csv_first``: after a signal, with a SIGKILL to come (30 s later under SLURM and Kubernetes): the CSVs,
    ``report.md`` and ``best_config.yaml`` first, without parameter importance (fANOVA: most of the 35 s a
    2,000-trial experiment's reports take here), then ``report.md`` with it and ``report.html``.
    """
    from ..report import FORMATS, write_reports

    if spec is None:
        from ..spec import load_spec

        spec = load_spec(location.local / "spec.yaml")
    location.pull()
    first: dict[str, Path] = {}
    if csv_first:
        _, first = write_reports(location.local, best_config=spec.fixed_at, formats=("csv", "md"), final=False)
        location.push([*first.values(), *location.driver_files()])
    rest = ("md", "html") if csv_first else FORMATS  # the CSVs just written are what a second pass would write
    results, paths = write_reports(location.local, best_config=spec.fixed_at, formats=rest)
    location.push([*paths.values(), *location.driver_files()])
    return results, {**first, **paths}


class Experiment:
    """One experiment directory and the sweeps run into it.

    Args:
        spec: The experiment's spec, its weights resolved (see :meth:`ExperimentSpec.with_weights_resolved`).
        location: Where it lives.
        data: The datasets every trial shares (:func:`shared_data`).
        echo: Where progress lines go.
        verbose: Show Ray's own progress table and logs.
        ray: The Ray session the sweeps run on, when the experiment owns it (:meth:`prepare` starts one): it
            is waited for before a sweep and shut down after it, while the reports are written. Without one,
            the sweep connects to Ray itself (or finds the caller's: ``tune-app compare`` shares one session).
    """

    def __init__(self, spec: ExperimentSpec, location: Location, data: DataBundle, *, echo: Echo = print,
                 verbose: bool = False, ray: RaySession | None = None) -> None:
        self.spec, self.location, self.data, self.echo, self.verbose = spec, location, data, echo, verbose
        self._ray = ray
        self._lock = threading.Lock()  # a signal's thread and the main thread may both be writing the reports
        self._staging: Path | None = None  # where Ray's driver stages the experiment's files, once Ray runs

    # -------------------------------------------------------------- opening
    @classmethod
    def create(cls, spec: ExperimentSpec, *, echo: Echo = print, verbose: bool = False,
               study: bool = True) -> Experiment:
        """A new experiment at ``tune.storage``/``name``, its directory checked and its files written."""
        location = new_location(spec, study=study)
        spec = spec.with_weights_resolved()
        make_directory(spec, location)  # before Ray starts: a storage that cannot hold the sweep stops us at once
        experiment = cls.prepare(spec, location, echo=echo, verbose=verbose, study=study)
        with experiment._stopping_ray_on_error():
            experiment.write_files()
        return experiment

    @classmethod
    def open(cls, location: Location, *, echo: Echo = print, verbose: bool = False) -> Experiment:
        """An existing experiment, with its own spec (``spec.yaml``) and data."""
        from ..spec import load_spec

        spec = load_spec(location.local / "spec.yaml").with_weights_resolved()
        check_ready(spec)
        return cls.prepare(spec, location, echo=echo, verbose=verbose)

    @classmethod
    def prepare(cls, spec: ExperimentSpec, location: Location, *, echo: Echo = print, verbose: bool = False,
                study: bool = False) -> Experiment:
        """Start Ray while a thread builds the data (seconds saved before the first trial), and with ``study``
        the tables of the experiment's Optuna study; the experiment owns that Ray session."""
        url = study_storage(spec.tune.study_storage, location.local) if study and _uses_a_study(spec) else None
        ray, data = start_ray_building_data(spec, echo=echo, verbose=verbose, study=url)
        return cls(spec, location, data, echo=echo, verbose=verbose, ray=ray)

    @contextlib.contextmanager
    def _stopping_ray_on_error(self) -> Iterator[None]:
        """Bad input found after Ray started: Ray is shut down before the error reaches the user."""
        try:
            yield
        except BaseException:
            if self._ray is not None:
                self._ray.stop()
            raise

    def start(self) -> None:
        """Make the experiment's directory (see :func:`make_directory`), then write its files."""
        make_directory(self.spec, self.location)
        self.write_files()

    def write_files(self) -> None:
        """The resolved spec, the parameters' distributions and what the data is (how it was read, its classes
        and validation preprocessing, for the exported model)."""
        import yaml

        from ..experiment.export import MODEL_DATA_FILE, data_summary

        spec = self.spec
        self.location.write_text("spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
        # The searched parameters' distributions, for reports that never import the spec layer.
        self.location.write_text("parameters.json", json.dumps(spec.space.describe(), indent=2))
        self.location.write_text(MODEL_DATA_FILE, json.dumps(data_summary(spec.train_config(), self.data), indent=2))

    def record_origin(self, key: str, entry: dict[str, Any]) -> None:
        """Note in ``origin.json`` what the experiment grew from (``warm_start``) or by (``extended``)."""
        from ..experiment.origin import add_origin

        self.location.push([add_origin(self.location.local, key, entry)])

    # ------------------------------------------------------------- the sweeps
    def search(self, *, spec: ExperimentSpec | None = None, warm: Sequence[Any] = (),
               points: list[dict[str, Any]] | None = None, quiet: bool = False) -> int:
        """Run a sweep into the experiment (see :func:`.runner.run_sweep`); the exit code.

        ``spec``: what the sweep runs when it differs from the experiment's own (an extension's trial count
        and seed); the reports keep the experiment's.
        """
        from .runner import run_sweep

        return self._run(run_sweep, spec or self.spec, quiet, echo=self.echo, warm=warm, points=points)

    def resume(self, *, retry_errored: bool = False, quiet: bool = False) -> int:
        """Finish the interrupted sweep (see :func:`.runner.resume_sweep`); the exit code."""
        from .runner import resume_sweep

        return self._run(resume_sweep, self.spec, quiet, retry_errored=retry_errored)

    def _run(self, sweep: Callable[..., Any], spec: ExperimentSpec, quiet: bool, **options: Any) -> int:
        """Run ``sweep`` and write the reports, whatever happened (a signal to the whole job included)."""
        from .interrupts import interrupts

        start = time.monotonic()
        where = {"storage": self.location.storage, "name": self.location.name}
        tell("experiment", **where)
        try:
            with interrupts(self._interrupted) as watcher:

                def started(root: Path | None) -> None:  # Ray runs: handle the signals again, know where it stages
                    self._staging = root
                    tell("staging", root=root and str(root), **where)
                    watcher.arm()

                try:
                    sweep(spec, self.location, data=self.data, verbose=self.verbose, started=started, ray=self._ray,
                          **options)
                finally:
                    # Whatever happened, what was computed so far reaches the reports.
                    watcher.hold_main = False  # a signal from here on must not stop this thread holding the lock
                    with ThreadPoolExecutor(1, thread_name_prefix="tune-app-reports") as pool:
                        reports = pool.submit(self.write_reports)  # while Ray shuts down in this thread
                        if self._ray is not None:
                            self._ray.stop()
                    results, paths = reports.result()
                    tell("reported", **where)
        finally:
            if self._ray is not None:
                self._ray.stop()  # the sweep never started (or a report failed): Ray is down all the same
        exported = self._export_quietly()
        if not quiet:
            self._summarize(paths, time.monotonic() - start)
            self.echo(exported)
            self._disk_summary()
        full = self._disk_full_advice(results)
        if full:
            self.echo(full)
        if not ((results["status"] == "TERMINATED") & (results["epochs"] > 0)).any():
            raise RunError(f"no trial finished successfully; {full or 'see ' + str(paths['report'])}")
        return 0

    # ------------------------------------------------------------ the reports
    def write_reports(self) -> tuple[pd.DataFrame, dict[str, Path]]:
        """Every report, from what is on disk now; a remote experiment's mirror is pulled first and pushed after."""
        with self._lock:
            return reports_from_disk(self.location, self.spec)

    def _interrupted(self, signal_name: str) -> None:
        """SIGTERM / SIGINT while the sweep runs (in the signal's own thread): the reports, then how to continue."""
        from .interrupts import unfailing

        echo = unfailing(self.echo)
        if watched():  # the supervisor writes the reports once this process has ended, and says how to go on
            copy_staged(self.location, self._staging, echo)
            tell("copied", storage=self.location.storage, name=self.location.name)
            return
        echo(f"\n{signal_name}: writing the reports from what is on disk (a second signal exits at once)")
        location = self.location
        copy_staged(location, self._staging, echo)
        with self._lock:
            _, paths = reports_from_disk(location, self.spec, csv_first=True)
        echo(f"reports: {paths['report']}")
        echo(f"interrupted; finish the sweep with: tune-app resume {location}")

    def _export_quietly(self) -> str:
        """Write best_model/ after a sweep; what happened, in one line (a sweep never fails for it)."""
        from ..experiment.export import export_best_model

        try:
            return export_best_model(self.location).describe()
        except SpecError as exc:
            return f"no best_model/: {exc}"
        except Exception as exc:  # a damaged checkpoint, a full disk: the sweep's results stand; export can be rerun
            return f"no best_model/: {type(exc).__name__}: {exc} (retry with tune-app export {self.location})"

    def _summarize(self, paths: dict[str, Path], seconds: float) -> None:
        from ..report import summary_text

        location = self.location
        self.echo("")
        self.echo(f"finished in {seconds:.0f}s: {location}")
        if location.remote:
            self.echo(f"(reports also in the local mirror {location.local})")
        self.echo(summary_text(location.local, paths))

    # ------------------------------------------------------------------ disk
    def _disk_summary(self) -> None:
        if self.location.remote:
            return
        checkpoints, total = used_bytes(self.location.local)
        self.echo(f"disk: {total / MB:.0f} MB used, {checkpoints / MB:.0f} MB of it checkpoints and best_model/ "
                  f"(the budget: at most {math.ceil(disk_budget(self.spec).checkpoints / MB)} MB)")

    def _disk_full_advice(self, results: pd.DataFrame) -> str | None:
        """What to free when trials failed for a full disk (their error says so), and how to continue them."""
        from ..trial_result import is_disk_full

        full = results[results["error"].map(is_disk_full)]
        if full.empty:
            return None
        location = self.location
        free = "" if location.remote else f", {shutil.disk_usage(location.local).free / MB:.0f} MB are free now"
        return (f"disk full: {len(full)} trial(s) could not save a checkpoint ({', '.join(map(str, full['trial_id']))}). "
                f"Free space at {location} (this sweep's checkpoints need up to "
                f"{math.ceil(disk_budget(self.spec).checkpoints / MB)} MB{free}), then continue them with: "
                f"tune-app resume {location} --retry-errored")
