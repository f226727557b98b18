"""write_reports: results.csv, history.csv, report.md, best_config.yaml; and markdown_table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.report.test_results import TRIALS, make_experiment, values
from tune_app.report import load_history, load_results, write_reports
from tune_app.report.markdown import markdown_table

OUTPUTS = ["results.csv", "history.csv", "report.md", "best_config.yaml"]
BEST_CONFIG = {"lr": 0.001, "scheduler": "step", "scheduler.step_size": 2,
               "loss": "focal", "loss.alpha": 0.5, "loss.gamma": 2.0}  # trial aaaa0002, val_acc 0.85


class FakeSpecBuilder:
    """Stands in for the spec layer: records what it was given, returns a small runnable spec."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, flat: dict) -> dict:
        self.calls.append(dict(flat))
        return {"name": "tiny-exp-best", "train": {"epochs": 3, "lr": flat["lr"]},
                "loss": {"name": flat["loss"], "alpha": flat["loss.alpha"], "gamma": flat["loss.gamma"]}}


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    return make_experiment(tmp_path / "tiny-exp")


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def all_files(root: Path) -> list[str]:
    return sorted(name for _, _, files in os.walk(root) for name in files)


def test_write_reports_writes_the_four_files_and_returns_their_paths(exp):
    results, paths = write_reports(exp, best_config=FakeSpecBuilder())
    assert paths == {"results": exp / "results.csv", "history": exp / "history.csv", "report": exp / "report.md",
                     "best_config": exp / "best_config.yaml"}
    assert all((exp / name).is_file() for name in OUTPUTS)
    assert values(results["trial_id"]) == [f"aaaa000{i}" for i in range(1, 7)]


def test_results_csv_reads_back_as_the_results_frame(exp):
    write_reports(exp)
    frame, csv = load_results(exp), pd.read_csv(exp / "results.csv")
    assert list(csv.columns) == list(frame.columns)
    for column in frame.columns:
        assert values(csv[column]) == values(frame[column]), column
    assert values(csv["val_acc"]) == [0.75, 0.85, 0.40, 0.81, 0.50, None]
    assert values(csv["error"]) == [None] * 4 + ["ValueError: boom in epoch 2", None]


def test_history_csv_reads_back_as_the_history_frame(exp):
    write_reports(exp)
    frame, csv = load_history(exp), pd.read_csv(exp / "history.csv")
    assert list(csv.columns) == ["trial_id", "epoch", "train_loss", "val_loss", "val_acc", "val_f1", "lr",
                                 "time_total_s"]
    assert len(csv) == 11
    for column in frame.columns:
        assert values(csv[column]) == values(frame[column]), column
    assert values(csv["val_loss"]) == [0.90, 0.70, 0.80, 1.00, 0.60, 0.65, 1.50, 0.80, 0.62, 0.55, 1.20]


def test_report_md_header_states_experiment_counts_and_best(exp):
    write_reports(exp)
    lines = (exp / "report.md").read_text().splitlines()
    assert lines[:6] == [
        "# Experiment `tiny-exp`",
        "",
        "- task: classification, model: `timm/resnet18`, dataset: digits",
        "- search: optuna, trial scheduler: asha, objective: max `val_acc`",
        "- trials: 6 (1 ERROR, 1 PENDING, 4 TERMINATED)",
        "- best `val_acc`: **0.8500** (trial `aaaa0002`)",
    ]


def test_report_md_leaderboard_lists_best_first(exp):
    text = (write_reports(exp)[1]["report"]).read_text()
    lines = text.splitlines()
    start = lines.index("## Leaderboard")
    assert lines[start + 2:start + 5] == [
        "| rank | trial_id | status | epochs | val_acc | lr | loss | loss.alpha | loss.gamma | scheduler"
        " | scheduler.step_size | time_total_s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        "| 1 | aaaa0002 | TERMINATED | 3 | 0.85 | 0.001 | focal | 0.5 | 2 | step | 2 | 32 |",
    ]
    assert lines[start + 5] == "| 2 | aaaa0004 | TERMINATED | 3 | 0.81 | 0.005 | focal | 0.25 | 1 | cosine |  | 34 |"
    board_rows = [line for line in lines[start:] if line.startswith("| ") and line[2].isdigit()]
    # The failed trial aaaa0005 appears only under "Failed trials", after the leaderboard.
    failed = lines.index("## Failed trials")
    assert [row.split(" | ")[1] for row in board_rows if lines.index(row) < failed] == [
        "aaaa0002", "aaaa0004", "aaaa0001", "aaaa0003"]
    assert "aaaa0006" not in text  # PENDING: reported nothing


