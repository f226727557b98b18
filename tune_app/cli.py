"""``tune-app``: the command line. Thin: parse, call the layers below, map errors to exit codes.

Exit codes: 0 success; 2 bad input (a one-paragraph message, no traceback);
1 the run itself failed (e.g. every trial errored); 130 / 143 interrupted by SIGINT / SIGTERM
(to the driver or the whole job), the reports written, resumable.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import RunError, SpecError, TuneAppError
from .experiment.location import Location

DESCRIPTION = "Hyperparameter search for fine-tuning PyTorch image models, on Ray Tune, from one YAML file."


def echo(text: str = "") -> None:
    print(text, flush=True)


# ----------------------------------------------------------------- search
def cmd_search(args: argparse.Namespace) -> int:
    from .spec import load_spec

    spec = load_spec(args.file, args.set, name=args.name, storage=args.storage, address=args.address,
                     dashboard=args.dashboard)
    _check_loggers(spec)
    warm = None
    if args.warm_start:
        from .experiment.warm_start import warm_start_for

        warm = warm_start_for(spec, args.warm_start)
    if args.dry_run:
        import yaml

        echo("resolved spec:")
        echo(yaml.safe_dump(spec.to_dict(), sort_keys=False).rstrip())
        _describe(spec, args.file, samples=3)
        if warm:
            echo(warm.describe())
        echo("dry run: nothing started")
        return 0
    location = Location.create(spec.tune.storage, spec.name)
    from .sweep.runner import run_sweep
    from .experiment.study import check_new_study, study_storage

    check_new_study(study_storage(spec.tune.study_storage, location.local), spec.name)
    spec = _resolve_weights(spec)
    data = _shared_data(spec)
    _start_experiment(spec, location, data)
    if warm:
        from .experiment.origin import ORIGIN_FILE, add_origin

        add_origin(location.local, "warm_start", warm.record())
        location.push([location.local / ORIGIN_FILE])
        echo(warm.describe())
    echo(f"{spec.trial_count()} trials of {spec.model.name} on {spec.data.dataset}: search {spec.tune.search_alg}, "
         f"trial scheduler {spec.tune.trial_scheduler}, {spec.train.epochs} epochs at most, "
         f"objective {spec.mode} {spec.metric}")
    echo(f"experiment: {location}")
    echo(_budget_line(spec))
    return _run_and_report(spec, location, lambda started: run_sweep(
        spec, location, data=data, echo=echo, verbose=args.verbose, warm=warm.trials if warm else (), started=started))


def _check_loggers(spec: Any) -> None:
    """Each tracker of ``tune.loggers`` has its package, before anything starts."""
    from .spec.loggers import missing_packages

    problems = missing_packages(spec.tune.loggers)
    if problems:
        raise SpecError(problems)


def _resolve_weights(spec: Any) -> Any:
    """``pretrained: true`` -> the cached weights file, found (or fetched) once here, never by each trial."""
    from .training.models import PretrainedWeightsError, resolve_pretrained

    try:
        resolved = resolve_pretrained(spec.model.name, spec.model.pretrained, encoder=spec.model.encoder)
    except PretrainedWeightsError as exc:
        raise SpecError([("model.pretrained", str(exc))]) from None
    return spec.with_weights(str(resolved) if resolved else False)


def _shared_data(spec: Any) -> Any:
    """The datasets, built once in the driver and shared with every trial through Ray.

    In-memory datasets travel whole; a folder's travels as its file list, and each node
    maps its own image cache (built here first for this node, so a bad image stops the
    sweep before any training).
    """
    from .training.engine import build_data_for

    try:
        data = build_data_for(spec.train_config())
    except ValueError as exc:  # a folder that cannot be read as a dataset: the data section's problem
        raise SpecError(str(exc)) from None
    for note in data.notes:
        echo(note)
    return data


def _start_experiment(spec: Any, location: Location, data: Any) -> None:
    """Check the storage can hold the sweep, then write the resolved spec, the parameters' distributions
    and what the data is (how it was read, its classes and validation preprocessing, for the exported model)."""
    import yaml

    from .experiment.export import MODEL_DATA_FILE, data_summary

    _prepare_storage(spec, location)
    location.write_text("spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    # The searched parameters' distributions, for reports that never import the spec layer.
    location.write_text("parameters.json", json.dumps(spec.space.describe(), indent=2))
    location.write_text(MODEL_DATA_FILE, json.dumps(data_summary(spec.train_config(), data), indent=2))


def _run_and_report(spec: Any, location: Location, sweep: Any, quiet: bool = False) -> int:
    """Run ``sweep(started)`` and write the reports, whatever happened (a signal to the whole job included).

    ``started`` re-arms the signal handling once Ray runs (see :mod:`.interrupts`).
    """
    import threading

    from .sweep.interrupts import interrupts
    from .report import write_reports

    lock = threading.Lock()  # the signal's thread and the main thread may both be writing

    def reports() -> tuple[Any, dict[str, Path]]:
        with lock:
            location.pull()
            results, paths = write_reports(location.local, best_config=spec.fixed_at)
            location.push([*paths.values(), *location.driver_files()])
            return results, paths

    staging: list[Path | None] = [None]

    def started(root: Path | None) -> None:  # Ray runs: handle the signals again, and know where it stages files
        staging[0] = root
        watcher.arm()

    def interrupted(signal_name: str) -> None:
        echo(f"\n{signal_name}: writing the reports from what is on disk (a second signal exits at once)")
        # What the driver had not yet copied to the experiment (Ray does with each save of its state, every
        # few seconds on a large sweep): for the reports, and for resume.
        from .sweep.runner import driver_staging

        local_copy = driver_staging(staging[0], location)
        if local_copy is not None:
            location.push_tree(local_copy)
            echo(f"{'uploaded' if location.remote else 'copied'} the driver's latest results and state to {location}")
        _, paths = reports()
        echo(f"reports: {paths['report']}")
        echo(f"interrupted; finish the sweep with: tune-app resume {location}")

    start = time.monotonic()
    with interrupts(interrupted) as watcher:
        try:
            sweep(started)
        finally:
            # Whatever happened, what was computed so far reaches the reports.
            watcher.hold_main = False  # a signal from here on must not stop this thread holding the lock
            results, paths = reports()
    exported = _export_quietly(location)
    if not quiet:
        _summarize(location, paths, time.monotonic() - start)
        echo(exported)
        _disk_summary(spec, location)
    full = _disk_full_advice(spec, location, results)
    if full:
        echo(full)
    if not ((results["status"] == "TERMINATED") & (results["epochs"] > 0)).any():
        raise RunError(f"no trial finished successfully; {full or 'see ' + str(paths['report'])}")
    return 0


def _disk_full_advice(spec: Any, location: Location, results: Any) -> str | None:
    """What to free when trials failed for a full disk (their error says so), and how to continue them."""
    import shutil

    from .sweep.disk import MB, disk_budget
    from .trial_result import is_disk_full

    full = results[results["error"].map(is_disk_full)]
    if full.empty:
        return None
    free = "" if location.remote else f", {shutil.disk_usage(location.local).free / MB:.0f} MB are free now"
    return (f"disk full: {len(full)} trial(s) could not save a checkpoint ({', '.join(map(str, full['trial_id']))}). "
            f"Free space at {location} (this sweep's checkpoints need up to "
            f"{math.ceil(disk_budget(spec).checkpoints / MB)} MB{free}), then continue them with: "
            f"tune-app resume {location} --retry-errored")


def _export_quietly(location: Location) -> str:
    """Write best_model/ after a sweep; what happened, in one line (a sweep never fails for it)."""
    from .experiment.export import export_best_model

    try:
        return export_best_model(location).describe()
    except SpecError as exc:
        return f"no best_model/: {exc}"
    except Exception as exc:  # a damaged checkpoint, a full disk: the sweep's results stand; export can be rerun
        return f"no best_model/: {type(exc).__name__}: {exc} (retry with tune-app export {location})"


def _budget_line(spec: Any) -> str:
    from .sweep.disk import disk_budget

    return f"disk: {disk_budget(spec).describe()}"


def _disk_summary(spec: Any, location: Location) -> None:
    from .sweep.disk import MB, disk_budget, used_bytes

    if location.remote:
        return
    checkpoints, total = used_bytes(location.local)
    echo(f"disk: {total / MB:.0f} MB used, {checkpoints / MB:.0f} MB of it checkpoints and best_model/ "
         f"(the budget: at most {math.ceil(disk_budget(spec).checkpoints / MB)} MB)")


# ----------------------------------------------------------------- resume
def cmd_resume(args: argparse.Namespace) -> int:
    from .sweep.runner import resume_sweep
    from .spec import load_spec

    location = Location.open(args.dir)
    if not list(location.local.glob("experiment_state-*.json")):
        raise SpecError(f"{location}: Ray Tune saved no state before the run stopped, so there is nothing "
                        f"to resume; start it again with tune-app search")
    spec = load_spec(location.local / "spec.yaml")
    _check_loggers(spec)
    data = _shared_data(spec)
    echo(f"resuming {location}" + (" (errored trials too)" if args.retry_errored else ""))
    code = _run_and_report(spec, location, lambda started: resume_sweep(
        spec, location, data=data, retry_errored=args.retry_errored, verbose=args.verbose, started=started))
    from .experiment.confirm import confirmed_experiment

    experiment = confirmed_experiment(location)  # DIR/confirm resumed: DIR's verdict follows
    return _confirmed(experiment, location) if experiment is not None else code


# ----------------------------------------------------------------- extend
def cmd_extend(args: argparse.Namespace) -> int:
    from .experiment.extend import plan_extension
    from .experiment.origin import ORIGIN_FILE, add_origin
    from .sweep.runner import run_sweep
    from .spec import load_spec

    location = Location.open(args.dir)
    spec = _resolve_weights(load_spec(location.local / "spec.yaml"))
    _check_loggers(spec)
    plan = plan_extension(spec, location, args.trials)
    data = _shared_data(spec)
    add_origin(location.local, "extended", {"trials": args.trials, "study_trials_before": plan.before})
    location.push([location.local / ORIGIN_FILE])
    echo(f"extending {location} by {args.trials} trials (search {spec.tune.search_alg}, its study holds "
         f"{plan.before} trials)")
    return _run_and_report(spec, location, lambda started: run_sweep(plan.spec, location, data=data, echo=echo,
                                                                      verbose=args.verbose, warm=plan.warm,
                                                                      started=started))


def _prepare_storage(spec: Any, location: Location) -> None:
    """Create the experiment directory, or fail now, before any training, if it cannot hold the sweep.

    For a remote experiment this checks its local mirror; the remote store's own limits
    are its provider's.
    """
    import shutil

    directory = location.local
    try:
        directory.mkdir(parents=True)
        probe = directory / ".write-test"
        probe.write_bytes(b"\0" * 65536)
        probe.unlink()
    except OSError as exc:
        raise SpecError([("tune.storage", f"cannot write the experiment directory {directory}: "
                                          f"{exc.strerror or exc}")]) from None
    from .sweep.disk import LOGS_BYTES, MB, disk_budget

    budget = disk_budget(spec)
    need = (0 if location.remote else budget.checkpoints) + LOGS_BYTES
    free = shutil.disk_usage(directory).free
    if free < need:
        directory.rmdir()
        raise SpecError([("tune.storage", f"only {free / MB:.0f} MB free at {directory}; this sweep needs up to "
                                          f"{need / MB:.0f} MB ({budget.describe()}; plus {LOGS_BYTES / MB:.0f} MB "
                                          f"for logs and reports). Free space, use --storage elsewhere, or lower "
                                          f"tune.max_concurrent / tune.keep_best_trials / tune.keep_checkpoints")])


def _summarize(location: Location, paths: dict[str, Path], seconds: float, by: Sequence[str] = ()) -> None:
    from .report import summary_text

    echo()
    echo(f"finished in {seconds:.0f}s: {location}")
    if location.remote:
        echo(f"(reports also in the local mirror {location.local})")
    echo(summary_text(location.local, paths, by=tuple(by)))


# --------------------------------------------------------------- validate
def cmd_validate(args: argparse.Namespace) -> int:
    from .spec import load_spec

    spec = load_spec(args.file, args.set)
    _describe(spec, args.file, samples=args.samples)
    if not args.no_build:
        _build_each_choice(spec)
    echo(f"{args.file}: OK")
    return 0


def _describe(spec: Any, source: str, samples: int) -> None:
    import yaml

    space = spec.space
    echo(f"{source}: experiment {spec.name!r}, {spec.trial_count()} trials "
         f"(search {spec.tune.search_alg}, trial scheduler {spec.tune.trial_scheduler}), objective {spec.mode} {spec.metric}")
    if spec.data.dataset == "folder":
        from .training.datasets import describe_cache
        from .training.engine import data_config

        try:
            echo(describe_cache(data_config(spec.train_config())))
        except ValueError as exc:
            raise SpecError(str(exc)) from None
    echo("searched: " + (", ".join(space.parameter_names) or "nothing (every value is fixed)"))
    echo(_budget_line(spec))
    if samples <= 0:
        return
    points = space.grid()[:samples] if spec.tune.search_alg == "grid" else space.sample(samples, seed=spec.search_seed)
    for i, flat in enumerate(points, 1):
        text = yaml.safe_dump(space.nest(flat), default_flow_style=True, width=1000, sort_keys=False).strip()
        echo(f"  sample {i}: {text}")


def _build_each_choice(spec: Any) -> None:
    """Build model, loss, optimizer and schedule for every option of every choice; take one step each."""
    from .training import TrainingRun

    import dataclasses

    spec = _resolve_weights(spec)
    data = _shared_data(spec)
    variants = spec.space.variants()
    for flat in variants:
        config = dataclasses.replace(spec.train_config(flat), device="cpu")
        try:
            run = TrainingRun(config, data=data)
            run.train_one_epoch(max_steps=1)
            run.evaluate(max_steps=1)
        except Exception as exc:  # a real problem with this combination: name it
            raise SpecError(f"the configuration {spec.space.nest(flat)} fails to build or train one step: "
                            f"{type(exc).__name__}: {exc}") from None
    echo(f"built and stepped {len(variants)} configurations on the CPU (each choice once)")


# ----------------------------------------------------------------- report
def cmd_report(args: argparse.Namespace) -> int:
    from .report import FORMATS, write_reports
    from .spec import load_spec

    location = Location.open(args.dir)
    spec = load_spec(location.local / "spec.yaml")
    formats = args.format or FORMATS
    try:
        _, paths = write_reports(location.local, best_config=spec.fixed_at, by=args.by, formats=formats)
    except ValueError as exc:  # e.g. --by naming a parameter that was not searched
        raise SpecError(str(exc)) from None
    location.push(paths.values())
    for name, path in paths.items():
        echo(f"{name + ':':13s}{path}")
    return 0


# ---------------------------------------------------------------- compare
def cmd_compare(args: argparse.Namespace) -> int:
    from .report import comparison_text, write_comparison
    from .sweep.cluster import ray_session
    from .sweep.runner import run_sweep
    from .sweep.strategies import TRIAL_SCHEDULERS
    from .spec import load_spec
    from .experiment.study import check_new_study, study_storage

    strategies = [s.strip() for s in args.schedulers.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in TRIAL_SCHEDULERS]
    if unknown or not strategies:
        raise SpecError(f"--schedulers: unknown {unknown}; choose from {', '.join(TRIAL_SCHEDULERS)}")
    if args.seeds < 1:
        raise SpecError(f"--seeds must be >= 1, got {args.seeds}")
    base = load_spec(args.file, args.set, name=args.name, storage=args.storage, address=args.address)
    # Every strategy gets the same space, budget and seeds; PBT draws its population at
    # random, so with pbt in the list every strategy searches at random, for a fair race.
    overrides = ["tune.search_alg=random"] if "pbt" in strategies else []
    out = Location.create(base.tune.storage, f"{base.name}-compare")
    runs: dict[str, list[Path]] = {}
    planned = []
    for strategy in strategies:
        for seed in range(args.seeds):
            spec = load_spec(args.file, [*args.set, *overrides, f"tune.scheduler={strategy}",
                                         f"tune.seed={base.search_seed + seed}", f"train.seed={base.train.seed + seed}"],
                             name=f"{strategy}-seed{seed}", storage=out.remote or str(out.local),
                             address=args.address)
            location = Location.create(spec.tune.storage, spec.name)
            check_new_study(study_storage(spec.tune.study_storage, location.local), spec.name)
            planned.append((strategy, spec, location))
    base = _resolve_weights(base)
    data = _shared_data(base)
    echo(f"comparing {', '.join(strategies)} on {base.trial_count()} trials x {args.seeds} seed(s) each: {out}")
    with ray_session(base.tune.address, verbose=args.verbose):
        for strategy, spec, location in planned:
            spec = spec.with_weights(base.model.pretrained)
            _start_experiment(spec, location, data)
            echo(f"--- {location.name}")
            _run_and_report(spec, location, lambda started: run_sweep(spec, location, data=data, echo=echo,
                                                                      verbose=args.verbose, started=started),
                            quiet=True)
            runs.setdefault(strategy, []).append(location.local)
    comparison, paths = write_comparison(out.local, runs, target=args.target)
    out.push(paths.values())
    echo()
    echo(comparison_text(comparison))
    for name, path in paths.items():
        echo(f"{name + ':':13s}{path}")
    return 0


# ---------------------------------------------------------------- confirm
def cmd_confirm(args: argparse.Namespace) -> int:
    from .experiment.confirm import confirm_points, confirm_spec, existing_plan, plan_confirmation, write_plan
    from .report.confirmation import CONFIRM_DIR, confirmation_tables
    from .sweep.runner import resume_sweep, run_sweep
    from .spec import load_spec

    experiment = Location.open(args.dir)
    confirm = Location(experiment.remote or str(experiment.local), CONFIRM_DIR)
    plan = existing_plan(Location(str(experiment.local), CONFIRM_DIR), args.top, args.seeds)
    if plan is None:
        plan = plan_confirmation(experiment.local, args.top, args.seeds)
        points = confirm_points(plan)
        spec = confirm_spec(experiment, args.set, len(points), args.address)
        confirm = Location.create(spec.tune.storage, spec.name)
        spec = _resolve_weights(spec)
        data = _shared_data(spec)
        _start_experiment(spec, confirm, data)
        write_plan(confirm, plan, spec.train.epochs)
        echo(f"confirming the top {len(plan['origins'])} of {experiment} "
             f"({', '.join(o['trial_id'] for o in plan['origins'])}) under seeds "
             f"{', '.join(map(str, plan['seeds']))}: {len(points)} runs of {spec.train.epochs} epochs, "
             f"no early stopping -> {confirm}")
        _run_and_report(spec, confirm, lambda started: run_sweep(spec, confirm, data=data, echo=echo,
                                                                 verbose=args.verbose, points=points,
                                                                 started=started), quiet=True)
    else:
        confirm.pull()
        if args.set:
            echo(f"resuming {confirm} as it was started: --set is ignored")
        spec = load_spec(confirm.local / "spec.yaml", address=args.address)
        if not confirmation_tables(confirm.local).finished:
            echo(f"resuming the confirmation in {confirm}")
            data = _shared_data(spec)
            _run_and_report(spec, confirm, lambda started: resume_sweep(spec, confirm, data=data,
                                                                        verbose=args.verbose, started=started),
                            quiet=True)
    return _confirmed(experiment, confirm)


def _confirmed(experiment: Location, confirm: Location) -> int:
    """Write the confirmation's verdict and the experiment's reports from it; print the verdict."""
    from .experiment.confirm import finish_confirmation
    from .report.confirmation import confirmation_display
    from .report.summary import text_table

    confirmation, paths, exported = finish_confirmation(experiment, confirm)
    echo()
    echo(text_table(confirmation_display(confirmation)))
    echo(confirmation.verdict().replace("`", ""))
    echo(exported)
    for name, path in paths.items():
        echo(f"{name + ':':24s}{path}")
    return 0


# ----------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from .experiment.export import export_best_model

    location = Location.open(args.dir)
    echo(export_best_model(location, trial_id=args.trial, out=args.out).describe())
    return 0


# ---------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    from .experiment.predict import predict

    table = predict(args.model_dir, args.paths, top=args.top, out=args.out, batch_size=args.batch_size,
                    device=args.device)
    if args.out is None:
        sys.stdout.write(table.to_csv(index=False))
    else:
        echo(f"predicted {len(table)} images: {args.out}" + (f" (masks in {Path(table['mask'].iloc[0]).parent})"
                                                              if "mask" in table else ""))
    return 0


# ------------------------------------------------------------------ train
def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    import torch

    from .spec import load_spec
    from .training import DivergedError, TrainingRun

    spec = _resolve_weights(load_spec(args.file, args.set))
    config = spec.train_config()
    knobs = spec.space.nest(spec.space.defaults())
    echo(f"training {config.model} on {config.data.dataset} for {config.epochs} epochs with "
         + (yaml.safe_dump(knobs, default_flow_style=True, width=1000, sort_keys=False).strip() if knobs
            else "the built-in defaults"))
    start = time.monotonic()
    data = _shared_data(spec)
    try:
        run = TrainingRun(config, data=data)
    except ValueError as exc:  # a combination the spec cannot see (e.g. an LR schedule longer than the budget)
        raise SpecError(f"cannot build this run: {exc}") from None
    echo(f"device: {run.device}, trainable parameters: {run.trainable_params:,}")
    last: dict[str, float] = {}
    try:
        for last in run.epochs():
            echo(_epoch_line(last, config.epochs, time.monotonic() - start))
    except DivergedError as exc:
        raise RunError(f"the run diverged: {exc}; lower the learning rate or try amp off") from None
    except torch.OutOfMemoryError:
        raise RunError(f"{run.oom_text()}; lower data.batch_size or data.image_size, or use amp bf16") from None
    if last:
        echo(f"final {spec.metric}: {last[spec.metric]:.4f}")
    return 0


def _epoch_line(metrics: dict[str, float], epochs: int, seconds: float) -> str:
    shown = [f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith(("train_loss", "val_"))]
    return (f"epoch {metrics['epoch']:>3}/{epochs}  " + "  ".join(shown)
            + f"  lr {metrics['lr']:.3g}  {metrics['train_throughput']:.0f} img/s  ({seconds:.0f}s)")


# ------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from .sweep.strategies import SEARCH_ALGS, TRIAL_SCHEDULERS
    from .training import DATASETS, KNOBS, LOSSES, METRICS, LR_SCHEDULES
    from .training.config import AMP_MODES
    from .training.models import MODEL_SOURCES
    from .training.optimizers import OPTIMIZERS

    def registry(entries: dict[str, Any]) -> None:
        for name, info in entries.items():
            params = ", ".join(f"{k} ({p.describe()})" for k, p in info.params.items())
            echo(f"{name:12s} {info.help}" + (f"\n{'':12s} params: {params}" if params else ""))

    what = args.what
    registries = {"losses": LOSSES, "schedulers": LR_SCHEDULES, "optimizers": OPTIMIZERS, "search_algs": SEARCH_ALGS,
                  "trial_schedulers": TRIAL_SCHEDULERS}
    if what in registries:
        registry(registries[what])
    elif what == "models":
        pattern = args.pattern or "timm/*"
        source, _, arch = pattern.partition("/")
        if source not in MODEL_SOURCES:
            raise SpecError(f"unknown model source {source!r}; known: {', '.join(MODEL_SOURCES)}")
        import fnmatch

        names = [n for n in MODEL_SOURCES[source].list_names() if fnmatch.fnmatch(n, arch or "*")]
        for name in names:
            echo(f"{source}/{name}")
        echo(f"({len(names)} models)")
    else:
        simple = {
            "datasets": list(DATASETS),
            "amp": list(AMP_MODES),
            "metrics": [f"{task}: " + ", ".join(f"{m} ({mode})" for m, mode in metrics.items())
                        for task, metrics in METRICS.items()],
            "knobs": [f"{k}: {v.describe() if hasattr(v, 'describe') else 'one of ' + ', '.join(v)}"
                      for k, v in KNOBS.items()],
        }
        for name in simple[what]:
            echo(name)
    return 0


LIST_TOPICS = ("knobs", "losses", "schedulers", "optimizers", "models", "datasets", "search_algs",
               "trial_schedulers", "amp", "metrics")


# ----------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code 2, with our wording
        self.print_usage(sys.stderr)
        raise SpecError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tune-app", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"tune-app {__import__('tune_app').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def spec_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", help="the experiment YAML file")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a value of the file, e.g. --set train.epochs=3 (repeatable; values are YAML)")

    p = sub.add_parser("search", help="run the hyperparameter search on Ray Tune")
    spec_args(p)
    p.add_argument("--name", help="experiment name (default: the file's name:)")
    p.add_argument("--storage", help="directory for experiments (default: tune.storage, ./tune_results)")
    p.add_argument("--address", help="an existing Ray cluster to run on (auto, host:port, ray://...)")
    p.add_argument("--dashboard", nargs="?", const=True, metavar="HOST:PORT",
                   help="run the Ray dashboard of the local instance (default 127.0.0.1:8265)")
    p.add_argument("--warm-start", action="append", default=[], metavar="DIR",
                   help="start from the finished trials of an earlier experiment (repeatable); trials that do "
                        "not fit this search space are dropped")
    p.add_argument("--dry-run", action="store_true", help="validate and show samples, start nothing")
    p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("resume", help="finish an interrupted experiment")
    p.add_argument("dir", help="the experiment directory, e.g. tune_results/quickstart")
    p.add_argument("--retry-errored", action="store_true", help="also continue errored trials from their checkpoints")
    p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("extend", help="run more trials in a finished experiment, continuing its study")
    p.add_argument("dir", help="the experiment directory, e.g. tune_results/quickstart")
    p.add_argument("--trials", type=int, required=True, help="how many more trials")
    p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")
    p.set_defaults(func=cmd_extend)

    p = sub.add_parser("validate", help="check a file, show the trial count and sampled configs")
    spec_args(p)
    p.add_argument("--samples", type=int, default=3, help="sampled configs to show (default 3)")
    p.add_argument("--no-build", action="store_true", help="skip building each choice once on the CPU")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("train", help="train one configuration in this process, without Ray")
    spec_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="(re)write the reports of an experiment directory")
    p.add_argument("dir", help="the experiment directory, e.g. tune_results/quickstart")
    p.add_argument("--by", nargs="+", default=[], metavar="PARAM",
                   help="parameters to cross in a two-way table (e.g. --by loss scheduler); the first colours plots")
    p.add_argument("--format", nargs="+", choices=("csv", "md", "html"), help="which files (default: all)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="run the same space and budget under several trial schedulers")
    spec_args(p)
    p.add_argument("--schedulers", required=True, help="comma-separated, e.g. fifo,asha,hyperband,pbt")
    p.add_argument("--seeds", type=int, default=1, help="repeats of each strategy with different seeds (default 1)")
    p.add_argument("--target", type=float, help="metric value to reach (default: 98%% of the best reached)")
    p.add_argument("--name", help="comparison name (default: the file's name:); runs go to <storage>/<name>-compare")
    p.add_argument("--storage", help="directory for experiments (default: tune.storage)")
    p.add_argument("--address", help="an existing Ray cluster to run on")
    p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("confirm", help="re-run the top configs of a finished experiment over new seeds; the best "
                                       "mean becomes its best_config.yaml")
    p.add_argument("dir", help="the experiment directory, e.g. tune_results/quickstart")
    p.add_argument("--top", type=int, default=3, help="how many of the best configs (default 3)")
    p.add_argument("--seeds", type=int, default=3, help="new seeds per config (default 3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the experiment's spec for the runs, e.g. --set train.epochs=10 or "
                        "--set train.deterministic=true (repeatable)")
    p.add_argument("--address", help="an existing Ray cluster to run on")
    p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")
    p.set_defaults(func=cmd_confirm)

    p = sub.add_parser("export", help="write an experiment's best model: best_model/ with model.safetensors and "
                                      "config.json")
    p.add_argument("dir", help="the experiment directory, e.g. tune_results/quickstart")
    p.add_argument("--trial", help="export this trial instead of the best one (its best kept epoch)")
    p.add_argument("--out", help="the directory to write (default: DIR/best_model)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify or segment images with an exported model")
    p.add_argument("model_dir", help="an exported model's directory, e.g. tune_results/quickstart/best_model")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of them (recursive)")
    p.add_argument("--top", type=int, default=5, help="classes per image, most likely first (default 5)")
    p.add_argument("--out", help="write the table as CSV here (default: print it); segmentation also writes "
                                 "its masks into <out stem>_masks/ next to it")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--device", default="auto", help="auto (the first GPU if any), cpu, cuda or cuda:N")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("list", help="names the YAML file accepts")
    p.add_argument("what", choices=LIST_TOPICS, help="what to list")
    p.add_argument("pattern", nargs="?", help="for models: source/glob, e.g. timm/resnet*")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except TuneAppError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"failed: no space left on device writing {exc.filename or 'a file'}: free space there, then "
              f"rerun the command (tune-app report DIR rewrites the reports of a sweep)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
