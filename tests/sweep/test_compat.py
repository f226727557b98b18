"""The tested versions, and each of Ray's and Optuna's internals that compat.py uses, on the installed Ray and Optuna.

A test here failing after an upgrade names what the new version changed (the sweeps themselves:
tests/sweep/test_sweeps.py, test_faults.py; the checkpoint bookkeeping: test_runner.py).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tune_app.errors import TuneAppError, UntestedVersionError
from tune_app.sweep import compat
from tune_app.sweep.searchers import PointsSearcher

from ..conftest import ROOT, TINY_SPEC, write_spec


# ------------------------------------------------------------------ versions
def test_the_installed_versions_are_the_tested_ones():
    installed = compat.installed_versions()
    assert installed == {"ray": importlib.metadata.version("ray"), "optuna": importlib.metadata.version("optuna")}
    assert compat.untested_message(installed) is None
    compat.check_versions(environ={})  # raises nothing


@pytest.mark.parametrize("package, version, tested", [
    ("ray", "2.60.0", True), ("ray", "2.60", True), ("ray", "2.60.7", True), ("ray", "2.60.1rc1", True),
    ("ray", "2.59.9", False), ("ray", "2.40.0", False), ("ray", "2.61.0", False), ("ray", "2.61.0rc1", False),
    ("ray", "2.61.0.dev0", False), ("ray", "3.0.0", False), ("ray", None, False),
    ("optuna", "4.0.0", True), ("optuna", "4", True), ("optuna", "5.1.0", True), ("optuna", "5.99.1", True),
    ("optuna", "3.6.1", False), ("optuna", "6.0.0", False), ("optuna", "6.0.0.dev0", False), ("optuna", "6", False),
])
def test_a_version_is_tested_inside_its_range_only(package, version, tested):
    assert compat.is_tested(package, version) is tested


def test_a_version_is_read_up_to_its_release_numbers():
    assert compat.release("2.60.0+cu121") == (2, 60, 0)
    assert compat.release(" 5.1 ") == (5, 1)
    with pytest.raises(ValueError, match="not a version"):
        compat.release("dev")


def test_an_untested_version_stops_with_what_is_installed_what_was_tested_and_what_to_do():
    with pytest.raises(UntestedVersionError) as raised:
        compat.check_versions({"ray": "2.61.0", "optuna": "5.1.0"}, environ={})
    message = str(raised.value)
    assert isinstance(raised.value, TuneAppError) and raised.value.exit_code == 1
    assert "installed: ray 2.61.0 (untested), optuna 5.1.0." in message
    assert "tested with ray>=2.60,<2.61 and optuna>=4.0,<6" in message
    assert "pip install 'ray[tune]>=2.60,<2.61')" in message  # only what is untested
    assert "TUNE_APP_ALLOW_UNTESTED=1" in message


def test_a_missing_package_is_untested_too():
    message = compat.untested_message({"ray": "2.60.0", "optuna": None})
    assert message is not None
    assert "optuna not installed (untested)" in message and "pip install 'optuna>=4.0,<6'" in message


@pytest.mark.parametrize("value, allowed", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_the_environment_variable_lets_untested_versions_run_with_a_warning(value, allowed, caplog):
    untested = {"ray": "2.61.0", "optuna": "6.0.0"}
    with caplog.at_level(logging.WARNING, logger=compat.__name__):
        if allowed:
            compat.check_versions(untested, environ={compat.ALLOW_UNTESTED: value})
            assert "running on untested versions" in caplog.text and "ray 2.61.0" in caplog.text
        else:
            with pytest.raises(UntestedVersionError):
                compat.check_versions(untested, environ={compat.ALLOW_UNTESTED: value})


@pytest.mark.slow
def test_search_and_resume_on_an_untested_ray_stop_before_anything_is_created_or_ray_is_imported(tmp_path):
    """The check reads the installed version as pip sees it: here a Ray 2.61.0 found first on sys.path."""
    fake = tmp_path / "site" / "ray-2.61.0.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: ray\nVersion: 2.61.0\n")
    spec_file = write_spec(tmp_path / "tiny.yaml", TINY_SPEC)
    stopped = tmp_path / "stopped"  # an interrupted experiment: its spec and Ray's saved state
    stopped.mkdir()
    (stopped / "spec.yaml").write_text(spec_file.read_text())
    (stopped / "experiment_state-2026-12-07_00-00-00.json").write_text("{}")
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(fake.parent)!r})\n"
        "from tune_app.cli import main\n"
        f"codes = [main(['search', {str(spec_file)!r}, '--storage', {str(tmp_path / 'runs')!r}]),\n"
        f"         main(['resume', {str(stopped)!r}])]\n"
        "print(json.dumps([codes, 'ray' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != compat.ALLOW_UNTESTED}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    codes, ray_imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert codes == [1, 1]
    assert out.stderr.count("installed: ray 2.61.0 (untested)") == 2, out.stderr
    assert not ray_imported
    assert not (tmp_path / "runs").exists()  # no experiment directory was made for a sweep that cannot run
    assert sorted(p.name for p in stopped.iterdir()) == ["experiment_state-2026-12-07_00-00-00.json", "spec.yaml"]


# ------------------------------------------------------------------ Ray's internals
def test_forced_saves_are_throttled_through_ray_s_experiment_checkpoint_manager():
    from ray.train._internal import checkpoint_manager as trial_manager
    from ray.tune.execution.experiment_state import _ExperimentCheckpointManager

    sync, delete = _ExperimentCheckpointManager.sync_up_experiment_state, trial_manager._delete_fs_path
    assert list(inspect.signature(sync).parameters) == ["self", "save_fn", "force", "wait"]
    assert list(inspect.signature(delete).parameters) == ["fs", "fs_path"]
    manager = _ExperimentCheckpointManager(storage=None, checkpoint_period="auto", sync_every_n_trial_checkpoints=1)
    assert manager._last_save_time == float("-inf") and manager._should_force_sync_up is False
    manager.on_trial_checkpoint("trial")  # a trial made num_to_keep checkpoints: Ray owes a save
    assert manager._should_force_sync_up and manager._trial_num_checkpoints_since_last_sync["trial"] == 1

    with compat.forced_saves_within(19):
        assert _ExperimentCheckpointManager.sync_up_experiment_state is not sync
        assert trial_manager._delete_fs_path is not delete
    assert _ExperimentCheckpointManager.sync_up_experiment_state is sync and trial_manager._delete_fs_path is delete


def test_ray_s_uploads_into_a_local_experiment_replace_each_file_whole(tmp_path):
    """Ray's own upload function, with the patch: each file is renamed over its destination (a new inode), so a
    killed driver leaves the old file or the new one, never a truncated one; outside the block, Ray's copy."""
    import pyarrow.fs
    from ray.train._internal import storage

    staging, experiment = tmp_path / "staging", tmp_path / "experiment"
    (staging / "sub").mkdir(parents=True)
    (staging / "search_gen_state-1.json").write_bytes(b"new state" * 1000)
    (staging / "sub" / "result.json").write_text("{}")
    experiment.mkdir()
    (experiment / "search_gen_state-1.json").write_bytes(b"old")
    inode = (experiment / "search_gen_state-1.json").stat().st_ino
    copy = storage._pyarrow_fs_copy_files
    with compat.whole_files_in_local_storage():
        storage._upload_to_fs_path(str(staging), pyarrow.fs.LocalFileSystem(), str(experiment))
    assert storage._pyarrow_fs_copy_files is copy
    state = experiment / "search_gen_state-1.json"
    assert state.read_bytes() == b"new state" * 1000 and state.stat().st_ino != inode
    assert (experiment / "sub" / "result.json").read_text() == "{}"
    assert sorted(p.name for p in experiment.rglob("*")) == ["result.json", "search_gen_state-1.json", "sub"]
    (staging / "search_gen_state-1.json").write_bytes(b"again")
    inode = state.stat().st_ino
    storage._upload_to_fs_path(str(staging), pyarrow.fs.LocalFileSystem(), str(experiment))  # Ray's own copy
    assert state.read_bytes() == b"again" and state.stat().st_ino == inode  # written in place


