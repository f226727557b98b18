"""``tune-app compare FILE --schedulers fifo,asha,...``: one space and budget, run under each trial scheduler.

Every strategy (and seed) is an experiment of its own under ``<storage>/<name>-compare/``,
named ``<strategy>-seed<k>``, with the same space, budget and data; the comparison
(:func:`~tune_app.report.write_comparison`) reads them all when they have run. Every name
is checked before the first one runs, and one Ray session serves them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..experiment.location import Location
from .lifecycle import Echo, Experiment, check_ready, new_location, start_ray_building_data

if TYPE_CHECKING:
    from ..report.compare import Comparison
    from ..spec import ExperimentSpec


def parse_strategies(text: str, seeds: int) -> list[str]:
    """``fifo,asha`` -> the trial schedulers to compare; bad names or seeds are bad input.

    Example:
        >>> parse_strategies(" fifo, asha ", seeds=2)
        ['fifo', 'asha']
    """
    from .strategies import TRIAL_SCHEDULERS

    strategies = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in TRIAL_SCHEDULERS]
    if unknown or not strategies:
        raise SpecError(f"--schedulers: unknown {unknown}; choose from {', '.join(TRIAL_SCHEDULERS)}")
    if seeds < 1:
        raise SpecError(f"--seeds must be >= 1, got {seeds}")
    return strategies


def compare_trial_schedulers(file: str, overrides: Sequence[str], strategies: Sequence[str], *, seeds: int,
                             target: float | None, name: str | None, storage: str | None, address: str | None,
                             echo: Echo = print, verbose: bool = False) -> tuple[Comparison, dict[str, Path]]:
    """Run the space of ``file`` under each trial scheduler and seed; the comparison and the files it wrote."""
    from ..report import write_comparison
    from ..spec import load_spec

    base = load_spec(file, overrides, name=name, storage=storage, address=address)
    check_ready(base)
    # Every strategy gets the same space, budget and seeds; PBT draws its population at
    # random, so with pbt in the list every strategy searches at random, for a fair race.
    fair = ["tune.search_alg=random"] if "pbt" in strategies else []
    out = Location.create(base.tune.storage, f"{base.name}-compare")
    planned: list[tuple[str, ExperimentSpec, Location]] = []
    for strategy in strategies:
        for seed in range(seeds):
            spec = load_spec(file, [*overrides, *fair, f"tune.scheduler={strategy}",
                                    f"tune.seed={base.search_seed + seed}", f"train.seed={base.train.seed + seed}"],
                             name=f"{strategy}-seed{seed}", storage=out.remote or str(out.local), address=address)
            planned.append((strategy, spec, new_location(spec)))
    base = base.with_weights_resolved()
    runs: dict[str, list[Path]] = {}
    ray, data = start_ray_building_data(base, echo=echo, verbose=verbose)  # one Ray for every run
    try:
        echo(f"comparing {', '.join(strategies)} on {base.trial_count()} trials x {seeds} seed(s) each: {out}")
        for strategy, spec, location in planned:
            experiment = Experiment(spec.with_weights(base.model.pretrained), location, data, echo=echo,
                                    verbose=verbose)
            experiment.start()
            echo(f"--- {location.name}")
            experiment.search(quiet=True)
            runs.setdefault(strategy, []).append(location.local)
    finally:
        ray.stop()
    comparison, paths = write_comparison(out.local, runs, target=target)
    out.push(paths.values())
    return comparison, paths
