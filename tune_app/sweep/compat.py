"""Ray's and Optuna's internals, in one place, and the versions they were tested with.

A few things tune-app needs have no public API in Ray or Optuna: private names (a leading
underscore, ``ray._private``, ``ray.train._internal``) and Ray's own state files. Each is
used here only (one exception below), behind a small function whose docstring says what
it relies on and what happens where it is missing. The Ray ones were verified on Ray
2.60, the Optuna ones on Optuna 5.1 (tests/sweep/test_compat.py checks each on the
installed versions).
:func:`check_versions`, called before a command that runs sweeps creates or starts anything
(``lifecycle.check_ready``), stops it on versions outside :data:`TESTED` unless
``TUNE_APP_ALLOW_UNTESTED=1``; the bounds in ``pyproject.toml`` are the same.

Private names used elsewhere, because they belong to a subclass of Ray's class (moved here,
they would hide what the subclass does):

- ``searchers.StudySearch`` subclasses Ray's ``OptunaSearch`` and reads and replaces its
  attributes :data:`OPTUNA_SEARCH_ATTRIBUTES` (its saved state reconnects to the study);
  :func:`check_optuna_search` checks them when one is built.

Ray 2.60 behaviour relied on or worked around elsewhere, with no private name involved:

- ``runner.run_sweep``: no actor reuse under PBT (exploited trials lost reported epochs);
  ``RAY_AIR_NEW_OUTPUT=0``: the old reporter, which honours ``verbose=0``.
- ``cluster._choose_auth_mode``: ``ray start`` enables token authentication when it finds a
  token, and a client needs ``RAY_AUTH_MODE=token``, which Ray does not infer.
- ``report.results`` reads Ray Tune's ``experiment_state-*.json`` as Ray 2.60 writes it.

This module imports neither Ray nor Optuna when imported (validating a spec must not load
Ray); each function imports what it touches.

Example:
    >>> is_tested("ray", "2.60.1"), is_tested("ray", "2.61.0"), is_tested("optuna", "5.1.0")
    (True, False, True)
    >>> requirement("optuna")
    'optuna>=4.0,<6'
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import UntestedVersionError

# ------------------------------------------------------------------ versions
# Per package: (lowest tested, first untested) release. Ray 2.60.x only: each use of its
# internals below was verified on 2.60, and Ray changes them between minor releases.
TESTED: dict[str, tuple[str, str]] = {"ray": ("2.60", "2.61"), "optuna": ("4.0", "6")}
PIP_NAME = {"ray": "ray[tune]", "optuna": "optuna"}  # what to pip install
ALLOW_UNTESTED = "TUNE_APP_ALLOW_UNTESTED"  # =1: run on untested versions anyway


def release(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with; pre-, post-, dev- and local parts are left out.

    Example:
        >>> release("2.60.0"), release("2.61.0rc1"), release("6.0.0.dev0"), release("2.4.1+cu121")
        ((2, 60, 0), (2, 61, 0), (6, 0, 0), (2, 4, 1))
    """
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(part) for part in match.group().split("."))