def test_a_stopped_trial_is_marked_for_the_next_save_through_the_controller():
    from ray.tune.execution.tune_controller import TuneController

    controller = TuneController.__new__(TuneController)  # the method alone: a whole controller starts a sweep
    controller._trials_to_cache = set()
    compat.mark_for_next_snapshot(controller, "trial")
    assert controller._trials_to_cache == {"trial"}
    compat.mark_for_next_snapshot(object(), "trial")  # a Ray without it: its own behaviour, no error


def test_ray_s_saved_search_state_is_pointed_at_where_the_experiment_moved(tmp_path):
    from ray.tune.experiment import Experiment
    from ray.tune.search.search_generator import SearchGenerator

    def trainable(config: dict) -> None:
        pass

    old, new = tmp_path / "cluster" / "exp", tmp_path / "laptop" / "exp"
    generator = SearchGenerator(PointsSearcher([{"a": 1}], "val_acc", "max"))
    generator._experiment = Experiment("exp", run=trainable, storage_path=str(old.parent))
    generator.save_to_dir(str(old), session_str="before")
    old.parent.rename(tmp_path / "laptop")
    saved = new / "search_gen_state-before.json"
    before = saved.read_bytes()

    compat.search_state_moved_to(new)
    after = saved.read_bytes()
    assert after != before and not list(new.glob(".search_gen_state-*.tmp"))
    restored = SearchGenerator(PointsSearcher([], "val_acc", "max"))
    restored.restore_from_dir(str(new))
    assert Path(restored._experiment.storage.experiment_fs_path) == new
    assert restored.searcher.points == [{"a": 1}]

    compat.search_state_moved_to(new)  # already there: left as it is
    assert saved.read_bytes() == after


