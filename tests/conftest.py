"""Shared fixtures: small real specs, a tiny timm model, real digits data."""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

# Keep every Ray instance a test starts on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
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


@pytest.fixture
def tiny_spec_data() -> dict:
    """A fresh deep copy of the tiny spec, safe to modify."""
    return copy.deepcopy(TINY_SPEC)


@pytest.fixture
def tiny_spec_file(tmp_path: Path, tiny_spec_data: dict) -> Path:
    return write_spec(tmp_path / "tiny.yaml", tiny_spec_data)
