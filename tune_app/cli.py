"""``tune-app``: the command line. Thin: parse, call the layers below, map errors to exit codes.

Exit codes: 0 success; 2 bad input (a one-paragraph message, no traceback);
1 the run itself failed (e.g. every trial errored); 130 / 143 interrupted by SIGINT / SIGTERM
(to the driver or the whole job), the reports written, resumable.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RunError, SpecError, TuneAppError
from .experiment.location import Location

if TYPE_CHECKING:
    from .spec import ExperimentSpec

DESCRIPTION = "Hyperparameter search for fine-tuning PyTorch image models, on Ray Tune, from one YAML file."


def echo(text: str = "") -> None:
    print(text, flush=True)


# ------------------------------------------------------------- the sweeps
def cmd_search(args: argparse.Namespace) -> int:
    from .spec import load_spec
    from .sweep.lifecycle import Experiment, check_ready

    spec = load_spec(args.file, args.set, name=args.name, storage=args.storage, address=args.address,
                     dashboard=args.dashboard)
    check_ready(spec)
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
    experiment = Experiment.create(spec, echo=echo, verbose=args.verbose)
    if warm:
        experiment.record_origin("warm_start", warm.record())
        echo(warm.describe())
    echo(f"{spec.trial_count()} trials of {spec.model.name} on {spec.data.dataset}: search {spec.tune.search_alg}, "
         f"trial scheduler {spec.tune.trial_scheduler}, {spec.train.epochs} epochs at most, "
         f"objective {spec.mode} {spec.metric}")
    echo(f"experiment: {experiment.location}")
    echo(_disk_line(spec))
    return experiment.search(warm=warm.trials if warm else ())


def cmd_resume(args: argparse.Namespace) -> int:
    from .experiment.confirm import confirmed_experiment
    from .sweep.confirmation import verdict
    from .sweep.lifecycle import Experiment

    location = Location.open(args.dir)
    if not list(location.local.glob("experiment_state-*.json")):
        raise SpecError(f"{location}: Ray Tune saved no state before the run stopped, so there is nothing "
                        f"to resume; start it again with tune-app search")
    experiment = Experiment.open(location, echo=echo, verbose=args.verbose)
    echo(f"resuming {location}" + (" (errored trials too)" if args.retry_errored else ""))
    code = experiment.resume(retry_errored=args.retry_errored)
    confirmed = confirmed_experiment(location)  # DIR/confirm resumed: DIR's verdict follows
    return verdict(confirmed, location, echo) if confirmed is not None else code


def cmd_extend(args: argparse.Namespace) -> int:
    from .experiment.extend import plan_extension
    from .spec import load_spec
    from .sweep.lifecycle import Experiment, check_ready

    location = Location.open(args.dir)
    spec = load_spec(location.local / "spec.yaml").with_weights_resolved()
    check_ready(spec)
    plan = plan_extension(spec, location, args.trials)
    experiment = Experiment.prepare(spec, location, echo=echo, verbose=args.verbose)
    experiment.record_origin("extended", {"trials": args.trials, "study_trials_before": plan.before})
    echo(f"extending {location} by {args.trials} trials (search {spec.tune.search_alg}, its study holds "
         f"{plan.before} trials)")
    return experiment.search(spec=plan.spec, warm=plan.warm)


def cmd_compare(args: argparse.Namespace) -> int:
    from .report import comparison_text
    from .sweep.compare import compare_trial_schedulers, parse_strategies

    strategies = parse_strategies(args.schedulers, args.seeds)
    comparison, paths = compare_trial_schedulers(
        args.file, args.set, strategies, seeds=args.seeds, target=args.target, name=args.name,
        storage=args.storage, address=args.address, echo=echo, verbose=args.verbose)
    echo()
    echo(comparison_text(comparison))
    _list_paths(paths)
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from .sweep.confirmation import run_confirmation, verdict

    experiment, confirm = run_confirmation(args.dir, top=args.top, seeds=args.seeds, overrides=args.set,
                                           address=args.address, echo=echo, verbose=args.verbose)
    return verdict(experiment, confirm, echo)


# ------------------------------------------------------- one file, no Ray
def cmd_validate(args: argparse.Namespace) -> int:
    from .spec import load_spec

    spec = load_spec(args.file, args.set)
    _describe(spec, args.file, samples=args.samples)
    if not args.no_build:
        from .spec.rehearsal import rehearse
        from .sweep.lifecycle import shared_data

        spec = spec.with_weights_resolved()
        count = rehearse(spec, shared_data(spec, echo))
        echo(f"built and stepped {count} configurations on the CPU (each choice once)")
    echo(f"{args.file}: OK")
    return 0


def _describe(spec: ExperimentSpec, source: str, samples: int) -> None:
    """The trial count, what is searched, the disk bound and ``samples`` sampled configs."""
    import yaml

    space = spec.space
    echo(f"{source}: experiment {spec.name!r}, {spec.trial_count()} trials (search {spec.tune.search_alg}, "
         f"trial scheduler {spec.tune.trial_scheduler}), objective {spec.mode} {spec.metric}")
    if spec.data.dataset == "folder":
        from .training.datasets import describe_cache
        from .training.engine import data_config

        try:
            echo(describe_cache(data_config(spec.train_config())))
        except ValueError as exc:
            raise SpecError(str(exc)) from None
    echo("searched: " + (", ".join(space.parameter_names) or "nothing (every value is fixed)"))
    echo(_disk_line(spec))
    if samples <= 0:
        return
    points = space.grid()[:samples] if spec.tune.search_alg == "grid" else space.sample(samples, seed=spec.search_seed)
    for i, flat in enumerate(points, 1):
        text = yaml.safe_dump(space.nest(flat), default_flow_style=True, width=1000, sort_keys=False).strip()
        echo(f"  sample {i}: {text}")


def _disk_line(spec: ExperimentSpec) -> str:
    from .sweep.disk import disk_budget

    return f"disk: {disk_budget(spec).describe()}"


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    import yaml

    from .spec import load_spec
    from .sweep.lifecycle import shared_data
    from .training import DivergedError, TrainingRun

    spec = load_spec(args.file, args.set).with_weights_resolved()
    config = spec.train_config()
    knobs = spec.space.nest(spec.space.defaults())
    echo(f"training {config.model} on {config.data.dataset} for {config.epochs} epochs with "
         + (yaml.safe_dump(knobs, default_flow_style=True, width=1000, sort_keys=False).strip() if knobs
            else "the built-in defaults"))
    start = time.monotonic()
    try:
        run = TrainingRun(config, data=shared_data(spec, echo))
    except ValueError as exc:  # a combination the spec cannot see (e.g. an LR schedule longer than the budget)
        raise SpecError(f"cannot build this run: {exc}") from None
    echo(f"device: {run.device}, trainable parameters: {run.trainable_params:,}")
    last: dict[str, float] = {}
    try:
        for last in run.epochs():
            shown = "  ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith(("train_loss", "val_")))
            echo(f"epoch {last['epoch']:>3}/{config.epochs}  {shown}  lr {last['lr']:.3g}  "
                 f"{last['train_throughput']:.0f} img/s  ({time.monotonic() - start:.0f}s)")
    except DivergedError as exc:
        raise RunError(f"the run diverged: {exc}; lower the learning rate or try amp off") from None
    except torch.OutOfMemoryError:
        raise RunError(f"{run.oom_text()}; lower data.batch_size or data.image_size, or use amp bf16") from None
    if last:
        echo(f"final {spec.metric}: {last[spec.metric]:.4f}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .spec.catalog import catalog

    for line in catalog(args.what, args.pattern):
        echo(line)
    return 0


# ---------------------------------------------- an experiment directory
def cmd_report(args: argparse.Namespace) -> int:
    from .report import FORMATS, write_reports
    from .spec import load_spec

    location = Location.open(args.dir)
    spec = load_spec(location.local / "spec.yaml")
    try:
        _, paths = write_reports(location.local, best_config=spec.fixed_at, by=args.by, formats=args.format or FORMATS)
    except ValueError as exc:  # e.g. --by naming a parameter that was not searched
        raise SpecError(str(exc)) from None
    location.push(paths.values())
    _list_paths(paths)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .experiment.export import export_best_model

    echo(export_best_model(Location.open(args.dir), trial_id=args.trial, out=args.out).describe())
    return 0


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


def _list_paths(paths: dict[str, Path]) -> None:
    for name, path in paths.items():
        echo(f"{name + ':':13s}{path}")


# ----------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code 2, with our wording
        self.print_usage(sys.stderr)
        raise SpecError(f"{self.prog}: {message}")


EXPERIMENT_DIR = "the experiment directory, e.g. tune_results/quickstart"
SET = "override a value of the file, e.g. --set train.epochs=3 (repeatable; values are YAML)"


def build_parser() -> argparse.ArgumentParser:
    from .spec.catalog import TOPICS

    parser = _Parser(prog="tune-app", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"tune-app {__import__('tune_app').__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, func, help: str, *, file: bool = False, directory: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        if file:
            p.add_argument("file", help="the experiment YAML file")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET)
        if directory:
            p.add_argument("dir", help=EXPERIMENT_DIR)
        return p

    def verbose(p: argparse.ArgumentParser) -> None:
        p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")

    p = command("search", cmd_search, "run the hyperparameter search on Ray Tune", file=True)
    p.add_argument("--name", help="experiment name (default: the file's name:)")
    p.add_argument("--storage", help="directory for experiments (default: tune.storage, ./tune_results)")
    p.add_argument("--address", help="an existing Ray cluster to run on (auto, host:port, ray://...)")
    p.add_argument("--dashboard", nargs="?", const=True, metavar="HOST:PORT",
                   help="run the Ray dashboard of the local instance (default 127.0.0.1:8265)")
    p.add_argument("--warm-start", action="append", default=[], metavar="DIR",
                   help="start from the finished trials of an earlier experiment (repeatable); trials that do "
                        "not fit this search space are dropped")
    p.add_argument("--dry-run", action="store_true", help="validate and show samples, start nothing")
    verbose(p)

    p = command("resume", cmd_resume, "finish an interrupted experiment", directory=True)
    p.add_argument("--retry-errored", action="store_true", help="also continue errored trials from their checkpoints")
    verbose(p)

    p = command("extend", cmd_extend, "run more trials in a finished experiment, continuing its study",
                directory=True)
    p.add_argument("--trials", type=int, required=True, help="how many more trials")
    verbose(p)

    p = command("validate", cmd_validate, "check a file, show the trial count and sampled configs", file=True)
    p.add_argument("--samples", type=int, default=3, help="sampled configs to show (default 3)")
    p.add_argument("--no-build", action="store_true", help="skip building each choice once on the CPU")

    command("train", cmd_train, "train one configuration in this process, without Ray", file=True)

    p = command("report", cmd_report, "(re)write the reports of an experiment directory", directory=True)
    p.add_argument("--by", nargs="+", default=[], metavar="PARAM",
                   help="parameters to cross in a two-way table (e.g. --by loss scheduler); the first colours plots")
    p.add_argument("--format", nargs="+", choices=("csv", "md", "html"), help="which files (default: all)")

    p = command("compare", cmd_compare, "run the same space and budget under several trial schedulers", file=True)
    p.add_argument("--schedulers", required=True, help="comma-separated, e.g. fifo,asha,hyperband,pbt")
    p.add_argument("--seeds", type=int, default=1, help="repeats of each strategy with different seeds (default 1)")
    p.add_argument("--target", type=float, help="metric value to reach (default: 98%% of the best reached)")
    p.add_argument("--name", help="comparison name (default: the file's name:); runs go to <storage>/<name>-compare")
    p.add_argument("--storage", help="directory for experiments (default: tune.storage)")
    p.add_argument("--address", help="an existing Ray cluster to run on")
    verbose(p)

    p = command("confirm", cmd_confirm, "re-run the top configs of a finished experiment over new seeds; the best "
                                        "mean becomes its best_config.yaml", directory=True)
    p.add_argument("--top", type=int, default=3, help="how many of the best configs (default 3)")
    p.add_argument("--seeds", type=int, default=3, help="new seeds per config (default 3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the experiment's spec for the runs, e.g. --set train.epochs=10 or "
                        "--set train.deterministic=true (repeatable)")
    p.add_argument("--address", help="an existing Ray cluster to run on")
    verbose(p)

    p = command("export", cmd_export, "write an experiment's best model: best_model/ with model.safetensors and "
                                      "config.json", directory=True)
    p.add_argument("--trial", help="export this trial instead of the best one (its best kept epoch)")
    p.add_argument("--out", help="the directory to write (default: DIR/best_model)")

    p = command("predict", cmd_predict, "classify or segment images with an exported model")
    p.add_argument("model_dir", help="an exported model's directory, e.g. tune_results/quickstart/best_model")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of them (recursive)")
    p.add_argument("--top", type=int, default=5, help="classes per image, most likely first (default 5)")
    p.add_argument("--out", help="write the table as CSV here (default: print it); segmentation also writes "
                                 "its masks into <out stem>_masks/ next to it")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--device", default="auto", help="auto (the first GPU if any), cpu, cuda or cuda:N")

    p = command("list", cmd_list, "names the YAML file accepts")
    p.add_argument("what", choices=TOPICS, help="what to list")
    p.add_argument("pattern", nargs="?", help="for models: source/glob, e.g. timm/resnet*")
    return parser


def run() -> None:
    """The ``tune-app`` command: :func:`main` (a sweep's under :mod:`.supervisor`), then an exit that skips
    tearing the interpreter down.

    With torch, Ray and pandas loaded, Python's own teardown (freeing every module) took
    2.7 s after the last line of a sweep; by then every file is written and Ray is shut
    down. The exit handlers (``atexit``: logging, trackers) still run first.
    """
    from .supervision import take_channel
    from .supervisor import needs_supervisor, supervise

    argv = sys.argv[1:]
    code = main() if take_channel() or not needs_supervisor(argv) else supervise(argv)
    atexit._run_exitfuncs()  # what the interpreter runs at exit, before the teardown skipped here
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
    run()
