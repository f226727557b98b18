"""The driver's callbacks on hand-made experiment directories (no Ray run needed)."""

from __future__ import annotations

import copy
import logging
import re

from tests.report.synthetic import known
from tune_app.experiment.location import Location
from tune_app.spec import validate_spec
from tune_app.sweep.callbacks import ReportRefresh

from ..conftest import TINY_SPEC


def known_spec(name: str):
    """A spec whose search space is the one `synthetic.known`'s trials were drawn from."""
    data = copy.deepcopy(TINY_SPEC)
    data["name"] = name
    data["search"] = {
        "lr": {"loguniform": [1.0e-4, 0.1]}, "freeze_depth": {"int": [0, 4]},
        "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0]}}]},
        "scheduler": {"choice": ["cosine", {"name": "step", "step_size": {"int": [1, 4]}}]},
    }
    return validate_spec(data)


def test_report_refresh_writes_at_most_every_interval_and_backs_off_to_two_percent(tmp_path):
    exp = known(tmp_path / "known")
    refresh = ReportRefresh(known_spec("known"), Location(str(tmp_path), "known"), every=10.0)
    refresh.on_trial_complete(1, [], None)
    assert (exp / "results.csv").is_file() and (exp / "report.md").is_file() and (exp / "best_config.yaml").is_file()
    assert refresh.writes == 1 and refresh.interval == max(10.0, refresh.seconds / ReportRefresh.SHARE)
    (exp / "results.csv").unlink()
    refresh.on_trial_complete(2, [], None)  # inside the interval: only marked pending
    assert refresh.writes == 1 and refresh.pending and not (exp / "results.csv").exists()
    first = refresh.seconds
    refresh.every = refresh.interval = 0.0  # the interval has passed: the next step writes it
    refresh.on_step_end(3, [])
    assert refresh.writes == 2 and not refresh.pending and (exp / "results.csv").is_file()
    # with no floor, the interval is 50x the last rewrite's duration: rewrites stay <= 2% of the driver's time
    assert refresh.interval == (refresh.seconds - first) / ReportRefresh.SHARE > 0


def test_report_refresh_logs_what_its_rewrites_cost_when_the_sweep_ends(tmp_path, caplog):
    known(tmp_path / "known")
    refresh = ReportRefresh(known_spec("known"), Location(str(tmp_path), "known"), every=0.0)
    refresh.setup()
    refresh.on_trial_complete(1, [], None)
    refresh.interval = 0.0  # its back-off passed
    refresh.on_trial_complete(2, [], None)
    with caplog.at_level(logging.INFO, logger="tune_app.sweep.callbacks"):
        refresh.on_experiment_end([])
    line = re.fullmatch(r"report rewrites while the sweep ran: 2, ([\d.]+) s in all, ([\d.]+)% "
                        r"of the driver's ([\d.]+) s", caplog.messages[-1])
    assert line, caplog.messages
    seconds, share, wall = map(float, line.groups())
    assert seconds == round(refresh.seconds, 2) and 0 < seconds <= wall and 0 < share <= 100
