"""What tune-app's sweep machinery costs on top of a bare Ray Tune script.

The same N short trials (timm/test_resnet on digits at 16 px, 8 trials of 2 epochs by
default, random search over lr and weight decay, 2 at a time, 1 CPU each) run by:

end to end, each a fresh process that starts and stops its own Ray (A B, B A, ...):
- ``tune-app search spec.yaml`` (the CLI, reports included)
- a bare Ray Tune script a user would write: ``Tuner`` + ``with_parameters`` (the
  dataset through the object store) + a hand-written timm loop, random search
  (Ray's BasicVariantGenerator), ``reuse_actors=True``, same ``ray.init`` options

in process, one shared Ray instance (interleaved, the order rotating each repeat;
after an untimed warm-up sweep):
- tune-app's ``run_sweep`` (what the CLI calls; trials checkpoint every epoch, the default)
- the bare ``Tuner.fit`` with ``reuse_actors=True``
- diagnostics: ``run_sweep`` with ``tune.checkpoint_every=0`` (checkpoints only after the
  last epoch; only with ``--epochs`` > 1, since the last epoch always checkpoints)
- the bare ``Tuner.fit`` with Ray's default ``reuse_actors=False`` (after the others,
  ``--no-reuse-repeats`` times: it is several times slower)

Per method: wall time, time to the first reported result, and the per-trial overhead
``wall x concurrency / trials - t_ref``: the slot time a trial costs beyond its own
training, with ``t_ref`` the median time_total_s of the bare script's trials (a warm
trial's train + evaluate): actor start or reuse, imports, scheduling, result and
checkpoint handling, callbacks, and for the CLI also its start-up and final reports. Target: tune-app's wall time <= 1.05x
the bare script's (reuse_actors=True), end to end. The CLI runs with its model facts known (an untimed
``tune-app validate --no-build`` of the file first, as a user validates before searching).

    python benchmarks/sweep_overhead.py            # the real run (~7 min on 2 CPU cores)
    python benchmarks/sweep_overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common as C

TARGET = 1.05
MODEL, IMAGE_SIZE, BATCH_SIZE = "timm/test_resnet", 16, 64
LR_RANGE, WEIGHT_DECAYS = (1.0e-4, 1.0e-2), [0.0, 1.0e-4, 1.0e-2]
RAY_INIT = dict(address="local", include_dashboard=False, log_to_driver=False)  # what tune-app's ray_session uses


def spec_dict(num_samples: int, epochs: int, concurrency: int) -> dict[str, Any]:
    return {
        "name": "sweep-overhead",
        "task": "classification",
        "data": {"dataset": "digits", "image_size": IMAGE_SIZE, "batch_size": BATCH_SIZE},
        "model": {"name": MODEL, "pretrained": False},
        "train": {"epochs": epochs, "optimizer": "adamw", "seed": 0, "metric": "val_acc", "mode": "max"},
        "search": {"lr": {"loguniform": list(LR_RANGE)}, "weight_decay": {"choice": WEIGHT_DECAYS}},
        "tune": {"num_samples": num_samples, "search_alg": "random", "scheduler": "fifo",
                 "max_concurrent": concurrency, "resources": {"cpu": 1, "gpu": 0}},
    }


# ------------------------------------------------------------ the bare script
def bare_train(config: dict[str, Any], data: Any, epochs: int = 1) -> None:
    """The trainable of the bare script: a hand-written timm loop, reporting each epoch."""
    import torch
    from ray import tune

    torch.set_num_threads(1)
    loop = C.HandLoop(MODEL, data, batch_size=BATCH_SIZE, lr=config["lr"], weight_decay=config["weight_decay"])
    for epoch in range(1, epochs + 1):
        train = loop.train_one_epoch()
        tune.report({"epoch": epoch, "train_loss": train["train_loss"], **loop.evaluate()})


def first_result_callback(on_first: Any) -> Any:
    from ray.tune import Callback

    class FirstResult(Callback):
        def __init__(self) -> None:
            self.seen = False

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if not self.seen:
                self.seen = True
                on_first()

    return FirstResult()


def bare_sweep(data: Any, storage: str, name: str, samples: int, epochs: int, concurrency: int, reuse_actors: bool,
               seed: int, on_first: Any = None) -> list[float]:
    """Tuner.fit of the bare script; returns each trial's time_total_s."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    trainable = tune.with_resources(tune.with_parameters(bare_train, data=data, epochs=epochs), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"lr": tune.loguniform(*LR_RANGE), "weight_decay": tune.choice(WEIGHT_DECAYS)},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", num_samples=samples,
                                    max_concurrent_trials=concurrency, reuse_actors=reuse_actors,
                                    search_alg=BasicVariantGenerator(random_state=seed)),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                  callbacks=[first_result_callback(on_first)] if on_first else []),
    )
    grid = tuner.fit()
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"bare sweep: {len(errors)} trials failed, e.g. {errors[0]}")
    return [r.metrics["time_total_s"] for r in grid]


