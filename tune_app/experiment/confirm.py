"""``tune-app confirm DIR --top K --seeds S``: the sweep's K best configs, each re-run under S new seeds.

A sweep's winner is one run of one seed, often stopped or favoured by luck. Confirmation
re-runs the top configs at the full budget without early stopping (FIFO), every config
under the same new seeds (``train.seed + 1`` ... ``train.seed + S``: none is the sweep's),
as one Ray sweep into ``DIR/confirm/``. Its runs are ordinary trials whose config carries
the seed and the trial they repeat (``trial_result.RUN_SEED`` / ``ORIGIN_TRIAL``), so
``tune-app resume DIR/confirm`` and every report work on it unchanged. When it ends, the
config with the best mean over its seeds becomes ``DIR/best_config.yaml`` and
``DIR/best_model/`` (from its best run), and ``DIR/report.md`` says so.

Example:
    >>> plan = plan_confirmation("tune_results/quickstart", top=2, seeds=2)  # doctest: +SKIP
    >>> plan["seeds"], [o["trial_id"] for o in plan["origins"]]  # doctest: +SKIP
    ([1, 2], ['3f2a0005', '3f2a0001'])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ..report.confirmation import CONFIRM_DIR, PLAN_FILE, Confirmation, read_plan
from ..report.results import load_results, read_spec, read_trials
from ..report.tables import leaderboard
from ..report.writer import write_confirmation
from ..trial_result import ORIGIN_TRIAL, RUN_SEED
from .location import Location

if TYPE_CHECKING:
    from ..spec import ExperimentSpec


def plan_confirmation(experiment_dir: str | Path, top: int, seeds: int) -> dict[str, Any]:
    """Which trials to repeat (the ``top`` best, best first) and under which ``seeds`` new seeds.

    Raises:
        SpecError: ``top`` or ``seeds`` below 1, or no trial reported the metric.
    """
    if top < 1 or seeds < 1:
        raise SpecError([("--top" if top < 1 else "--seeds", f"must be >= 1, got {top if top < 1 else seeds}")])
    experiment_dir = Path(experiment_dir)
    train = read_spec(experiment_dir).get("train") or {}
    metric, mode = train.get("metric", "val_acc"), train.get("mode", "max")
    board = leaderboard(load_results(experiment_dir, metric, mode), metric, mode, top=top)
    if board.empty:
        raise SpecError(f"{experiment_dir}: no trial reported {metric}, so there is nothing to confirm")
    configs = {t.trial_id: t.config for t in read_trials(experiment_dir)}
    sweep_seed = int(train.get("seed") or 0)
    return {
        "experiment": experiment_dir.name, "metric": metric, "mode": mode, "top": top,
        "seeds": [sweep_seed + 1 + i for i in range(seeds)],
        "origins": [{"trial_id": str(row.trial_id), "sweep_rank": int(rank), "sweep_value": float(row[metric]),
                     "config": configs[str(row.trial_id)]} for rank, row in board.iterrows()],
    }


def confirm_points(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat config per run, seed by seed (a confirmation cut short still compares every config)."""
    return [{**origin["config"], RUN_SEED: seed, ORIGIN_TRIAL: origin["trial_id"]}
            for seed in plan["seeds"] for origin in plan["origins"]]


def confirm_spec(experiment: Location, overrides: Sequence[str], runs: int, address: str | None) -> ExperimentSpec:
    """The sweep's spec, ``--set`` overrides applied, made a confirmation: FIFO, ``runs`` trials, into DIR/confirm."""
    from ..spec.loading import read_yaml, validate_spec
    from ..spec.overrides import apply_override

    source = str(experiment.local / "spec.yaml")
    raw = read_yaml(source)
    for item in overrides:
        apply_override(raw, item)
    tune = raw.setdefault("tune", {})
    # No early stopping, and the configs are given: the search algorithm proposes nothing.
    tune.update(scheduler="fifo", scheduler_options={}, search_alg="random", search_alg_options={},
                points_to_evaluate=[], num_samples=runs, time_budget_s=None,
                storage=experiment.remote or str(experiment.local))
    if address is not None:
        tune["address"] = address
    raw["name"] = CONFIRM_DIR
    return validate_spec(raw, source)


def existing_plan(confirm: Location, top: int, seeds: int) -> dict[str, Any] | None:
    """The plan of a confirmation already started in DIR/confirm (to resume), or None.

    Raises:
        SpecError: it was started with another ``--top`` or ``--seeds``.
    """
    plan = read_plan(confirm.local)
    if plan is None:
        return None
    if (plan["top"], len(plan["seeds"])) != (top, seeds):
        raise SpecError([("--top" if plan["top"] != top else "--seeds",
                          f"{confirm} already holds a confirmation of the top {plan['top']} over "
                          f"{len(plan['seeds'])} seeds; rerun with --top {plan['top']} --seeds {len(plan['seeds'])} "
                          f"to resume it, or remove that directory to start another")])
    return plan


def write_plan(confirm: Location, plan: dict[str, Any], epochs: int) -> None:
    confirm.write_text(PLAN_FILE, json.dumps({**plan, "epochs": epochs}, indent=2))


def confirmed_experiment(location: Location) -> Location | None:
    """The experiment whose confirmation ``location`` is (DIR for DIR/confirm), or None."""
    if location.name != CONFIRM_DIR or read_plan(location.local) is None:
        return None
    return Location.open(location.storage)


def finish_confirmation(experiment: Location, confirm: Location) -> tuple[Confirmation, dict[str, Path], str]:
    """Write confirm.csv and confirm.md, then the experiment's reports and best model from the confirmed winner.

    Returns the confirmation, the paths written and a line on the exported model.
    """
    from ..report import write_reports
    from ..spec import load_spec
    from .export import export_best_model

    confirm.pull()
    confirmation, paths = write_confirmation(confirm.local)
    confirm.push(paths.values())
    experiment.pull()  # a remote experiment's mirror gets confirm/ too
    spec = load_spec(experiment.local / "spec.yaml")
    _, written = write_reports(experiment.local, best_config=spec.fixed_at)
    experiment.push(written.values())
    paths.update({f"experiment {k}": v for k, v in written.items() if k in ("report", "best_config")})
    exported = "no best_model/: no confirmation run reported the metric"
    if confirmation.winner is not None:
        run = _best_run(confirm, confirmation)
        try:
            model = export_best_model(confirm, trial_id=run, out=experiment.local / "best_model")
            experiment.push(p for p in model.path.iterdir() if p.is_file())
            exported = model.describe()
        except SpecError as exc:
            exported = f"no best_model/ from the confirmed winner: {exc}"
    return confirmation, paths, exported


def _best_run(confirm: Location, c: Confirmation) -> str:
    """The winner's run with the best metric: its weights become the experiment's best model."""
    runs = load_results(confirm.local, c.metric, c.mode)
    mine = runs[(runs[ORIGIN_TRIAL] == c.winner) & runs[c.metric].notna()]
    return str(mine.sort_values(c.metric, ascending=c.mode == "min", kind="stable")["trial_id"].iloc[0])
