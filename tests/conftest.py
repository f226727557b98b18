"""Shared fixtures: small real specs, a tiny timm model, real digits data."""

from __future__ import annotations

import atexit
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# Keep every Ray instance a test starts on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Ray starts its workers (the trials) at nice 15. Beside the other xdist worker's torch tests and the
# busy-machine tests' CPU burner, both at nice 0 on two cores, the trials then got ~3% of a core: sweeps
# took minutes and a resume timed out. At nice 0 they share the cores fairly.
os.environ.setdefault("RAY_worker_niceness", "0")
# Image caches and remote mirrors go to a folder of this session, not the user's ~/.cache
# (set before any trial process starts: they inherit it).
_CACHE = tempfile.mkdtemp(prefix="tune-app-tests-")
os.environ["TUNE_APP_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
# Templates name folders the user fills in: they are tested against generated data instead.
TEMPLATES = ("photos.yaml",)
SEARCH_SPACES = sorted(p for p in (ROOT / "search_spaces").glob("*.yaml") if p.name not in TEMPLATES)

TINY_SPEC = {
    "name": "tiny",
    "task": "classification",
    "data": {"dataset": "digits", "image_size": 16, "batch_size": 64},
    "model": {"name": "timm/test_resnet"},
    "train": {"epochs": 2, "optimizer": "adamw", "seed": 0, "metric": "val_acc"},
    "search": {
        "lr": {"loguniform": [1.0e-3, 1.0e-2]},
        "loss": {"choice": ["ce", {"name": "focal", "alpha": {"uniform": [0.25, 0.9]}, "gamma": {"choice": [1.0, 2.0]}}]},
        "scheduler": {"choice": ["cosine", {"name": "step", "step_size": {"int": [1, 2]}}]},
    },
    "tune": {"num_samples": 4, "search_alg": "optuna", "scheduler": "asha", "max_concurrent": 2,
             "resources": {"cpu": 1, "gpu": 0}},
}


def write_spec(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def result_lines(experiment: Path) -> dict[str, list[dict]]:
    """Trial directory name -> the result lines reported so far (a line still being written is skipped)."""
    found = {}
    for path in experiment.glob("*/result.json"):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        found[path.parent.name] = lines
    return found


# Fixtures that run a real sweep: the tests that use them start Ray.
SWEEP_FIXTURES = {"asha_sweep", "study_sweep"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that starts Ray (marked `ray`, or using a sweep fixture) is also `slow`: out of the fast tier."""
    for item in items:
        if SWEEP_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.ray)
        if item.get_closest_marker("ray") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    ray_tests = os.environ.get(_RAY_TESTS)
    if ray_tests and hasattr(config, "workerinput"):  # a pytest-xdist worker: tell the scheduler which they are
        path = Path(f"{ray_tests}.{config.workerinput['workerid']}")
        path.write_text("\n".join(item.nodeid for item in items if item.get_closest_marker("ray")))


# ---------------------------------------------------------------- two workers (pytest -n 2)
# The Ray tests run in two groups, each in order in one worker, side by side: most of a Ray test is
# waiting (Ray starting, trials' processes), so two at a time fill the two cores; the other tests fill
# the gaps after. A test file stays in one group (its module fixtures run once), and so do the users of
# each session sweep fixture; the clusters `ray start` makes stay with the test that counts the ports
# Ray opens. pytest-xdist's own grouping (--dist loadgroup, the xdist_group mark) renames node ids, which
# pytest 9 no longer lets it do.
_RAY_TESTS = "TUNE_APP_TESTS_RAY_IDS"
_RAY_TESTS_FILE = Path(_CACHE) / "ray-tests"  # the controller's: each worker writes <it>.<worker id>
SECOND_RAY_GROUP = (  # about half the Ray tests' time; the rest is the first group
    "tests/sweep/test_sweeps.py", "tests/sweep/test_checkpoint_budget.py", "tests/experiment/test_export.py",
    "tests/experiment/test_predict.py", "tests/experiment/test_confirm.py", "tests/sweep/test_tracking.py",
    "tests/experiment/test_study.py", "tests/experiment/test_extend.py", "tests/experiment/test_warm_start.py",
)


def ray_group(nodeid: str) -> str:
    return "ray-2" if nodeid.split("::")[0] in SECOND_RAY_GROUP else "ray-1"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and config.pluginmanager.has_plugin("xdist"):
        os.environ[_RAY_TESTS] = str(_RAY_TESTS_FILE)  # the workers inherit it
    elif hasattr(config, "workerinput"):
        # One torch thread per worker: two workers of a thread per core each made OpenMP's waiting threads
        # fight for the cores (the fast tier took 15 minutes instead of 4).
        import torch

        torch.set_num_threads(1)


if importlib.util.find_spec("xdist") is not None:

    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        """``-n N`` (``--dist load``): each Ray group one work unit, the other tests one unit each."""
        if config.getvalue("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class RayInTwoGroups(LoadScopeScheduling):
            ray: set[str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if self.ray is None:  # the workers wrote their lists before reporting their collection
                    found = sorted(_RAY_TESTS_FILE.parent.glob(f"{_RAY_TESTS_FILE.name}.*"))
                    self.ray = set(found[0].read_text().splitlines()) if found else set()
                return ray_group(nodeid) if nodeid in self.ray else nodeid

        # The largest units go out first (--loadscope-reorder, the default): one Ray group to each worker.
        return RayInTwoGroups(config, log)


@pytest.fixture
def cpu_burner():
    """A process keeping one CPU busy alongside the test, as another job on the node does (it ends itself
    after 10 minutes at most; the test stops it)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 600\nwhile time.time() < end:\n"
                                                   "    pass\n"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def tiny_spec_data() -> dict:
    """A fresh deep copy of the tiny spec, safe to modify."""
    return copy.deepcopy(TINY_SPEC)


@pytest.fixture
def tiny_spec_file(tmp_path: Path, tiny_spec_data: dict) -> Path:
    return write_spec(tmp_path / "tiny.yaml", tiny_spec_data)


@dataclass
class Sweep:
    """A finished sweep run by the command line, and the most disk its checkpoints took while it ran."""

    experiment: Path
    stdout: str
    returncode: int
    peak_checkpoints: int  # bytes of checkpoints and best_model/, the most seen at once
    peak_total: int


@pytest.fixture(scope="session")
def asha_sweep(tmp_path_factory) -> Sweep:
    """12 trials of the tiny model under ASHA (2 epochs, two at a time), the experiment's disk polled throughout.

    Shared by the budget, export and predict tests: one real sweep serves them all.
    """
    from tune_app.sweep.disk import used_bytes

    root = tmp_path_factory.mktemp("asha")
    data = copy.deepcopy(TINY_SPEC)
    data["name"] = "asha12"
    data["tune"].update(num_samples=12, search_alg="random", max_concurrent=2,
                        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    spec = write_spec(root / "asha12.yaml", data)
    experiment = root / "runs" / "asha12"
    proc = subprocess.Popen([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(root / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks = [0, 0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            if experiment.is_dir():
                checkpoints, total = used_bytes(experiment)
                peaks[:] = [max(peaks[0], checkpoints), max(peaks[1], total)]
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        stdout, _ = proc.communicate(timeout=600)
    finally:
        done.set()
        poller.join()
        if proc.poll() is None:
            proc.kill()
    return Sweep(experiment, stdout, proc.returncode, *peaks)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StudySweep:
    """A finished sweep whose study the study, warm-start and extend tests read."""

    spec_data: dict
    experiment: Path
    stdout: str


@pytest.fixture(scope="session")
def study_sweep(tmp_path_factory) -> StudySweep:
    """5 trials of the tiny model under ASHA, 2 epochs; the third given point (lr 1e-5) learns nothing by
    epoch 1, after two good ones got there: ASHA stops it, so the study holds a pruned trial.

    Read only: a test that changes the experiment works on a copy.
    """
    root = tmp_path_factory.mktemp("study")
    data = copy.deepcopy(TINY_SPEC)
    data["name"] = "study"
    data["search"]["lr"] = {"loguniform": [1.0e-5, 1.0e-2]}
    good = {"lr": 0.008, "loss": "ce", "scheduler": "cosine"}
    data["tune"].update(num_samples=5, search_alg="optuna", max_concurrent=2,
                        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
                        points_to_evaluate=[good, {**good, "lr": 0.005}, {**good, "lr": 1.0e-5}])
    spec = write_spec(root / "study.yaml", data)
    result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(root / "runs")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return StudySweep(data, root / "runs" / "study", result.stdout)
