"""Experiment directory -> trial records -> results / history DataFrames, leaderboard, without Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from tune_app.report import best_trial_id, leaderboard, load_history, load_results, read_trials, results_frame
from tune_app.report.tables import status_counts

SPEC = {
    "name": "tiny-exp", "task": "classification", "model": {"name": "timm/resnet18"},
    "data": {"dataset": "digits"}, "train": {"metric": "val_acc", "mode": "max"},
    "tune": {"search_alg": "optuna", "scheduler": "asha"},
}
ERROR_TXT = (
    "Failure # 1 (occurred at 2026-11-27_10-01-02)\n"
    "ray::ImplicitFunc.train() (pid=4242, ip=127.0.0.1, repr=train_fn)\n"
    '  File "/work/main/tune_app/trainable.py", line 29, in train_trial\n'
    '    raise ValueError("boom in epoch 2")\n'
    "ValueError: boom in epoch 2\n\n"
)
# (creation number, trial id, status, config, [(val_acc, val_loss) per epoch], error.txt or None)
TRIALS = [
    (1, "aaaa0001", "TERMINATED", {"lr": 0.01, "loss": "ce", "scheduler": "cosine"},
     [(0.60, 0.90), (0.75, 0.70), (0.72, 0.80)], None),
    # a scheduler sub-parameter appears before focal's, yet loss.* must still follow loss
    (2, "aaaa0002", "TERMINATED", {"lr": 0.001, "scheduler": "step", "scheduler.step_size": 2,
                                   "loss": "focal", "loss.alpha": 0.5, "loss.gamma": 2.0},
     [(0.55, 1.00), (0.80, 0.60), (0.85, 0.65)], None),
    (3, "aaaa0003", "TERMINATED", {"lr": 0.1, "loss": "ce", "scheduler": "cosine"},  # stopped by ASHA
     [(0.40, 1.50)], None),
    (4, "aaaa0004", "TERMINATED", {"lr": 0.005, "loss": "focal", "loss.alpha": 0.25, "loss.gamma": 1.0,
                                   "scheduler": "cosine"},
     [(0.70, 0.80), (0.78, 0.62), (0.81, 0.55)], None),
    (5, "aaaa0005", "ERROR", {"lr": 0.05, "loss": "ce", "scheduler": "cosine"}, [(0.50, 1.20)], ERROR_TXT),
    (6, "aaaa0006", "PENDING", {"lr": 0.02, "loss": "ce", "scheduler": "cosine"}, None, None),  # no dir yet
]
STATE_ORDER = [4, 2, 6, 3, 5, 1]  # the state file lists trials shuffled
PARAMS = ["lr", "loss", "loss.alpha", "loss.gamma", "scheduler", "scheduler.step_size"]
IDS = [f"aaaa000{i}" for i in range(1, 7)]


def trial_dirname(n: int, trial_id: str, config: dict) -> str:
    tag = ",".join(f"{k}={v}" for k, v in config.items())
    return f"train_fn_{trial_id}_{n}_{tag}_2026-11-27_09-59-{10 + n:02d}"


def result_lines(n: int, trial_id: str, status: str, config: dict, epochs: list) -> list[str]:
    lines = []
    for i, (acc, loss) in enumerate(epochs, start=1):
        ours = {"epoch": i, "train_loss": loss + 0.25, "val_loss": loss, "val_acc": acc, "val_f1": acc - 0.05,
                "lr": config["lr"]}
        ray = {"timestamp": 1795600000 + i, "checkpoint_dir_name": None,
               "done": status == "TERMINATED" and i == len(epochs), "training_iteration": i,
               "trial_id": trial_id, "date": "2026-11-27_10-00-00", "time_this_iter_s": 10.0,
               "time_total_s": 10.0 * i + n, "pid": 4242, "hostname": "node", "node_ip": "127.0.0.1",
               "config": config, "time_since_restore": 10.0 * i + n, "iterations_since_restore": i,
               "experiment_tag": f"{n}_x"}
        lines.append(json.dumps({**ours, **ray}))
    return lines


def make_experiment(root: Path, trials=TRIALS, order=STATE_ORDER, spec=SPEC, state: bool = True) -> Path:
    """Lay out <root> as Ray Tune 2.60 does: state file, trial dirs, spec.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    by_number = {t[0]: t for t in trials}
    entries = []
    for n in order:
        _, trial_id, status, config, epochs, error = by_number[n]
        logdir = trial_dirname(n, trial_id, config) if epochs is not None else None
        tag = f"{n}_" + ",".join(f"{k}={v}" for k, v in config.items())
        entries.append([json.dumps({"trainable_name": "train_fn", "trial_id": trial_id, "status": status,
                                    "config": config, "evaluated_params": config, "relative_logdir": logdir,
                                    "experiment_tag": tag, "results": "80049500"}), "{}"])
        if logdir is None:
            continue
        trial_dir = root / logdir
        trial_dir.mkdir()
        (trial_dir / "params.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        (trial_dir / "result.json").write_text("".join(line + "\n" for line in result_lines(n, trial_id, status,
                                                                                            config, epochs)))
        if error is not None:
            (trial_dir / "error.txt").write_text(error)
    if state:
        (root / "experiment_state-2026-11-27_09-59-09.json").write_text(json.dumps(
            {"trial_data": entries, "runner_data": {"_iteration": 12}, "stats": {"start_time": 1795599999.0}}))
    if spec is not None:
        (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def values(series) -> list:
    """A column as a list, with NaN / None as None (so that lists compare exactly)."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in series.tolist()]


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    return make_experiment(tmp_path / "tiny-exp")


# ------------------------------------------------------------------ results
def test_results_columns_put_each_family_sub_parameters_right_after_it(exp):
    results = load_results(exp)
    assert list(results.columns) == ["trial_id", "status", "epochs", "val_acc", *PARAMS, "time_total_s", "restarts",
                                     "error"]


def test_results_rows_follow_creation_number_not_state_file_order(exp):
    assert values(load_results(exp)["trial_id"]) == IDS
    assert [t.trial_id for t in read_trials(exp)] == IDS


def test_results_hold_status_epochs_best_max_metric_and_last_elapsed_time(exp):
    results = load_results(exp)
    assert values(results["status"]) == ["TERMINATED"] * 4 + ["ERROR", "PENDING"]
    assert values(results["epochs"]) == [3, 3, 1, 3, 1, 0]
    assert values(results["val_acc"]) == [0.75, 0.85, 0.40, 0.81, 0.50, None]
    assert values(results["time_total_s"]) == [31.0, 32.0, 13.0, 34.0, 15.0, None]


def test_results_take_min_over_epochs_for_mode_min(exp):
    results = load_results(exp, metric="val_loss", mode="min")
    assert "val_acc" not in results.columns
    assert values(results["val_loss"]) == [0.70, 0.60, 1.50, 0.55, 1.20, None]


def test_results_use_the_objective_of_spec_yaml_by_default(tmp_path):
    exp = make_experiment(tmp_path / "e", spec={**SPEC, "train": {"metric": "val_loss", "mode": "min"}})
    assert values(load_results(exp)["val_loss"]) == [0.70, 0.60, 1.50, 0.55, 1.20, None]


def test_results_leave_parameters_a_trial_did_not_have_empty(exp):
    results = load_results(exp)
    assert values(results["loss"]) == ["ce", "focal", "ce", "focal", "ce", "ce"]
    assert values(results["loss.alpha"]) == [None, 0.5, None, 0.25, None, None]
    assert values(results["loss.gamma"]) == [None, 2.0, None, 1.0, None, None]
    assert values(results["scheduler.step_size"]) == [None, 2, None, None, None, None]
    assert values(results["lr"]) == [0.01, 0.001, 0.1, 0.005, 0.05, 0.02]


def test_results_carry_the_exception_line_of_error_txt(exp):
    assert values(load_results(exp)["error"]) == [None] * 4 + ["ValueError: boom in epoch 2", None]
    assert read_trials(exp)[4].error == "ValueError: boom in epoch 2"


def test_best_ignores_non_finite_metric_values(tmp_path):
    exp = make_experiment(tmp_path / "e", trials=[(1, "bbbb0001", "TERMINATED", {"lr": 0.1},
                                                   [(float("nan"), 0.9), (0.3, float("inf"))], None)], order=[1])
    results = load_results(exp, "val_acc", "max")
    assert values(results["val_acc"]) == [0.3]
    assert values(load_results(exp, "val_loss", "min")["val_loss"]) == [0.9]


def test_trials_sort_by_creation_number_numerically(tmp_path):
    trials = [(10, "cccc0010", "TERMINATED", {"lr": 0.1}, [(0.1, 1.0)], None),
              (9, "cccc0009", "TERMINATED", {"lr": 0.2}, [(0.2, 1.0)], None)]
    exp = make_experiment(tmp_path / "e", trials=trials, order=[10, 9])
    assert [t.trial_id for t in read_trials(exp)] == ["cccc0009", "cccc0010"]


def test_the_newest_experiment_state_file_wins(tmp_path):
    exp = make_experiment(tmp_path / "e")
    stale = json.loads((exp / "experiment_state-2026-11-27_09-59-09.json").read_text())
    for entry in stale["trial_data"]:
        state = json.loads(entry[0])
        entry[0] = json.dumps({**state, "status": "RUNNING"})
    (exp / "experiment_state-2026-11-27_09-00-00.json").write_text(json.dumps(stale))
    assert values(load_results(exp)["status"]) == ["TERMINATED"] * 4 + ["ERROR", "PENDING"]


# ------------------------------------------------------------------ history
def test_history_has_one_row_per_trial_and_epoch_without_ray_keys(exp):
    history = load_history(exp)
    assert list(history.columns) == ["trial_id", "epoch", "train_loss", "val_loss", "val_acc", "val_f1", "lr",
                                     "time_total_s"]
    assert list(zip(history["trial_id"], history["epoch"])) == [
        ("aaaa0001", 1), ("aaaa0001", 2), ("aaaa0001", 3), ("aaaa0002", 1), ("aaaa0002", 2), ("aaaa0002", 3),
        ("aaaa0003", 1), ("aaaa0004", 1), ("aaaa0004", 2), ("aaaa0004", 3), ("aaaa0005", 1)]
    assert values(history["val_acc"]) == [0.60, 0.75, 0.72, 0.55, 0.80, 0.85, 0.40, 0.70, 0.78, 0.81, 0.50]
    assert values(history["time_total_s"]) == [11.0, 21.0, 31.0, 12.0, 22.0, 32.0, 13.0, 14.0, 24.0, 34.0, 15.0]
    row = history.iloc[4].to_dict()
    assert row == {"trial_id": "aaaa0002", "epoch": 2, "train_loss": pytest.approx(0.85), "val_loss": 0.60,
                   "val_acc": 0.80, "val_f1": pytest.approx(0.75), "lr": 0.001, "time_total_s": 22.0}


def test_history_epoch_falls_back_to_training_iteration(tmp_path):
    exp = make_experiment(tmp_path / "e", trials=[(1, "dddd0001", "TERMINATED", {"lr": 0.1},
                                                   [(0.1, 1.0), (0.2, 0.9)], None)], order=[1])
    result = next(exp.glob("*/result.json"))
    lines = [json.loads(line) for line in result.read_text().splitlines()]
    result.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "epoch"}) + "\n" for r in lines))
    history = load_history(exp)
    assert list(history.columns[:2]) == ["trial_id", "epoch"]
    assert values(history["epoch"]) == [1, 2]


# -------------------------------------------------------------- leaderboard
def test_leaderboard_ranks_best_first_from_1(exp):
    board = leaderboard(load_results(exp), "val_acc", "max")
    assert values(board["trial_id"]) == ["aaaa0002", "aaaa0004", "aaaa0001", "aaaa0003"]
    assert list(board.index) == [1, 2, 3, 4] and board.index.name == "rank"
    assert "error" not in board.columns
    assert values(board["val_acc"]) == [0.85, 0.81, 0.75, 0.40]


def test_leaderboard_leaves_out_failed_trials_and_trials_without_the_metric(exp):
    # The ERROR trial reported an epoch before failing; the PENDING one reported nothing.
    board = leaderboard(load_results(exp), "val_acc", "max", top=None)
    assert set(board["status"]) == {"TERMINATED"}
    assert {"aaaa0005", "aaaa0006"}.isdisjoint(board["trial_id"])


def test_leaderboard_for_mode_min_and_top(exp):
    board = leaderboard(load_results(exp, "val_loss", "min"), "val_loss", "min", top=2)
    assert values(board["trial_id"]) == ["aaaa0004", "aaaa0002"]
    assert values(board["val_loss"]) == [0.55, 0.60]


def test_leaderboard_ties_keep_trial_order(tmp_path):
    trials = [(n, f"eeee000{n}", "TERMINATED", {"lr": 0.1 * n}, [(acc, 1.0)], None)
              for n, acc in [(1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6)]]
    exp = make_experiment(tmp_path / "e", trials=trials, order=[3, 1, 4, 2])
    board = leaderboard(load_results(exp), "val_acc", "max")
    assert values(board["trial_id"]) == ["eeee0002", "eeee0003", "eeee0004", "eeee0001"]


def test_best_trial_id(exp):
    assert best_trial_id(load_results(exp), "val_acc", "max") == "aaaa0002"
    assert best_trial_id(load_results(exp, "val_loss", "min"), "val_loss", "min") == "aaaa0004"
    nothing = results_frame(read_trials(exp)[5:], "val_acc", "max")  # only the PENDING trial
    assert best_trial_id(nothing, "val_acc", "max") is None


def test_status_counts(exp):
    assert status_counts(load_results(exp)) == {"ERROR": 1, "PENDING": 1, "TERMINATED": 4}


# ------------------------------------------------------------ crashed runs
def test_without_a_state_file_trials_come_from_their_directories(tmp_path):
    trials = [(1, "ffff0001", "TERMINATED", {"lr": 0.01, "loss": "ce"}, [(0.6, 0.9), (0.7, 0.8)], None),
              (2, "ffff0002", "ERROR", {"lr": 0.02, "loss": "focal", "loss.gamma": 2.0}, [(0.5, 1.1)], ERROR_TXT),
              (3, "ffff0003", "RUNNING", {"lr": 0.03, "loss": "ce"}, [(0.4, 1.3)], None)]
    exp = make_experiment(tmp_path / "e", trials=trials, order=[3, 1, 2], state=False)
    assert not list(exp.glob("experiment_state-*"))
    results = load_results(exp)
    assert values(results["trial_id"]) == ["ffff0001", "ffff0002", "ffff0003"]
    assert values(results["status"]) == ["TERMINATED", "ERROR", "UNKNOWN"]
    assert values(results["epochs"]) == [2, 1, 1]
    assert values(results["val_acc"]) == [0.7, 0.5, 0.4]
    assert values(results["loss.gamma"]) == [None, 2.0, None]
    assert values(results["error"]) == [None, "ValueError: boom in epoch 2", None]
    assert read_trials(exp)[1].config == {"lr": 0.02, "loss": "focal", "loss.gamma": 2.0}


def test_without_a_state_file_trials_still_follow_creation_number(tmp_path):
    trials = [(1, "9f00aa11", "TERMINATED", {"lr": 0.1}, [(0.1, 1.0)], None),
              (2, "0b12cc34", "TERMINATED", {"lr": 0.2}, [(0.2, 1.0)], None),
              (3, "5e77dd56", "TERMINATED", {"lr": 0.3}, [(0.3, 1.0)], None)]
    exp = make_experiment(tmp_path / "e", trials=trials, order=[1, 2, 3], state=False)
    assert [t.trial_id for t in read_trials(exp)] == ["9f00aa11", "0b12cc34", "5e77dd56"]


def test_trial_directories_the_state_file_does_not_know_come_last(tmp_path):
    exp = make_experiment(tmp_path / "e", order=[1, 2, 3, 4, 5, 6])
    state_file = exp / "experiment_state-2026-11-27_09-59-09.json"
    state = json.loads(state_file.read_text())
    state["trial_data"] = [e for e in state["trial_data"] if json.loads(e[0])["trial_id"] != "aaaa0003"]
    state_file.write_text(json.dumps(state))
    results = load_results(exp)
    assert values(results["trial_id"]) == ["aaaa0001", "aaaa0002", "aaaa0004", "aaaa0005", "aaaa0006", "aaaa0003"]
    assert values(results["status"])[-1] == "TERMINATED"  # its last result line says done
    assert values(results["val_acc"])[-1] == 0.40


def test_a_result_line_cut_short_by_a_crash_keeps_the_lines_before_it(exp):
    result = next(exp.glob("train_fn_aaaa0001_*/result.json"))
    text = result.read_text()
    result.write_text(text[: text.rindex('"val_acc"') + 5])  # third epoch cut mid-write
    results = load_results(exp)
    assert values(results["epochs"])[0] == 2
    assert values(results["val_acc"])[0] == 0.75
    assert values(results["time_total_s"])[0] == 21.0
    assert values(load_history(exp).query("trial_id == 'aaaa0001'")["epoch"]) == [1, 2]


def test_read_trials_on_a_missing_directory_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_trials(tmp_path / "nope")


def test_restarts_are_read_from_rays_own_runtime_metadata_in_either_layout():
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    from tune_app.report.results import _failures

    metadata = _TrainingRunMetadata()
    metadata.num_failures = 2
    metadata.last_result = {"num_failures": 7}  # a metric of that name further down is not it
    saved = metadata.get_json_state()  # what Ray writes into experiment_state-*.json
    assert _failures(saved) == 2
    assert _failures(json.dumps(json.loads(saved))) == 2  # without Ray's indentation: parsed in full
    assert _failures(None) == 0 and _failures("not json") == 0
