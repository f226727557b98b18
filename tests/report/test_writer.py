"""write_reports: results.csv, history.csv, report.md, best_config.yaml; and markdown_table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.report.synthetic import known, sweep
from tests.report.test_results import TRIALS, make_experiment, values
from tune_app.report import load_history, load_results, write_reports
from tune_app.report.markdown import markdown_table

TEXT = ("csv", "md")  # where a test reads no HTML, it skips the plots (about a second each)
OUTPUTS = ["results.csv", "history.csv", "report.md", "report.html", "best_config.yaml"]
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


def test_write_reports_writes_the_five_files_and_returns_their_paths(exp):
    results, paths = write_reports(exp, best_config=FakeSpecBuilder())
    assert paths == {"results": exp / "results.csv", "history": exp / "history.csv", "report": exp / "report.md",
                     "html": exp / "report.html", "best_config": exp / "best_config.yaml"}
    assert all((exp / name).is_file() for name in OUTPUTS)
    assert values(results["trial_id"]) == [f"aaaa000{i}" for i in range(1, 7)]


def test_results_csv_reads_back_as_the_results_frame(exp):
    write_reports(exp, formats=TEXT)
    frame, csv = load_results(exp), pd.read_csv(exp / "results.csv")
    assert list(csv.columns) == list(frame.columns)
    for column in frame.columns:
        assert values(csv[column]) == values(frame[column]), column
    assert values(csv["val_acc"]) == [0.75, 0.85, 0.40, 0.81, 0.50, None]
    assert values(csv["error"]) == [None] * 4 + ["ValueError: boom in epoch 2", None]


def test_history_csv_reads_back_as_the_history_frame(exp):
    write_reports(exp, formats=TEXT)
    frame, csv = load_history(exp), pd.read_csv(exp / "history.csv")
    assert list(csv.columns) == ["trial_id", "epoch", "train_loss", "val_loss", "val_acc", "val_f1", "lr",
                                 "time_total_s"]
    assert len(csv) == 11
    for column in frame.columns:
        assert values(csv[column]) == values(frame[column]), column
    assert values(csv["val_loss"]) == [0.90, 0.70, 0.80, 1.00, 0.60, 0.65, 1.50, 0.80, 0.62, 0.55, 1.20]


def test_report_md_header_states_experiment_counts_and_best(exp):
    write_reports(exp, formats=TEXT)
    lines = (exp / "report.md").read_text().splitlines()
    assert lines[:7] == [
        "# Experiment `tiny-exp`",
        "",
        "- task: classification, model: `timm/resnet18`, dataset: digits",
        "- search: optuna, trial scheduler: asha, objective: max `val_acc`",
        "- trials: 6 (1 ERROR, 1 PENDING, 4 TERMINATED); 1 stopped early by the trial scheduler "
        "(fewer than the 3 epochs of the longest trial)",
        "- best `val_acc`: **0.8500** (trial `aaaa0002`)",
        # time_total_s is 10 * epoch + creation number: 31 + 32 + 13 + 34 + 15 = 125 s over 5 trials that ran;
        # trial n starts at timestamp(1) - (10 + n), its epoch i lands 10 * i later: 1795599986 .. 1795600021.
        "- compute: 2.1 min of trial time over 11 trial-epochs, 25 s per trial on average (5 trials); "
        "wall time 35 s",
    ]


def test_report_md_leaderboard_lists_best_first(exp):
    text = (write_reports(exp, formats=TEXT)[1]["report"]).read_text()
    lines = text.splitlines()
    start = lines.index("## Leaderboard")
    assert lines[start + 2:start + 5] == [
        "| rank | trial_id | status | epochs | val_acc | lr | loss | loss.alpha | loss.gamma | scheduler"
        " | scheduler.step_size | time_total_s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        "| 1 | aaaa0002 | TERMINATED | 3 | 0.85 | 0.001 | focal | 0.5 | 2 | step | 2 | 32 |",
    ]
    assert lines[start + 5] == "| 2 | aaaa0004 | TERMINATED | 3 | 0.81 | 0.005 | focal | 0.25 | 1 | cosine |  | 34 |"
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    board_rows = [line for line in lines[start:end] if line.startswith("| ") and line[2].isdigit()]
    # The failed trial aaaa0005 appears only under "Failed trials", after the leaderboard.
    assert [row.split(" | ")[1] for row in board_rows] == ["aaaa0002", "aaaa0004", "aaaa0001", "aaaa0003"]
    assert end < lines.index("## Failed trials")
    assert "aaaa0005" not in "\n".join(lines[:lines.index("## Failed trials")])
    assert "aaaa0006" not in text  # PENDING: reported nothing


def test_report_md_lists_failed_trials_with_their_message(exp):
    text = (write_reports(exp, formats=TEXT)[1]["report"]).read_text()
    assert text.endswith(
        "## Failed trials\n\n| trial_id | epochs | error | parameters |\n| --- | --- | --- | --- |\n"
        "| aaaa0005 | 1 | ValueError: boom in epoch 2 | lr=0.05, loss=ce, scheduler=cosine |\n")


def test_report_md_uses_mode_min_from_the_spec(tmp_path):
    exp = make_experiment(tmp_path / "e", spec={"name": "m", "train": {"metric": "val_loss", "mode": "min"}})
    write_reports(exp, formats=TEXT)
    text = (exp / "report.md").read_text()
    assert "- best `val_loss`: **0.5500** (trial `aaaa0004`)" in text
    assert "objective: min `val_loss`" in text


def test_best_config_yaml_is_the_builder_output_for_the_best_trial(exp):
    builder = FakeSpecBuilder()
    write_reports(exp, best_config=builder, formats=TEXT)
    assert builder.calls == [BEST_CONFIG]
    text = (exp / "best_config.yaml").read_text()
    assert text.splitlines()[0].startswith("# ") and "aaaa0002" in text.splitlines()[0]
    assert yaml.safe_load(text) == {"name": "tiny-exp-best", "train": {"epochs": 3, "lr": 0.001},
                                    "loss": {"name": "focal", "alpha": 0.5, "gamma": 2.0}}


def test_no_best_config_without_a_builder_or_without_any_metric(tmp_path, exp):
    _, paths = write_reports(exp, formats=TEXT)
    assert "best_config" not in paths and not (exp / "best_config.yaml").exists()
    pending_only = make_experiment(tmp_path / "p", trials=[t for t in TRIALS if t[2] == "PENDING"], order=[6])
    builder = FakeSpecBuilder()
    _, paths = write_reports(pending_only, best_config=builder, formats=TEXT)
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
    write_reports(exp, formats=TEXT)
    previous = (exp / "results.csv").read_bytes()
    before = all_files(exp)

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("tune_app.report.files.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_reports(exp, formats=TEXT)
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


# ------------------------------------------------------- regenerate, final, formats
def test_removed_reports_regenerate_byte_identical(tmp_path):
    exp = known(tmp_path / "known")
    _, paths = write_reports(exp, best_config=FakeKnownBuilder(), by=("loss", "scheduler"))
    first = {name: path.read_bytes() for name, path in paths.items()}
    assert set(paths) == {"results", "history", "report", "html", "best_config"}
    for path in paths.values():
        path.unlink()
    _, again = write_reports(exp, best_config=FakeKnownBuilder(), by=("loss", "scheduler"))
    assert again == paths
    assert {name: path.read_bytes() for name, path in again.items()} == first


def test_an_intermediate_report_skips_importance_and_html(tmp_path):
    exp = known(tmp_path / "known")
    _, paths = write_reports(exp, final=False)
    assert set(paths) == {"results", "history", "report"} and not (exp / "report.html").exists()
    text = (exp / "report.md").read_text()
    assert "## Parameter importance\n\nComputed when the sweep ends; `tune-app report DIR` computes it now.\n" in text
    assert "### `loss`" in text  # the cheap tables are all there
    write_reports(exp, formats=("md",))  # final by default
    assert "| lr | " in (exp / "report.md").read_text().split("## Parameter importance")[1]


def test_formats_pick_the_files(tmp_path):
    exp = known(tmp_path / "known")
    _, paths = write_reports(exp, formats=("csv",))
    assert set(paths) == {"results", "history"} and not (exp / "report.md").exists()
    _, paths = write_reports(exp, formats=("md",))
    assert set(paths) == {"report"}
    with pytest.raises(ValueError, match="unknown report format 'pdf'; known: csv, md, html"):
        write_reports(exp, formats=("md", "pdf"))


def test_a_bad_by_fails_before_anything_is_written(tmp_path):
    exp = known(tmp_path / "known")
    before = all_files(exp)
    with pytest.raises(ValueError, match="--by optimizer"):
        write_reports(exp, by=("optimizer",))
    assert all_files(exp) == before


def test_report_md_two_way_table_and_importance(tmp_path):
    exp = known(tmp_path / "known")
    text = write_reports(exp, by=("loss", "scheduler"), formats=("md",))[1]["report"].read_text()
    assert ("## `loss` × `scheduler`\n\n"
            "Mean `val_acc` over the trials of each pair of values (trials in brackets); "
            "rows and columns best first.\n\n"
            "| loss \\ scheduler | cosine | step |\n| --- | --- | --- |\n"
            "| focal | 0.85 (3) | 0.6 (1) |\n| ce | 0.9 (1) | 0.75 (2) |\n") in text
    # At epoch 1 (every trial reached it): ce (0.80 + 0.65 + 0.65) / 3, focal (0.80 + 0.60 + 0.70 + 0.70) / 4;
    # at epoch 4: ce t1 0.88, t7 0.80; focal t3 0.95, t5 0.85.
    assert ("### `loss`\n\n| loss | trials | best | mean ± std | median | mean epochs | stopped early | failed "
            "| mean at epoch 1 | full-budget trials | mean at epoch 4 | stopped at |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
            "| focal | 4 | 0.95 | 0.7875 ± 0.1493 | 0.8 | 2.75 | 2 | 0 | 0.7 | 2 | 0.9 | epoch 1: 25%, epoch 2: 25% |\n"
            "| ce | 3 | 0.9 | 0.8 ± 0.1 | 0.8 | 3.333 | 1 | 1 | 0.7 | 2 | 0.84 | epoch 2: 33% |\n\n"
            "`focal` − `ce`, mean at epoch 1: +0.0000, 90% bootstrap interval [-0.1000, +0.0750] over 4 and 3 "
            "trials: not distinguishable with these trials.\n") in text
    assert "### `loss.gamma` (when loss = focal)" in text
    assert "| lr | log | 7 | 0.03571 | higher | 2 | 0.001 – 0.003 | 16% |" in text
    importance = text.split("## Parameter importance")[1].split("## Failed trials")[0]
    assert [line.split(" | ")[0][2:] for line in importance.splitlines() if line.startswith("| ")][2:] == [
        "scheduler", "lr", "freeze_depth", "loss"]
    assert ("Left out (Optuna assesses only parameters present in every trial): `loss.gamma` (conditional: absent "
            "from 3 of 7 trials); `scheduler.step_size` (conditional: absent from 4 of 7 trials).") in importance
    assert "- trials: 9 (1 ERROR, 1 PENDING, 7 TERMINATED); 3 stopped early by the trial scheduler (fewer than 4 " \
           "epochs)" in text
    assert "- compute: 3.7 min of trial time over 22 trial-epochs, 28 s per trial on average (8 trials); " \
           "wall time 110 s" in text


def test_an_intermediate_report_of_100_trials_stays_cheap(tmp_path):
    exp = sweep(tmp_path / "sweep", n=100)
    write_reports(exp, final=False)  # first call pays the imports
    start = time.perf_counter()
    write_reports(exp, by=("loss",), final=False)
    assert time.perf_counter() - start < 1.5  # about 0.2 s on 2 CPU cores


class FakeKnownBuilder:
    def __call__(self, flat: dict) -> dict:
        return {"name": "known-best", "lr": flat["lr"], "loss": flat["loss"]}
