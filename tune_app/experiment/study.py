"""The Optuna study behind a sweep, in a database: where it lives, what it is called, how to open it.

The driver alone writes it: ``<experiment>/optuna.db`` (SQLite) by default, or the
shared database of ``tune.study_storage`` (``postgresql://...``, ``mysql://...``). The
study is named after the experiment. No Ray here: the searcher that fills the study
(``searchers.StudySearch``) is the runner's.

Example:
    >>> study_storage(None, Path("/runs/quickstart"))
    'sqlite:////runs/quickstart/optuna.db'
    >>> study_storage("postgresql://db.lan/tune", Path("/runs/quickstart"))
    'postgresql://db.lan/tune'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DB_FILE = "optuna.db"
# User attributes tune-app sets on each Optuna trial.
RAY_TRIAL_ID = "ray_trial_id"
VALUE = "value"  # a stopped (pruned) trial's best value: Optuna keeps none for it
EPOCHS = "epochs"
WARM_START_FROM = "warm_start_from"  # on trials copied from an earlier experiment


def study_storage(setting: str | None, experiment_dir: Path) -> str:
    """The study's storage URL: ``tune.study_storage``, else the experiment's own SQLite file."""
    return setting or f"sqlite:///{Path(experiment_dir) / DB_FILE}"


def rdb_storage(url: str) -> Any:
    """An Optuna RDB storage for ``url``; SQLite waits for a reader (optuna-dashboard) instead of failing."""
    import optuna

    kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def study_trial_count(url: str, name: str) -> int | None:
    """How many trials the study ``name`` at ``url`` holds; None when there is no such study."""
    import optuna

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None  # do not create an empty database just to look
    try:
        summaries = optuna.get_all_study_summaries(storage=rdb_storage(url), include_best_trial=False)
    except Exception as exc:  # a database that cannot be reached: the setting's problem
        from ..errors import SpecError

        raise SpecError([("tune.study_storage", f"cannot open {url}: {type(exc).__name__}: {exc}")]) from None
    return next((s.n_trials for s in summaries if s.study_name == name), None)


def check_new_study(url: str, name: str) -> None:
    """A new experiment's study must not exist yet (a shared database may hold one of that name)."""
    count = study_trial_count(url, name)
    if count is not None:
        from ..errors import SpecError

        raise SpecError([("name", f"the study {name!r} already exists in {url} ({count} trials); choose another "
                                  f"name with --name, or continue that experiment with tune-app extend")])