def test_report_md_lists_failed_trials_with_their_message(exp):
    text = (write_reports(exp)[1]["report"]).read_text()
    assert text.endswith(
        "## Failed trials\n\n| trial_id | epochs | error |\n| --- | --- | --- |\n"
        "| aaaa0005 | 1 | ValueError: boom in epoch 2 |\n")


def test_report_md_uses_mode_min_from_the_spec(tmp_path):
    exp = make_experiment(tmp_path / "e", spec={"name": "m", "train": {"metric": "val_loss", "mode": "min"}})
    write_reports(exp)
    text = (exp / "report.md").read_text()
    assert "- best `val_loss`: **0.5500** (trial `aaaa0004`)" in text
    assert "objective: min `val_loss`" in text


def test_best_config_yaml_is_the_builder_output_for_the_best_trial(exp):
    builder = FakeSpecBuilder()
    write_reports(exp, best_config=builder)
    assert builder.calls == [BEST_CONFIG]
    text = (exp / "best_config.yaml").read_text()
    assert text.splitlines()[0].startswith("# ") and "aaaa0002" in text.splitlines()[0]
    assert yaml.safe_load(text) == {"name": "tiny-exp-best", "train": {"epochs": 3, "lr": 0.001},
                                    "loss": {"name": "focal", "alpha": 0.5, "gamma": 2.0}}


def test_no_best_config_without_a_builder_or_without_any_metric(tmp_path, exp):
    _, paths = write_reports(exp)
    assert "best_config" not in paths and not (exp / "best_config.yaml").exists()
    pending_only = make_experiment(tmp_path / "p", trials=[t for t in TRIALS if t[2] == "PENDING"], order=[6])
    builder = FakeSpecBuilder()
    _, paths = write_reports(pending_only, best_config=builder)
    assert builder.calls == [] and not (pending_only / "best_config.yaml").exists()
    assert "No trial reported the metric." in (pending_only / "report.md").read_text()


def test_write_reports_leaves_every_existing_file_untouched(exp):
    for path in exp.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    before = snapshot(exp)
    write_reports(exp, best_config=FakeSpecBuilder())
    after = snapshot(exp)
    assert {name: after.get(name) for name in before} == before
    assert sorted(set(after) - set(before)) == sorted(OUTPUTS)


def test_write_reports_twice_gives_identical_files_and_no_temporaries(exp):
    write_reports(exp, best_config=FakeSpecBuilder())
    first = {name: (exp / name).read_bytes() for name in OUTPUTS}
    write_reports(exp, best_config=FakeSpecBuilder())
    assert {name: (exp / name).read_bytes() for name in OUTPUTS} == first
    assert [name for name in all_files(exp) if name.endswith(".tmp")] == []


def test_a_failed_write_keeps_the_previous_file_and_removes_the_temporary(exp, monkeypatch):
    write_reports(exp)
    previous = (exp / "results.csv").read_bytes()
    before = all_files(exp)

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("tune_app.report.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_reports(exp)
    monkeypatch.undo()
    assert (exp / "results.csv").read_bytes() == previous
    assert all_files(exp) == before


def test_reports_get_the_permissions_of_a_normally_created_file(exp):
    old = os.umask(0o022)
    try:
        write_reports(exp, best_config=FakeSpecBuilder())
    finally:
        os.umask(old)
    assert {name: oct((exp / name).stat().st_mode & 0o777) for name in OUTPUTS} == dict.fromkeys(OUTPUTS, "0o644")


# ----------------------------------------------------------- markdown_table
def test_markdown_table_escapes_pipes_and_leaves_missing_cells_blank():
    frame = pd.DataFrame({"name": ["a|b", None, "x\ny"], "value": [0.123456, float("nan"), 2.0]})
    assert markdown_table(frame) == (
        "| name | value |\n"
        "| --- | --- |\n"
        "| a\\|b | 0.1235 |\n"
        "|  |  |\n"
        "| x y | 2 |"
    )


def test_markdown_table_renders_none_in_an_object_column_as_blank_and_can_show_the_index():
    frame = pd.DataFrame({"error": pd.Series([None, "E: x | y"], dtype=object)})
    frame.index = pd.Index([1, 2], name="rank")
    assert markdown_table(frame, index=True) == "| rank | error |\n| --- | --- |\n| 1 |  |\n| 2 | E: x \\| y |"