def _before(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    width = max(len(a), len(b))  # 4 is 4.0
    return a + (0,) * (width - len(a)) < b + (0,) * (width - len(b))


def is_tested(package: str, version: str | None) -> bool:
    """Whether ``version`` of ``package`` (None: not installed) is in its tested range."""
    if version is None:
        return False
    low, high = TESTED[package]
    installed = release(version)
    return not _before(installed, release(low)) and _before(installed, release(high))


def requirement(package: str) -> str:
    """``package`` and its tested range as a requirement, e.g. ``ray>=2.60,<2.61``."""
    low, high = TESTED[package]
    return f"{package}>={low},<{high}"


def installed_versions() -> dict[str, str | None]:
    """The installed version of each package of :data:`TESTED` (None: not installed), read without importing it."""
    found: dict[str, str | None] = {}
    for package in TESTED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def untested_message(installed: Mapping[str, str | None]) -> str | None:
    """What to tell the user when a version in ``installed`` is untested; None when all are tested."""
    untested = [package for package in TESTED if not is_tested(package, installed.get(package))]
    if not untested:
        return None
    found = ", ".join(f"{package} {installed.get(package) or 'not installed'}{' (untested)' * (package in untested)}"
                      for package in TESTED)
    install = " ".join(f"'{PIP_NAME[p]}>={TESTED[p][0]},<{TESTED[p][1]}'" for p in untested)
    return (f"tune-app's sweeps rely on internals of Ray and Optuna that were tested with "
            f"{' and '.join(requirement(p) for p in TESTED)} (see tune_app/sweep/compat.py); installed: {found}. "
            f"Install a tested version (pip install {install}), or set {ALLOW_UNTESTED}=1 to run anyway, "
            f"at your own risk.")


def check_versions(installed: Mapping[str, str | None] | None = None,
                   environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`~tune_app.errors.UntestedVersionError` unless Ray and Optuna are in their tested ranges.

    Args:
        installed: Package -> version; default: what is installed.
        environ: Where ``TUNE_APP_ALLOW_UNTESTED`` is looked up; default: ``os.environ``. When it
            is ``1`` (or ``true``, ``yes``), untested versions are only warned of.
    """
    message = untested_message(installed_versions() if installed is None else installed)
    if message is None:
        return
    if (os.environ if environ is None else environ).get(ALLOW_UNTESTED, "").strip().lower() in ("1", "true", "yes"):
        logging.getLogger(__name__).warning("%s is set: running on untested versions. %s", ALLOW_UNTESTED, message)
        return
    raise UntestedVersionError(message)


# ------------------------------------------------------------------ cluster
def keep_imported_ray_on_loopback() -> None:
    """Make an already imported Ray start its local instances on loopback.

    Ray 2.60 reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when first imported, into
    ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, which it consults when it picks a new
    node's address: for a variable set to 0 after that import, the constant is set here. A
    Ray without that module raises ImportError here; one that no longer reads the constant
    ignores it.
    """
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


# ------------------------------------------------------------------ experiment state
@contextlib.contextmanager
def forced_saves_within(share: float) -> Iterator[None]:
    """While in the block, a save of the experiment state forced by checkpoints waits ``share`` times the last save.

    Ray 2.60 forces a save (and waits for the previous upload) whenever a trial has made
    ``num_to_keep`` checkpoints since the last one, so that the saved state never names a
    checkpoint its manager has deleted (its own note calls it "a non-performant
    workaround"). Here such a save waits until ``share`` times the last save's duration has
    passed since it; Ray's own period still applies. The saved state may then name a deleted
    checkpoint, which a resumed driver deletes again: that is no error here.

    Patches ``ray.tune.execution.experiment_state._ExperimentCheckpointManager.sync_up_experiment_state``
    (using its ``_should_force_sync_up``, ``_last_save_time`` and
    ``_trial_num_checkpoints_since_last_sync``) and ``ray.train._internal.checkpoint_manager._delete_fs_path``,
    and puts both back after the block. Where either is missing (another Ray) neither is
    patched: Ray's own policy applies. Where the three attributes are missing, the first
    save raises AttributeError.
    """
    from ray.train._internal import checkpoint_manager as trial_manager
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager as experiment_manager

    delete = getattr(trial_manager, "_delete_fs_path", None)
    sync = getattr(experiment_manager, "sync_up_experiment_state", None)
    if delete is None or sync is None:  # another Ray: its own policy
        yield
        return

    def sync_within_share(self: Any, save_fn: Callable[[], None], force: bool = False, wait: bool = False) -> None:
        owed = self._should_force_sync_up  # a trial made its checkpoints since the last save
        if owed and time.monotonic() - self._last_save_time < share * getattr(self, "_tune_app_save_s", 0.0):
            self._should_force_sync_up = False  # not yet: only if Ray's own period has come
        before, started = self._last_save_time, time.monotonic()
        try:
            sync(self, save_fn, force=force, wait=wait)
        finally:
            if self._last_save_time != before:
                self._tune_app_save_s = time.monotonic() - started
            # Ray forgets the checkpoints it counted once an upload started: until then the save is owed.
            self._should_force_sync_up = self._should_force_sync_up or (
                owed and bool(self._trial_num_checkpoints_since_last_sync))

    def delete_unless_gone(fs: Any, fs_path: str) -> None:
        try:
            delete(fs, fs_path)
        except FileNotFoundError:  # deleted before the driver was killed; the resumed state still named it
            pass

    with contextlib.ExitStack() as patches:
        for owner, name, replacement in [(experiment_manager, "sync_up_experiment_state", sync_within_share),
                                         (trial_manager, "_delete_fs_path", delete_unless_gone)]:
            patches.callback(setattr, owner, name, getattr(owner, name))
            setattr(owner, name, replacement)
        yield


@contextlib.contextmanager
def whole_files_in_local_storage() -> Iterator[None]:
    """While in the block, files Ray copies into a local experiment directory appear whole or not at all.

    Ray 2.60 uploads the driver's experiment state (``experiment_state-*.json``,
    ``search_gen_state-*.json``, the searcher's state) with pyarrow's ``copy_files``, which
    writes each destination file in place: a driver killed in the middle of a copy (SIGKILL
    to the whole job) left ``search_gen_state`` empty, and the resume could not unpickle it
    (seen in CI: ``tune-app confirm`` resumed after its driver was killed). Here a copy from
    a local path into a local directory writes each file beside its destination and renames
    it over (``os.replace``, atomic on POSIX); remote storage (S3 and the like) stores whole
    objects already. Patches ``ray.train._internal.storage._pyarrow_fs_copy_files`` and puts it
    back after the block; a Ray without it is left as it is.
    """
    import pyarrow.fs
    from ray.train._internal import storage

    copy = getattr(storage, "_pyarrow_fs_copy_files", None)
    if copy is None:
        yield
        return

    def copy_whole(source: Any, destination: Any, source_filesystem: Any = None, destination_filesystem: Any = None,
                   **kwargs: Any) -> Any:
        if (source_filesystem is None and isinstance(destination_filesystem, pyarrow.fs.LocalFileSystem)
                and isinstance(source, str) and os.path.exists(source)):
            return copy_whole_files(Path(source), Path(destination))
        return copy(source, destination, source_filesystem=source_filesystem,
                    destination_filesystem=destination_filesystem, **kwargs)

    storage._pyarrow_fs_copy_files = copy_whole
    try:
        yield
    finally:
        storage._pyarrow_fs_copy_files = copy


def copy_whole_files(source: Path, destination: Path) -> None:
    """Copy a file, or a directory's files into ``destination``, each through a temporary file renamed over."""
    import shutil

    pairs = [(source, destination)] if source.is_file() else [
        (path, destination / path.relative_to(source)) for path in sorted(source.rglob("*")) if path.is_file()]
    for path, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(path, temporary)
            os.replace(temporary, target)
        except BaseException:  # a full disk: the partial copy would hold its last bytes
            temporary.unlink(missing_ok=True)
            raise


def mark_for_next_snapshot(tune_controller: Any, trial: Any) -> None:
    """Have the next save of the experiment state write ``trial`` again (its status is about to change).

    Ray 2.60 stops a paused trial (HyperBand's ``on_trial_remove``) without marking it for
    the next save: when a save had caught it paused (one follows every checkpoint once a
    trial keeps one), the saved state says PAUSED for good, so the reports showed it paused
    and ``tune-app resume`` would run it again. Calls the controller's
    ``_mark_trial_to_checkpoint``; a Ray without it is left to its own behaviour.
    """
    mark = getattr(tune_controller, "_mark_trial_to_checkpoint", None)
    if mark is not None:
        mark(trial)


def search_state_moved_to(directory: Path) -> None:
    """Point Ray's saved search state at the experiment's directory, if the experiment moved there.

    Ray's restore moves the trials it saved to the new directory, but its search generator
    keeps the experiment's old path (Ray 2.60): each trial created after the resume (the
    rest of ``num_samples``) would write to where the experiment was, and fail. The state
    is Ray's own file, ``search_gen_state-*.json``: a cloudpickled dict whose
    ``"experiment"`` holds a ``StorageContext`` (``ray.train._internal.storage``); Ray loads
    it anyway, and the newest is the one Ray restores. A state of another shape is left as
    it is.
    """
    import ray.cloudpickle as cloudpickle

    saved = sorted(directory.glob("search_gen_state-*.json"))
    if not saved:
        return
    state = cloudpickle.loads(saved[-1].read_bytes())
    storage = getattr(state.get("experiment") if isinstance(state, dict) else None, "storage", None)
    if storage is None or Path(storage.experiment_fs_path) == directory:
        return
    storage.storage_fs_path, storage.experiment_dir_name = str(directory.parent), directory.name
    temporary = saved[-1].with_name(f".{saved[-1].name}.tmp")
    temporary.write_bytes(cloudpickle.dumps(state))
    os.replace(temporary, saved[-1])


# ------------------------------------------------------------------ storage
def restores_from_a_missing_checkpoint() -> None:
    """Let a trial be restored from a checkpoint directory that is gone, when its trial directory is not.

    A job stopped at the wrong moment (every process signalled, the driver killed between two
    saves of its state) leaves Ray's state naming a checkpoint that is no longer on disk.
    The trainable then continues from the trial's newest surviving checkpoint
    (:func:`~tune_app.experiment.checkpoints.restorable_state`), but Ray 2.60's
    ``Trainable.restore`` checks the named directory first (``_exists_at_fs_path``) and fails
    the trial, three times, then for good. Called in each trial's process (on import of the
    trainable): that check also accepts a checkpoint whose trial directory exists.
    """
    from ray.tune.trainable import trainable as module

    check = module._exists_at_fs_path
    if getattr(check, "tune_app", False):
        return

    def exists_or_its_trial_does(fs: Any, path: str) -> bool:
        return check(fs, path) or check(fs, str(path).rstrip("/").rpartition("/")[0])

    exists_or_its_trial_does.tune_app = True  # type: ignore[attr-defined]
    module._exists_at_fs_path = exists_or_its_trial_does


def staging_root() -> Path | None:
    """Ray's local folder of this session's staged experiment files; None where this Ray has none.

    Ray 2.60: ``ray.train.constants._get_ray_train_session_dir()``, ``<session>/artifacts``
    (Ray must be running). Another layout: None, and the experiment's own files, a save of
    the experiment state old, are all there is.
    """
    try:
        from ray.train.constants import _get_ray_train_session_dir

        return Path(_get_ray_train_session_dir())
    except Exception:
        return None


def staged_driver_files(root: Path, name: str) -> Path | None:
    """The newest folder of experiment ``name``'s driver files staged under :func:`staging_root`; no Ray needed.

    Ray 2.60 stages them at ``<root>/<start time>/<name>/driver_artifacts`` and copies them
    to the experiment (uploads them, for remote storage) with each save of its experiment
    state. Another layout: None, as for :func:`staging_root`.
    """
    found = sorted(root.glob(f"*/{name}/driver_artifacts"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def reported_checkpoint_dir() -> tuple[Any, str] | None:
    """In a trial: the (pyarrow filesystem, path) of the checkpoint being reported; None if unknown.

    Ray 2.60 numbers a checkpoint before uploading it: the trial's session
    (``ray.train._internal.session.get_session()``) holds its ``StorageContext``, whose
    ``checkpoint_fs_path`` is that checkpoint's directory. Another layout, or no session: None.
    """
    try:
        from ray.train._internal.session import get_session

        storage = get_session().storage
        return storage.storage_filesystem, storage.checkpoint_fs_path
    except Exception:
        return None


def trial_filesystem(trial: Any) -> Any | None:
    """The pyarrow filesystem of a Tune trial's storage; None if the trial never started (nothing saved).

    Ray 2.60's ``Trial.storage`` is a ``StorageContext`` (``ray.train._internal.storage``)
    whose ``trial_dir_name`` is set when the trial first starts. Without them: AttributeError.
    """
    storage = trial.storage
    if storage is None or storage.trial_dir_name is None:
        return None
    return storage.storage_filesystem


# ------------------------------------------------------------------ Optuna
# What StudySearch (searchers.py) reads and replaces of Ray 2.60's OptunaSearch.
OPTUNA_SEARCH_ATTRIBUTES = ("_ot_study", "_ot_trials", "_storage", "_study_name", "_sampler", "_completed_trials")


def check_optuna_search(searcher: Any) -> None:
    """Raise :class:`~tune_app.errors.UntestedVersionError` if ``searcher`` lacks :data:`OPTUNA_SEARCH_ATTRIBUTES`.

    Run once Ray's ``OptunaSearch.__init__`` has set them: a Ray that renamed them fails
    here, with what to do, instead of in the middle of a sweep.
    """
    missing = [name for name in OPTUNA_SEARCH_ATTRIBUTES if not hasattr(searcher, name)]
    if missing:
        raise UntestedVersionError(f"this Ray's OptunaSearch has no {', '.join(missing)}, which tune-app's study "
                                   f"search builds on (tested with {requirement('ray')}): install a tested Ray "
                                   f"(pip install 'ray[tune]>={TESTED['ray'][0]},<{TESTED['ray'][1]}')")


def optuna_trial_id(trial: Any) -> int:
    """The storage's id of a running Optuna trial, to find it again (:func:`optuna_trial`).

    ``optuna.Trial._trial_id``: without it, saving the searcher raises AttributeError.
    """
    return trial._trial_id


def optuna_trial(study: Any, trial_id: int) -> Any:
    """The ``optuna.Trial`` of a running trial by its storage id (see :func:`optuna_trial_id`).

    Optuna's own constructor, ``optuna.Trial(study, trial_id)``, whose direct use Optuna
    discourages: its objective functions are handed trials, but a searcher reconnecting
    to its study has only the ids. Another signature: restoring the searcher raises TypeError.
    """
    import optuna

    return optuna.Trial(study, trial_id)
