"""``tune-app confirm DIR``'s runs: the top configs under new seeds, as one sweep into ``DIR/confirm``.

What to confirm and the verdict are :mod:`tune_app.experiment.confirm`'s; this runs it,
or resumes a confirmation already started (with the ``--top`` and ``--seeds`` it was
started with).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..experiment.location import Location
from .lifecycle import Echo, Experiment, check_ready


def run_confirmation(directory: str, *, top: int, seeds: int, overrides: Sequence[str], address: str | None,
                     echo: Echo = print, verbose: bool = False) -> tuple[Location, Location]:
    """Run (or finish) the confirmation of the experiment at ``directory``; (the experiment, its confirmation)."""
    from ..experiment.confirm import confirm_points, confirm_spec, existing_plan, plan_confirmation, write_plan
    from ..report.confirmation import CONFIRM_DIR, confirmation_tables
    from ..spec import load_spec

    experiment = Location.open(directory)
    confirm = Location(experiment.remote or str(experiment.local), CONFIRM_DIR)
    plan = existing_plan(Location(str(experiment.local), CONFIRM_DIR), top, seeds)
    if plan is None:
        plan = plan_confirmation(experiment.local, top, seeds)
        points = confirm_points(plan)
        spec = confirm_spec(experiment, overrides, len(points), address)
        check_ready(spec)
        runs = Experiment.create(spec, echo=echo, verbose=verbose, study=False)  # given points: no study
        write_plan(runs.location, plan, spec.train.epochs)
        echo(f"confirming the top {len(plan['origins'])} of {experiment} "
             f"({', '.join(o['trial_id'] for o in plan['origins'])}) under seeds "
             f"{', '.join(map(str, plan['seeds']))}: {len(points)} runs of {spec.train.epochs} epochs, "
             f"no early stopping -> {runs.location}")
        runs.search(points=points, quiet=True)
        return experiment, runs.location
    confirm.pull()
    if overrides:
        echo(f"resuming {confirm} as it was started: --set is ignored")
    spec = load_spec(confirm.local / "spec.yaml", address=address)
    check_ready(spec)
    if not confirmation_tables(confirm.local).finished:
        echo(f"resuming the confirmation in {confirm}")
        Experiment.prepare(spec, confirm, echo=echo, verbose=verbose).resume(quiet=True)
    return experiment, confirm


def verdict(experiment: Location, confirm: Location, echo: Echo = print) -> int:
    """Write the confirmation's verdict and the experiment's reports from it; print the verdict. Exit code 0."""
    from ..experiment.confirm import finish_confirmation
    from ..report.confirmation import confirmation_display
    from ..report.summary import text_table

    confirmation, paths, exported = finish_confirmation(experiment, confirm)
    echo("")
    echo(text_table(confirmation_display(confirmation)))
    echo(confirmation.verdict().replace("`", ""))
    echo(exported)
    for name, path in paths.items():
        echo(f"{name + ':':24s}{path}")
    return 0