def bare_worker(args: argparse.Namespace) -> int:
    """The bare script as its own process (the end-to-end comparison): data, Ray up, fit, Ray down."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    from tune_app.training import build_data
    from tune_app.training.datasets import DataConfig

    data = build_data(DataConfig(dataset="digits", image_size=IMAGE_SIZE))
    ray.init(**RAY_INIT, logging_level="ERROR")
    try:
        times = bare_sweep(data, args.storage, args.name, args.samples, args.epochs, args.concurrency,
                           reuse_actors=True, seed=args.seed, on_first=lambda: print("FIRST_RESULT", flush=True))
    finally:
        ray.shutdown()
    print("TRIAL_TIMES " + json.dumps(times), flush=True)
    return 0


# ---------------------------------------------------------------- end to end
def run_timed(command: list[str], first_marker: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``; wall time, and when the first stdout line starting with ``first_marker`` arrived."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=C.ROOT, env=env)
    first: list[float] = []
    lines: list[str] = []
    errors: list[str] = []

    def pump_err() -> None:
        errors.extend(proc.stderr)

    err_thread = threading.Thread(target=pump_err, daemon=True)
    err_thread.start()
    for line in proc.stdout:
        if not first and line.startswith(first_marker):
            first.append(time.perf_counter() - start)
        lines.append(line)
    proc.wait()
    wall = time.perf_counter() - start
    err_thread.join(timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}:\n{''.join(lines[-20:])}"
                           f"{''.join(errors[-40:])}")
    return {"wall_s": wall, "first_result_s": first[0] if first else float("nan"), "stdout": lines}


def end_to_end(args: argparse.Namespace, work: Path) -> dict[str, list[dict[str, Any]]]:
    from tune_app.report import load_results

    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "PYTHONPATH": os.pathsep.join([str(C.ROOT), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    spec_path = work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict(args.samples, args.epochs, args.concurrency), sort_keys=False))
    # The model facts (the name exists, its stages and size, its framing) are kept between commands in a
    # cache of this run; the user's first `tune-app validate` of the file fills it, untimed here as there.
    env["TUNE_APP_CACHE"] = str(work / "cache")
    subprocess.run([sys.executable, "-m", "tune_app", "validate", str(spec_path), "--no-build"], env=env,
                   check=True, capture_output=True)
    runs: dict[str, list[dict[str, Any]]] = {"tune-app CLI": [], "bare script": []}
    for r in range(args.e2e_repeats):
        for method in ("tune-app CLI", "bare script")[::1 if r % 2 == 0 else -1]:  # A B, B A, ...
            name = f"e2e-{'cli' if method.startswith('tune') else 'bare'}-{r}"
            if method == "tune-app CLI":
                out = run_timed([sys.executable, "-m", "tune_app", "search", str(spec_path), "--storage", str(work),
                                 "--name", name, "--set", f"tune.seed={r}"], "trial ", env)
                times = [float(t) for t in load_results(work / name)["time_total_s"]]
            else:
                out = run_timed([sys.executable, str(Path(__file__).resolve()), "--bare-worker", "--storage",
                                 str(work), "--name", name, "--samples", str(args.samples), "--epochs",
                                 str(args.epochs), "--concurrency", str(args.concurrency), "--seed", str(r)],
                                "FIRST_RESULT", env)
                times = json.loads(next(line for line in out["stdout"] if line.startswith("TRIAL_TIMES"))[12:])
            record = summarize(method, out["wall_s"], out["first_result_s"], times, args)
            runs[method].append(record)
            print(f"  [e2e {r + 1}/{args.e2e_repeats}] {method:14s} wall {record['wall_s']:6.1f}s  first result "
                  f"{record['first_result_s']:5.1f}s  slot time/trial {record['slot_s_per_trial']:5.2f}s  median "
                  f"trial {record['trial_time_median_s']:5.2f}s", flush=True)
    return runs


# ---------------------------------------------------------------- in process
def in_process(args: argparse.Namespace, work: Path) -> dict[str, list[dict[str, Any]]]:
    import ray
    import yaml

    from tune_app.spec import load_spec
    from tune_app.sweep.runner import run_sweep
    from tune_app.training.engine import build_data_for

    work.mkdir(parents=True, exist_ok=True)
    spec_path = work / "spec-inproc.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict(args.samples, args.epochs, args.concurrency), sort_keys=False))
    base = load_spec(spec_path)
    data = build_data_for(base.train_config())  # one copy, as the CLI builds it
    # Workers must import _common (the bare trainable) and this checkout's tune_app.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(C.ROOT), str(Path(__file__).parent),
                                                os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    methods = ["run_sweep", "bare reuse_actors=True"]
    if not args.no_diagnostics and args.epochs > 1:  # at 1 epoch both variants checkpoint once
        methods.append("run_sweep checkpoint_every=0")
    # Ray's default (a fresh actor per trial) is 5x slower here: a reference, run fewer times, after the rest.
    slow = ["bare reuse_actors=False"] * args.no_reuse_repeats
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in [*methods, *slow[:1]]}
    ray.init(**RAY_INIT, logging_level="ERROR")
    try:
        # Untimed warm-up: the first Tuner of a fresh Ray instance pays for its first workers.
        bare_sweep(data, str(work), "warmup", 2, 1, args.concurrency, reuse_actors=True, seed=99)
        plan = [(r, m) for r in range(args.repeats)
                for m in methods[r % len(methods):] + methods[:r % len(methods)]]  # rotate: A B C, B C A, ...
        plan += [(r, m) for r, m in enumerate(slow)]
        for r, method in plan:
            name = f"inproc-{list(runs).index(method)}-{r}"
            first: list[float] = []
            start = time.perf_counter()

            def mark(*_: Any) -> None:
                if not first:
                    first.append(time.perf_counter() - start)

            if method.startswith("run_sweep"):
                overrides = [f"tune.seed={r}"]
                if "checkpoint_every=0" in method:
                    overrides.append("tune.checkpoint_every=0")
                spec = load_spec(spec_path, overrides, name=name, storage=str(work))
                target = experiment_target(spec, work, name)
                start = time.perf_counter()
                grid = run_sweep(spec, target, data=data,
                                 echo=lambda line: mark() if line.startswith("trial ") else None)
                wall = time.perf_counter() - start
                failed = [x.error for x in grid if x.error]
                if failed:
                    raise RuntimeError(f"run_sweep: {len(failed)} trials failed, e.g. {failed[0]}")
                times = [x.metrics["time_total_s"] for x in grid]
            else:
                start = time.perf_counter()
                times = bare_sweep(data, str(work), name, args.samples, args.epochs, args.concurrency,
                                   reuse_actors="True" in method, seed=r, on_first=mark)
                wall = time.perf_counter() - start
            record = summarize(method, wall, first[0] if first else float("nan"), times, args)
            runs[method].append(record)
            print(f"  [in-process {r + 1}] {method:30s} wall {wall:6.1f}s  first result "
                  f"{record['first_result_s']:5.1f}s  slot time/trial {record['slot_s_per_trial']:5.2f}s  median "
                  f"trial {record['trial_time_median_s']:5.2f}s", flush=True)
    finally:
        ray.shutdown()
    return runs


def experiment_target(spec: Any, work: Path, name: str) -> Any:
    """The experiment directory ``run_sweep`` writes into, made as the CLI makes it (spec.yaml first)."""
    import yaml

    from tune_app.experiment.location import Location

    location = Location.create(str(work), name)
    location.write_text("spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return location


def summarize(method: str, wall: float, first: float, times: list[float], args: argparse.Namespace) -> dict[str, Any]:
    if len(times) != args.samples:
        raise RuntimeError(f"{method}: {len(times)} trials reported, expected {args.samples}")
    return {"method": method, "wall_s": wall, "first_result_s": first, "trials": len(times),
            "slot_s_per_trial": wall * args.concurrency / len(times), "trial_time_sum_s": sum(times),
            "trial_time_median_s": C.median(times), "trial_times_s": times}


def medians(runs: dict[str, list[dict[str, Any]]], baseline: str) -> list[dict[str, Any]]:
    """Per method, medians over repeats; overhead per trial against the baseline's warm trial time.

    ``overhead_per_trial_s = wall x concurrency / trials - t_ref``: the slot time a trial
    costs beyond its own training, where ``t_ref`` is the median ``time_total_s`` of the
    baseline's trials (a warm trial's train + evaluate; a trial's own ``time_total_s`` is
    not comparable across methods, since the bare trainable imports torch inside the
    function while tune-app's actor imports it before, and without actor reuse every
    trial pays that import).
    """
    base_wall = C.median(r["wall_s"] for r in runs[baseline])
    t_ref = C.median(r["trial_time_median_s"] for r in runs[baseline])
    rows = []
    for method, records in runs.items():
        wall = C.median(r["wall_s"] for r in records)
        slot = C.median(r["slot_s_per_trial"] for r in records)
        rows.append({
            "method": method, "repeats": len(records), "wall_s": wall,
            "wall_spread": C.spread([r["wall_s"] for r in records]), "vs_bare": wall / base_wall,
            "first_result_s": C.median(r["first_result_s"] for r in records),
            "slot_s_per_trial": slot, "t_ref_s": t_ref, "overhead_per_trial_s": slot - t_ref,
            "trial_time_median_s": C.median(r["trial_time_median_s"] for r in records),
        })
    return rows


def paired_ratio(runs: dict[str, list[dict[str, Any]]], method: str, baseline: str) -> float:
    return C.median(a["wall_s"] / b["wall_s"] for a, b in zip(runs[method], runs[baseline]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials, 1 repeat")
    parser.add_argument("--samples", type=int, default=8, help="trials per sweep")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="in-process repeats of each method")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="end-to-end repeats of each method")
    parser.add_argument("--no-reuse-repeats", type=int, default=1,
                        help="in-process repeats of the bare script with Ray's default reuse_actors=False (slow)")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--no-diagnostics", action="store_true", help="skip the checkpoint_every=0 variant (run only with --epochs > 1)")
    parser.add_argument("--out", help="result file (default benchmarks/results/sweep_overhead.json)")
    # the bare script as a subprocess (used by the end-to-end comparison)
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        return bare_worker(args)
    if args.quick:
        args.samples, args.repeats, args.e2e_repeats, args.no_diagnostics = 4, 1, 1, True

    started = time.time()
    print(f"sweep overhead: {args.samples} trials of {MODEL}@{IMAGE_SIZE}px, {args.epochs} epoch(s), "
          f"{args.concurrency} at a time ({C.cpu_model()}, {os.cpu_count()} cores)", flush=True)
    payload: dict[str, Any] = {"benchmark": "sweep_overhead", "quick": args.quick, "target_ratio": TARGET,
                               "settings": {k: v for k, v in vars(args).items() if k not in ("out", "bare_worker",
                                                                                             "storage", "name", "seed")}}
    with tempfile.TemporaryDirectory(prefix="tune-app-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_e2e:
            e2e = end_to_end(args, work / "e2e")
            payload["end_to_end"] = {"runs": e2e, "table": medians(e2e, "bare script"),
                                     "ratio_paired_median": paired_ratio(e2e, "tune-app CLI", "bare script")}
        if not args.skip_in_process:
            inproc = in_process(args, work / "inproc")
            table = medians(inproc, "bare reuse_actors=True")
            payload["in_process"] = {"runs": inproc, "table": table,
                                     "ratio_paired_median": paired_ratio(inproc, "run_sweep", "bare reuse_actors=True")}
    columns = ["method", "repeats", "wall_s", "wall_spread", "vs_bare", "first_result_s", "slot_s_per_trial",
               "overhead_per_trial_s", "trial_time_median_s"]
    verdicts = {}
    for key, method, title in (("end_to_end", "tune-app CLI", "End to end (fresh process and Ray each)"),
                               ("in_process", "run_sweep", "In process (one Ray instance)")):
        if key not in payload:
            continue
        part = payload[key]
        ratio = next(r["vs_bare"] for r in part["table"] if r["method"] == method)
        part["ratio"] = ratio
        part["target_met"] = ratio <= TARGET
        verdicts[key] = part["target_met"]
        print(f"\n{title}: medians of {part['table'][0]['repeats']} repeats")
        print(C.table(part["table"], columns))
        print(f"{method} / bare (reuse_actors=True): {ratio:.3f} (paired median {part['ratio_paired_median']:.3f}); "
              f"target <= {TARGET}: {'met' if part['target_met'] else 'MISSED'}")
    payload.update(machine=C.machine_info(), all_targets_met=all(verdicts.values()), seconds=time.time() - started)
    path = C.write_json("sweep_overhead", payload, args.out)
    print(f"\nwrote {path} ({payload['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
