"""The versions of Ray and Optuna a sweep was tested with, and the check when a sweep starts."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import subprocess
import sys

import pytest

from tune_app.errors import TuneAppError, UntestedVersionError
from tune_app.sweep import compat

from ..conftest import ROOT


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


def test_a_sweep_or_resume_on_an_untested_ray_stops_before_ray_is_imported(tmp_path):
    """The check reads the installed version as pip sees it: here a Ray 2.61.0 found first on sys.path."""
    fake = tmp_path / "site" / "ray-2.61.0.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: ray\nVersion: 2.61.0\n")
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(fake.parent)!r})\n"
        "from tests.conftest import TINY_SPEC\n"
        "from tune_app.errors import UntestedVersionError\n"
        "from tune_app.experiment.location import Location\n"
        "from tune_app.spec import validate_spec\n"
        "from tune_app.sweep.runner import resume_sweep, run_sweep\n"
        "spec, messages = validate_spec(TINY_SPEC), []\n"
        f"location = Location({str(tmp_path)!r}, 'tiny')\n"
        "for start in (run_sweep, resume_sweep):\n"
        "    try:\n"
        "        start(spec, location, data=None)\n"
        "    except UntestedVersionError as exc:\n"
        "        messages.append(str(exc))\n"
        "print(json.dumps([messages, 'ray' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != compat.ALLOW_UNTESTED}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    messages, ray_imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(messages) == 2 and all("installed: ray 2.61.0 (untested)" in m for m in messages)
    assert not ray_imported
