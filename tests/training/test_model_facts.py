"""Model facts kept on disk: read back by a later command of the same libraries, never stale, never an error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import timm

from tune_app.training import model_facts
from tune_app.training.engine import PretrainedFraming, model_pretrained_cfg
from tune_app.training.model_facts import FACTS_FILE, libraries, remembered
from tune_app.training.models import check_model_name, stage_count_for, state_size_for

ROOT = model_facts.Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of this test; each test starts as a new command would (nothing read yet)."""
    monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path))
    monkeypatch.setattr(model_facts, "_facts", {})
    return tmp_path


def a_new_command():
    """Forget this process's copy, as the next command starts with none."""
    model_facts._facts.clear()


def counting(kind):
    calls = []

    @remembered(kind)
    def square(x):
        calls.append(x)
        return x * x

    return square, calls


def test_a_fact_is_found_once_and_read_back_by_the_next_command(cache):
    square, calls = counting("square")
    assert (square(3), square(3), square(4)) == (9, 9, 16)
    assert calls == [3, 4]
    a_new_command()
    assert square(3) == 9
    assert calls == [3, 4]
    saved = json.loads((cache / FACTS_FILE).read_text())
    assert saved["libraries"] == libraries()
    assert saved["facts"] == {"square [[3], {}]": 9, "square [[4], {}]": 16}


def test_facts_of_other_libraries_are_not_used(cache):
    square, calls = counting("square")
    (cache / FACTS_FILE).write_text(json.dumps({"libraries": "timm 0.0.1", "facts": {"square [[3], {}]": 10}}))
    assert square(3) == 9
    assert calls == [3]
    assert json.loads((cache / FACTS_FILE).read_text())["libraries"] == libraries()


def test_the_libraries_include_the_finders_code_and_the_versions():
    text = libraries()
    assert "timm " in text and "torch " in text and "code " in text


@pytest.mark.parametrize("content", ["{not json", "[]", '{"libraries": 1}', ""])
def test_an_unreadable_facts_file_is_found_again_and_replaced(cache, content):
    (cache / FACTS_FILE).write_text(content)
    square, calls = counting("square")
    assert square(5) == 25 and calls == [5]
    a_new_command()
    assert square(5) == 25 and calls == [5]


def test_a_question_that_raises_is_asked_again_each_time(cache):
    calls = []

    @remembered("name")
    def check(name):
        calls.append(name)
        raise ValueError(f"unknown model {name!r}")

    for _ in range(2):
        with pytest.raises(ValueError, match="unknown model"):
            check("timm/resnet5")
    assert calls == ["timm/resnet5"] * 2
    assert not (cache / FACTS_FILE).exists()
    with pytest.raises(ValueError, match="did you mean"):
        check_model_name("timm/test_resnat")


def test_an_unwritable_cache_costs_time_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TUNE_APP_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(model_facts, "_facts", {})
    square, calls = counting("square")
    assert square(2) == 4 and square(2) == 4 and calls == [2]


def test_each_cache_folder_has_its_own_facts(tmp_path, monkeypatch):
    monkeypatch.setattr(model_facts, "_facts", {})
    square, calls = counting("square")
    for name in ("one", "two"):
        monkeypatch.setenv("TUNE_APP_CACHE", str(tmp_path / name))
        assert square(6) == 36
    assert calls == [6, 6]


def test_the_model_facts_read_back_equal_the_ones_found(cache):
    found = (stage_count_for("timm/test_resnet"), state_size_for("timm/test_resnet", num_classes=10),
             model_pretrained_cfg("timm/test_resnet"), check_model_name("timm/test_resnet"))
    a_new_command()
    kept = (stage_count_for("timm/test_resnet"), state_size_for("timm/test_resnet", num_classes=10),
            model_pretrained_cfg("timm/test_resnet"), check_model_name("timm/test_resnet"))
    assert kept == found
    assert isinstance(kept[2], PretrainedFraming) and kept[2].crop_pct == 0.95
    timm_cfg = timm.get_pretrained_cfg("test_resnet")
    assert (kept[2].mean, kept[2].std, kept[2].interpolation) == (timm_cfg.mean, timm_cfg.std, timm_cfg.interpolation)
    kinds = {key.split()[0] for key in json.loads((cache / FACTS_FILE).read_text())["facts"]}
    assert kinds == {"stage_count_for", "state_size_for", "model_pretrained_cfg", "check_model_name"}
    assert model_pretrained_cfg("torchvision/resnet18") is None


@pytest.mark.slow
def test_validating_again_imports_no_timm(tmp_path):
    """The second ``validate --no-build`` of a spec reads every model fact: timm (3 s) is not imported."""
    code = (
        "import sys\n"
        "from tune_app.cli import main\n"
        "assert main(['validate', 'search_spaces/resnet.yaml', '--no-build', '--samples', '1']) == 0\n"
        "print('timm' in sys.modules)\n"
    )
    env = {**model_facts.os.environ, "TUNE_APP_CACHE": str(tmp_path)}
    imported = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        imported.append(out.stdout.strip().splitlines()[-1])
    assert imported == ["True", "False"]
