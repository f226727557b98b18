"""``tune-app``: the command line. Thin: parse, call the layers below, map errors to exit codes.

Exit codes: 0 success; 2 bad input (a one-paragraph message, no traceback);
1 the run itself failed (e.g. every trial errored); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import RunError, SpecError, TuneAppError

DESCRIPTION = "Hyperparameter search for fine-tuning PyTorch image models, on Ray Tune, from one YAML file."


def echo(text: str = "") -> None:
    print(text, flush=True)


# ----------------------------------------------------------------- search
def cmd_search(args: argparse.Namespace) -> int:
    from .spec import load_spec

    spec = load_spec(args.file, args.set, name=args.name, storage=args.storage, address=args.address)
    if args.dry_run:
        _describe(spec, args.file, samples=3)
        echo("dry run: nothing started")
        return 0
    experiment_dir = _new_experiment_dir(spec)

    from .report import write_reports
    from .runner import run_sweep
    from .training import DataConfig, build_data

    # Built once here; Ray shares this one copy with every trial through the object store.
    data = build_data(DataConfig(dataset=spec.data.dataset, image_size=spec.data.image_size))
    experiment_dir.mkdir(parents=True)
    _write_spec(spec, experiment_dir / "spec.yaml")
    echo(f"{spec.trial_count()} trials of {spec.model.name} on {spec.data.dataset}: search {spec.tune.search_alg}, "
         f"trial scheduler {spec.tune.scheduler}, {spec.train.epochs} epochs at most, "
         f"objective {spec.mode} {spec.metric}")
    echo(f"experiment directory: {experiment_dir}")
    start = time.monotonic()
    try:
        run_sweep(spec, experiment_dir, data=data, echo=echo, verbose=args.verbose)
    finally:
        # Whatever happened, what was computed so far reaches the reports.
        results, paths = write_reports(experiment_dir, best_config=spec.fixed_at)
    _summarize(spec, results, experiment_dir, paths, time.monotonic() - start)
    if not ((results["status"] == "TERMINATED") & (results["epochs"] > 0)).any():
        raise RunError(f"no trial finished successfully; see {paths['report']}")
    return 0


def _new_experiment_dir(spec: Any) -> Path:
    storage = spec.tune.storage
    if "://" in storage:
        raise SpecError([("tune.storage", f"only local directories are supported so far, got {storage!r}")])
    experiment_dir = Path(storage).expanduser().resolve() / spec.name
    if experiment_dir.exists():
        raise SpecError([("name", f"the experiment directory {experiment_dir} already exists; choose another "
                                  f"name with --name, or remove the directory")])
    return experiment_dir


def _write_spec(spec: Any, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))


def _summarize(spec: Any, results: Any, experiment_dir: Path, paths: dict[str, Path], seconds: float) -> None:
    import pandas as pd

    from .report import leaderboard
    from .report.markdown import markdown_table

    board = leaderboard(results, spec.metric, spec.mode, top=5)
    echo()
    echo(f"finished in {seconds:.0f}s: {len(results)} trials in {experiment_dir}")
    if board.empty:
        echo(f"no trial reported {spec.metric}")
    else:
        echo(markdown_table(board.drop(columns=["time_total_s"]), index=True))
        best = board.iloc[0]
        params = {k: best[k] for k in spec.space.parameter_names if k in best and pd.notna(best[k])}
        echo(f"best {spec.metric}: {best[spec.metric]:.4f} (trial {best['trial_id']}) with "
             + ", ".join(f"{k}={v}" for k, v in params.items()))
    for name, path in paths.items():
        echo(f"{name + ':':13s}{path}")


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
         f"(search {spec.tune.search_alg}, trial scheduler {spec.tune.scheduler}), objective {spec.mode} {spec.metric}")
    echo("searched: " + (", ".join(space.parameter_names) or "nothing (every value is fixed)"))
    if samples <= 0:
        return
    points = space.grid()[:samples] if spec.tune.search_alg == "grid" else space.sample(samples, seed=spec.search_seed)
    for i, flat in enumerate(points, 1):
        text = yaml.safe_dump(space.nest(flat), default_flow_style=True, width=1000, sort_keys=False).strip()
        echo(f"  sample {i}: {text}")


def _build_each_choice(spec: Any) -> None:
    """Build model, loss, optimizer and schedule for every option of every choice; take one step each."""
    from .training import DataConfig, TrainingRun, build_data

    data = build_data(DataConfig(dataset=spec.data.dataset, image_size=spec.data.image_size))
    variants = spec.space.variants()
    for flat in variants:
        config = spec.train_config(flat)
        config.device = "cpu"
        try:
            run = TrainingRun(config, data=data)
            run.train_one_epoch(max_steps=1)
            run.evaluate(max_steps=1)
        except Exception as exc:  # a real problem with this combination: name it
            raise SpecError(f"the configuration {spec.space.nest(flat)} fails to build or train one step: "
                            f"{type(exc).__name__}: {exc}") from None
    echo(f"built and stepped {len(variants)} configurations on the CPU (each choice once)")


# ------------------------------------------------------------------ train
def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from .spec import load_spec
    from .training import TrainingRun

    spec = load_spec(args.file, args.set)
    config = spec.train_config()
    knobs = spec.space.nest(spec.space.defaults())
    echo(f"training {config.model} on {config.dataset} for {config.epochs} epochs with "
         + (yaml.safe_dump(knobs, default_flow_style=True, width=1000, sort_keys=False).strip() if knobs else "the built-in defaults"))
    start = time.monotonic()
    run = TrainingRun(config)
    echo(f"device: {run.device}")
    last: dict[str, float] = {}
    for last in run.epochs():
        echo(f"epoch {last['epoch']:>3}/{config.epochs}  train_loss {last['train_loss']:.4f}  "
             f"val_loss {last['val_loss']:.4f}  val_acc {last['val_acc']:.4f}  val_f1 {last['val_f1']:.4f}  "
             f"lr {last['lr']:.3g}  {last['train_throughput']:.0f} img/s  ({time.monotonic() - start:.0f}s)")
    if last:
        echo(f"final {spec.metric}: {last[spec.metric]:.4f}")
    return 0


# ------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from .runner import SEARCH_ALGS, TRIAL_SCHEDULERS
    from .training import DATASETS, KNOBS, LOSSES, METRICS, SCHEDULERS
    from .training.config import AMP_MODES
    from .training.models import MODEL_SOURCES
    from .training.optimizers import OPTIMIZERS

    def registry(entries: dict[str, Any]) -> None:
        for name, info in entries.items():
            params = ", ".join(f"{k} ({p.describe()})" for k, p in info.params.items())
            echo(f"{name:12s} {info.help}" + (f"\n{'':12s} params: {params}" if params else ""))

    what = args.what
    if what == "losses":
        registry(LOSSES)
    elif what == "schedulers":
        registry(SCHEDULERS)
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
            "optimizers": list(OPTIMIZERS),
            "datasets": list(DATASETS),
            "search_algs": list(SEARCH_ALGS),
            "trial_schedulers": list(TRIAL_SCHEDULERS),
            "amp": list(AMP_MODES),
            "metrics": [f"{m} ({mode})" for task in METRICS.values() for m, mode in task.items()],
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
    p.add_argument("--dry-run", action="store_true", help="validate and show samples, start nothing")
    p.add_argument("--verbose", action="store_true", help="show Ray's own progress table and logs")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("validate", help="check a file, show the trial count and sampled configs")
    spec_args(p)
    p.add_argument("--samples", type=int, default=3, help="sampled configs to show (default 3)")
    p.add_argument("--no-build", action="store_true", help="skip building each choice once on the CPU")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("train", help="train one configuration in this process, without Ray")
    spec_args(p)
    p.set_defaults(func=cmd_train)

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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
