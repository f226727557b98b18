"""`tune-app confirm` end to end on a small real sweep: interrupted, resumed, and the verdict written back."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from scipy import stats

from ..conftest import result_lines, write_spec
from ..processes import kill_session, wait_for

pytestmark = pytest.mark.ray


def tune_app(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tune_app", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished 3-trial FIFO sweep of 2 epochs on digits (sweep seed 0)."""
    from ..conftest import TINY_SPEC

    root = tmp_path_factory.mktemp("confirm")
    data = json.loads(json.dumps(TINY_SPEC))
    data["name"] = "swept"
    data["data"]["image_size"] = 8
    data["tune"].update(num_samples=3, search_alg="random", scheduler="fifo")
    done = tune_app("search", str(write_spec(root / "swept.yaml", data)), "--storage", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "swept"


def test_confirm_reruns_the_top_configs_under_new_seeds_resumes_and_writes_the_verdict_back(swept):
    confirm = swept / "confirm"
    # One run at a time, so that killing the driver after the first leaves three to resume.
    args = ["confirm", str(swept), "--top", "2", "--seeds", "2", "--set", "train.epochs=3",
            "--set", "tune.max_concurrent=1"]
    proc = subprocess.Popen([sys.executable, "-m", "tune_app", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        def one_run_done_and_state_saved():
            done = [n for n, lines in result_lines(confirm).items() if lines and lines[-1]["epoch"] == 3]
            return done if done and list(confirm.glob("experiment_state-*.json")) else None

        finished = wait_for(one_run_done_and_state_saved, 300, "a finished confirmation run", proc)
    finally:
        kill_session(proc.pid)
    proc.wait(timeout=30)
    before = result_lines(confirm)
    assert sum(1 for lines in before.values() if lines and lines[-1]["epoch"] == 3) < 4, "nothing left to resume"

    resumed = tune_app(*args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming the confirmation" in resumed.stdout

    sweep = pd.read_csv(swept / "results.csv").sort_values("val_acc", ascending=False)
    top = list(sweep["trial_id"][:2])
    runs = pd.read_csv(confirm / "results.csv")
    assert len(runs) == 4 and runs["trial_id"].is_unique
    assert set(runs["status"]) == {"TERMINATED"} and (runs["epochs"] == 3).all()  # the whole budget, no stopping
    assert sorted(runs["origin_trial"].unique()) == sorted(top)
    for origin, group in runs.groupby("origin_trial"):
        assert sorted(group["seed"]) == [1, 2]  # two new seeds each, none the sweep's (0), the same for all
        params = [c for c in sweep.columns if c not in ("trial_id", "status", "epochs", "val_acc", "time_total_s",
                                                        "error")]
        origin_row = sweep[sweep["trial_id"] == origin][params].iloc[0]
        assert all((pd.isna(v) and pd.isna(origin_row[c])) or v == origin_row[c]
                   for c, v in group[params].iloc[0].items())  # the origin trial's config, repeated
    after = result_lines(confirm)
    for name in finished:  # a run finished before the kill was not trained again
        assert after[name][:3] == before[name][:3]

    table = pd.read_csv(confirm / "confirm.csv").set_index("origin_trial_id")
    for origin, group in runs.groupby("origin_trial"):
        values = group.sort_values("seed")["val_acc"].tolist()
        row = table.loc[origin]
        assert [row["seed 1"], row["seed 2"]] == pytest.approx(values)
        assert row["mean"] == pytest.approx(sum(values) / 2)
        half = stats.t.ppf(0.95, 1) * stats.sem(values)  # (two equal seeds: a zero-width interval)
        assert (row["low"], row["high"]) == pytest.approx((sum(values) / 2 - half, sum(values) / 2 + half))
    winner = table["mean"].idxmax()
    assert next(iter(table.index)) == winner
    held = winner == top[0]
    confirm_md = (confirm / "confirm.md").read_text()
    assert ("the sweep's winner held" if held else f"the sweep's winner `{top[0]}` did not hold") in confirm_md

    best_config = (swept / "best_config.yaml").read_text()
    assert best_config.startswith(f"# Trial {winner}, the best mean val_acc over seeds 1, 2 (tune-app confirm)")
    assert ("held" if held else f"won instead of `{top[0]}`") in (swept / "report.md").read_text()
    exported = json.loads((swept / "best_model" / "config.json").read_text())
    assert exported["trial_id"] in set(runs[runs["origin_trial"] == winner]["trial_id"])

    again = tune_app("confirm", str(swept), "--top", "3", "--seeds", "2")
    assert again.returncode == 2 and "--top: " in again.stderr and "Traceback" not in again.stderr


def test_the_plan_takes_the_best_trials_and_seeds_after_the_sweeps(tmp_path):
    from tests.report.synthetic import known
    from tune_app.experiment.confirm import confirm_points, plan_confirmation

    plan = plan_confirmation(known(tmp_path / "known"), top=2, seeds=3)
    assert [o["trial_id"] for o in plan["origins"]] == ["t3", "t1"] and plan["seeds"] == [1, 2, 3]
    assert [o["sweep_value"] for o in plan["origins"]] == [0.95, 0.90]
    points = confirm_points(plan)  # seed by seed: cut short, it still compares every config
    assert [(p["origin_trial"], p["seed"]) for p in points[:3]] == [("t3", 1), ("t1", 1), ("t3", 2)]
    assert points[0]["loss"] == "focal" and points[0]["lr"] == 0.003


def test_bad_top_or_seeds_and_an_experiment_without_results_are_clear_errors(tmp_path):
    from tests.report.synthetic import Trial, known, spec, write_experiment
    from tune_app.errors import SpecError
    from tune_app.experiment.confirm import plan_confirmation

    with pytest.raises(SpecError, match="--seeds: must be >= 1, got 0"):
        plan_confirmation(known(tmp_path / "known"), top=2, seeds=0)
    empty = write_experiment(tmp_path / "empty", [Trial("a", {"lr": 0.1}, [], "PENDING")], spec("empty"))
    with pytest.raises(SpecError, match="no trial reported val_acc, so there is nothing to confirm"):
        plan_confirmation(empty, top=3, seeds=3)