@pytest.mark.ray
def test_the_driver_s_staged_files_are_found_in_ray_s_layout(tmp_path):
    import ray
    from ray.train._internal.storage import StorageContext

    from tune_app.sweep.cluster import _loopback_only

    assert compat.staging_root() is None or ray.is_initialized()  # no Ray running: no session folder
    started = not ray.is_initialized()
    if started:
        _loopback_only()
        ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        root = compat.staging_root()
        assert root is not None and root.name == "artifacts"
        name = f"compat-{os.getpid()}-{time.monotonic_ns()}"
        staging = Path(StorageContext(str(tmp_path), name).experiment_driver_staging_path)
        assert compat.staged_driver_files(root, name) is None
        staging.mkdir(parents=True)
        assert compat.staged_driver_files(root, name) == staging
    finally:
        if started:
            ray.shutdown()


def test_the_newest_staged_folder_wins(tmp_path):
    for when, stamp in [("2026-01-02_10-00-00", 2), ("2026-01-01_10-00-00", 1)]:
        folder = tmp_path / when / "exp" / "driver_artifacts"
        folder.mkdir(parents=True)
        os.utime(folder, (stamp, stamp))
    assert compat.staged_driver_files(tmp_path, "exp") == tmp_path / "2026-01-02_10-00-00" / "exp" / "driver_artifacts"
    assert compat.staged_driver_files(tmp_path, "other") is None


def test_the_reported_checkpoint_is_found_through_the_trial_s_session(tmp_path):
    from ray.train._internal.session import _TrainSession, get_session
    from ray.train._internal.storage import StorageContext

    assert get_session() is None and compat.reported_checkpoint_dir() is None  # not in a trial
    assert "storage" in inspect.signature(_TrainSession.__init__).parameters
    storage = StorageContext(str(tmp_path), "exp", trial_dir_name="trial", current_checkpoint_index=3)
    assert storage.checkpoint_fs_path == f"{tmp_path}/exp/trial/checkpoint_000003"
    assert storage.storage_filesystem.type_name == "local"


def test_a_trial_s_filesystem_is_known_once_it_started(tmp_path):
    from ray.train._internal.storage import StorageContext
    from ray.tune.experiment import Trial

    trial = Trial("trainable", stub=True, storage=StorageContext(str(tmp_path), "exp"))
    assert compat.trial_filesystem(trial) is None  # never started
    trial.storage.trial_dir_name = "trial_0"  # as Ray names it when the trial first starts
    assert compat.trial_filesystem(trial) is trial.storage.storage_filesystem


def test_an_imported_ray_is_kept_on_loopback():
    import ray._private.ray_constants as ray_constants
    import ray._private.services as services

    assert "ray_constants.ENABLE_RAY_CLUSTER" in inspect.getsource(services)  # still what Ray consults
    before = ray_constants.ENABLE_RAY_CLUSTER
    try:
        ray_constants.ENABLE_RAY_CLUSTER = True
        compat.keep_imported_ray_on_loopback()
        assert ray_constants.ENABLE_RAY_CLUSTER is False
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


# ------------------------------------------------------------------ Optuna's, and Ray's OptunaSearch
def test_ray_s_optuna_search_has_the_attributes_the_study_search_replaces():
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="m", mode="max")
    compat.check_optuna_search(searcher)  # raises nothing
    assert isinstance(searcher._ot_study, optuna.Study) and searcher._study_name == "optuna"
    with pytest.raises(UntestedVersionError, match=r"OptunaSearch has no _ot_study, _ot_trials"):
        compat.check_optuna_search(object())


def test_a_running_optuna_trial_is_found_again_by_its_id():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    asked = study.ask()
    asked.suggest_float("x", 0, 1)
    again = compat.optuna_trial(study, compat.optuna_trial_id(asked))
    assert again.number == asked.number and again.params == asked.params
    again.report(0.5, 1)
    study.tell(again, 0.7)
    assert [(t.state.name, t.value, t.intermediate_values) for t in study.trials] == [("COMPLETE", 0.7, {1: 0.5})]


def test_a_trial_can_be_restored_from_a_checkpoint_that_is_gone_while_its_trial_directory_is_not(tmp_path):
    """Ray's own check would fail the trial; restorable_state then takes its newest surviving checkpoint."""
    import pyarrow.fs
    from ray.tune.trainable import trainable as module

    from tune_app.sweep import trainable  # noqa: F401  (importing it, as each trial's process does, applies it)

    fs = pyarrow.fs.LocalFileSystem()
    trial = tmp_path / "train_trial_1"
    (trial / "checkpoint_000001").mkdir(parents=True)
    assert module._exists_at_fs_path(fs, str(trial / "checkpoint_000001"))
    assert module._exists_at_fs_path(fs, str(trial / "checkpoint_000002"))  # deleted; the trial is there
    assert not module._exists_at_fs_path(fs, str(tmp_path / "gone_trial" / "checkpoint_000001"))
