"""The command line: exit codes, messages, and real sweeps end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tune_app.cli import main

from .conftest import SEARCH_SPACES, write_spec


def tune_app(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m tune_app`` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", "tune_app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


# ------------------------------------------------------------- bad input
@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["validate", "missing.yaml"], "no such file: missing.yaml"),
        (["search", "{bad}", "--set", "train.epochs=0"], "train.epochs: Input should be greater than or equal to 1, got 0"),
        (["search", "{bad}", "--set", "search.loss=dice9"], "search.loss: unknown name 'dice9'"),
        (["train", "{bad}", "--set", "nonsense"], "--set expects key=value"),
        (["search"], "the following arguments are required: file"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(tiny_spec_file, args, fragment):
    args = [str(tiny_spec_file) if a == "{bad}" else a for a in args]
    result = tune_app(*args, cwd=tiny_spec_file.parent)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("path", SEARCH_SPACES, ids=lambda p: p.name)
def test_validate_accepts_every_bundled_search_space(path, capsys):
    # Every choice's training step at batch 8: the file's own 64 took 110 s of CI for resnet.yaml's 13 variants.
    assert main(["validate", str(path), "--samples", "2", "--set", "data.batch_size=8"]) == 0
    out = capsys.readouterr().out
    assert "sample 2:" in out and "each choice once" in out and out.rstrip().endswith(": OK")


@pytest.mark.slow
def test_the_photos_template_validates_against_a_generated_photo_folder(tmp_path, capsys):
    import timm
    from safetensors.torch import save_file

    from tune_app.training.datasets import write_sample_photos

    root = write_sample_photos(tmp_path / "photos", count=12, size=(300, 225))
    weights = tmp_path / "resnet50.safetensors"  # stands in for timm's hub weights: nothing is downloaded
    save_file(timm.create_model("resnet50").state_dict(), str(weights))
    sets = [f"data.train_dir={root / 'train'}", f"data.val_dir={root / 'val'}", f"model.pretrained={weights}",
            "data.batch_size=2", f"data.cache_dir={tmp_path / 'cache'}",
            "data.image_size=64"]  # every choice's step on resnet50 at 224 px took 2.5 minutes here
    assert main(["validate", "photos", *[a for s in sets for a in ("--set", s)]]) == 0
    out = capsys.readouterr().out
    assert "data.cache: auto: caching 12 images at 67x67 uint8" in out  # resnet50's crop_pct 0.95: 64 / 0.95
    assert "each choice once" in out and out.rstrip().endswith("photos: OK")


def test_validate_reports_a_choice_that_cannot_build(tmp_path, tiny_spec_data, capsys):
    # 3 optimizer steps in all, a third of them warm-up: torch's OneCycleLR divides by zero.
    tiny_spec_data["data"]["batch_size"] = 400
    tiny_spec_data["train"]["epochs"] = 1
    tiny_spec_data["search"]["scheduler"] = {"name": "onecycle", "pct_start": 1 / 3}
    assert main(["validate", str(write_spec(tmp_path / "s.yaml", tiny_spec_data))]) == 2
    assert "fails to build or train one step" in capsys.readouterr().err


def test_list_names_what_the_yaml_accepts(capsys):
    assert main(["list", "losses"]) == 0
    out = capsys.readouterr().out
    assert "focal" in out and "gamma" in out
    assert main(["list", "models", "timm/resnet1*"]) == 0
    out = capsys.readouterr().out
    assert "timm/resnet18\n" in out and "timm/resnet50" not in out


def test_dry_run_starts_nothing(tiny_spec_file, tmp_path, capsys):
    assert main(["search", str(tiny_spec_file), "--dry-run", "--storage", str(tmp_path / "runs")]) == 0
    assert "4 trials" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_train_runs_one_trial_at_the_defaults(tiny_spec_file, capsys):
    assert main(["train", str(tiny_spec_file), "--set", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "loss: {name: ce}" in out and "scheduler: {name: cosine}" in out  # first choices
    assert out.count("epoch ") == 2 and "final val_acc:" in out


# ------------------------------------------------------------ real sweeps
@pytest.mark.ray
def test_search_runs_a_real_sweep_and_writes_the_experiment(tmp_path, tiny_spec_file):
    result = tune_app("search", str(tiny_spec_file), "--storage", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    experiment = tmp_path / "runs" / "tiny"
    for name in ("spec.yaml", "results.csv", "history.csv", "report.md", "best_config.yaml"):
        assert (experiment / name).is_file(), name
    assert f"results:     {experiment / 'results.csv'}" in result.stdout
    assert "best val_acc:" in result.stdout
    assert "Traceback" not in result.stderr

    results = pd.read_csv(experiment / "results.csv")
    assert len(results) == 4 and set(results["status"]) == {"TERMINATED"}
    assert list(results.columns[:4]) == ["trial_id", "status", "epochs", "val_acc"]
    focal = results["loss"] == "focal"
    assert results.loc[focal, ["loss.alpha", "loss.gamma"]].notna().all().all()
    assert results.loc[~focal, ["loss.alpha", "loss.gamma"]].isna().all().all()
    assert results["val_acc"].between(0, 1).all()

    history = pd.read_csv(experiment / "history.csv")
    assert len(history) == results["epochs"].sum()
    best_per_trial = history.groupby("trial_id")["val_acc"].max()
    assert (results.set_index("trial_id")["val_acc"] - best_per_trial).abs().max() < 1e-9

    # best_config.yaml reproduces the best trial's parameters and trains without Ray.
    best = yaml.safe_load((experiment / "best_config.yaml").read_text())
    top = results.sort_values("val_acc", ascending=False).iloc[0]
    assert best["search"]["lr"] == pytest.approx(top["lr"])
    assert best["search"]["loss"]["name"] == top["loss"]
    rerun = tune_app("train", str(experiment / "best_config.yaml"), "--set", "train.epochs=1")
    assert rerun.returncode == 0, rerun.stderr

    # The same name again is bad input, and nothing already there is touched.
    before = (experiment / "results.csv").read_bytes()
    again = tune_app("search", str(tiny_spec_file), "--storage", str(tmp_path / "runs"))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (experiment / "results.csv").read_bytes() == before


@pytest.mark.ray
def test_grid_search_with_fifo_runs_every_point(tmp_path, tiny_spec_data):
    tiny_spec_data["search"] = {
        "lr": 0.005,
        "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0]}}]},
    }
    tiny_spec_data["train"]["epochs"] = 1
    tiny_spec_data["tune"].update(search_alg="grid", scheduler="fifo")
    tiny_spec_data["name"] = "grid"
    path = write_spec(tmp_path / "grid.yaml", tiny_spec_data)
    result = tune_app("search", str(path), "--storage", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stdout + result.stderr
    results = pd.read_csv(tmp_path / "runs" / "grid" / "results.csv")
    combos = {(row.loss, None if pd.isna(row["loss.gamma"]) else row["loss.gamma"]) for _, row in results.iterrows()}
    assert combos == {("ce", None), ("focal", 1.0), ("focal", 2.0)}


@pytest.mark.ray
def test_a_sweep_where_every_trial_fails_exits_1_and_keeps_the_errors(tmp_path, tiny_spec_data):
    tiny_spec_data["search"] = {"lr": {"choice": [1.0e30, 1.0e31]}}
    tiny_spec_data["train"].update(optimizer="sgd", epochs=1)
    tiny_spec_data["tune"].update(search_alg="random", scheduler="fifo", num_samples=2)
    tiny_spec_data["name"] = "diverge"
    path = write_spec(tmp_path / "diverge.yaml", tiny_spec_data)
    result = tune_app("search", str(path), "--storage", str(tmp_path / "runs"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no trial finished successfully" in result.stderr
    results = pd.read_csv(tmp_path / "runs" / "diverge" / "results.csv")
    assert list(results["status"]) == ["DIVERGED", "DIVERGED"]
    assert results["error"].str.startswith("diverged: training loss is").all()
    assert "## Failed trials" in (tmp_path / "runs" / "diverge" / "report.md").read_text()


def test_an_experiment_directory_that_is_a_symlink_is_refused(tmp_path, tiny_spec_file, capsys):
    storage = tmp_path / "runs"
    storage.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (storage / "tiny").symlink_to(elsewhere)
    assert main(["search", str(tiny_spec_file), "--storage", str(storage)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []
    (storage / "tiny").unlink()
    (storage / "tiny").symlink_to(tmp_path / "missing")  # dangling: exists() is False, is_symlink() is not
    assert main(["search", str(tiny_spec_file), "--storage", str(storage)]) == 2
    assert not (tmp_path / "missing").exists()


@pytest.mark.ray
def test_report_regenerates_removed_reports(tmp_path, tiny_spec_data):
    tiny_spec_data["train"]["epochs"] = 1
    tiny_spec_data["tune"].update(num_samples=2, scheduler="fifo")
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec_data)
    assert tune_app("search", str(spec), "--storage", str(tmp_path / "runs")).returncode == 0
    experiment = tmp_path / "runs" / "tiny"
    names = ("results.csv", "history.csv", "report.md", "report.html", "best_config.yaml")
    before = {name: (experiment / name).read_bytes() for name in names}
    ray_files = {p: p.read_bytes() for p in experiment.rglob("*") if p.is_file() and p.name not in names}
    for name in names:
        (experiment / name).unlink()
    result = tune_app("report", str(experiment), "--by", "loss", "scheduler")
    assert result.returncode == 0, result.stderr
    for name in ("results.csv", "history.csv", "best_config.yaml"):
        assert (experiment / name).read_bytes() == before[name], name
    report = (experiment / "report.md").read_text()
    assert "## Leaderboard" in report and "## `loss` × `scheduler`" in report
    assert {p: p.read_bytes() for p in ray_files} == ray_files  # Ray's own files untouched
    bad = tune_app("report", str(experiment), "--by", "momentum")
    assert bad.returncode == 2 and "momentum" in bad.stderr


@pytest.mark.ray
def test_compare_runs_each_strategy_and_its_numbers_match_their_directories(tmp_path):
    shrink = ["--set", "model.name=timm/test_resnet", "--set", "data.image_size=16", "--set", "train.epochs=3",
              "--set", "tune.num_samples=4"]
    result = tune_app("compare", str(SEARCH_SPACES[[p.name for p in SEARCH_SPACES].index("quickstart.yaml")]),
                      "--schedulers", "fifo,asha", *shrink, "--storage", str(tmp_path / "runs"), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    out_dir = tmp_path / "runs" / "quickstart-compare"
    compare = (out_dir / "compare.md").read_text()
    assert (out_dir / "compare.html").is_file()
    for strategy in ("fifo", "asha"):
        results = pd.read_csv(out_dir / f"{strategy}-seed0" / "results.csv")
        assert len(results) == 4
        lines = compare.splitlines()
        row = next(line for line in lines if line.startswith(f"| {strategy} |"))
        header = next(line for line in reversed(lines[:lines.index(row)]) if line.startswith("| strategy |"))
        cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
        assert cells["trial-epochs"] == str(int(results["epochs"].sum()))  # trial-epochs spent
        # best reached, as the table prints it (0.975 and 0.9750 are one number: compare values, not text)
        assert float(cells["best val_acc (mean ± std)"]) == pytest.approx(results["val_acc"].max(), abs=5e-5)
    fifo = pd.read_csv(out_dir / "fifo-seed0" / "results.csv")
    assert (fifo["epochs"] == 3).all()


@pytest.mark.ray
def test_search_and_report_on_a_storage_uri(tmp_path, tiny_spec_data):
    """A URI Ray understands (file:// here; s3:// and gs:// take the same path) holds the whole experiment."""
    tiny_spec_data["train"]["epochs"] = 1
    tiny_spec_data["tune"].update(num_samples=2, scheduler="fifo")
    spec = write_spec(tmp_path / "tiny.yaml", tiny_spec_data)
    remote = tmp_path / "bucket" / "tune"
    env = {**os.environ, "TUNE_APP_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", f"file://{remote}"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    experiment = remote / "tiny"
    for name in ("spec.yaml", "parameters.json", "results.csv", "history.csv", "report.md", "report.html",
                 "best_config.yaml"):
        assert (experiment / name).is_file(), name
    assert list(experiment.glob("experiment_state-*.json"))
    assert len(pd.read_csv(experiment / "results.csv")) == 2
    mirrors = list((tmp_path / "cache" / "experiments").iterdir())
    assert len(mirrors) == 1 and not list(mirrors[0].rglob("checkpoint_*"))  # the mirror holds no checkpoints
    # The budget settled the checkpoints on the remote store, and best_model/ went there too.
    assert (experiment / "best_model" / "model.safetensors").is_file()
    assert len([c for c in experiment.glob("*/checkpoint_*") if (c / "state.pt").stat().st_size > 4096]) == 2

    (experiment / "report.md").unlink()
    again = subprocess.run([sys.executable, "-m", "tune_app", "report", f"file://{experiment}", "--format", "md"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert "## Leaderboard" in (experiment / "report.md").read_text()
    taken = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", f"file://{remote}"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert taken.returncode == 2 and "already exists" in taken.stderr
