"""Expected compute to a target under FIFO and ASHA, by replaying recorded learning curves.

``search_efficiency.py`` runs real sweeps, but with 16 trials a seed's ratio rests on
where the first good configuration falls in the random order, so a few seeds cannot
pin down the expected saving. This script measures the same thing over thousands of
orders, the way tabular HPO benchmarks do:

1. **A pool of real learning curves.** One FIFO sweep (``--collect``, every trial runs
   the whole budget) of many random configurations of the benchmark's wide space over
   digits (``search_efficiency.WIDE_SPACE``; its narrow space is the part of the pool
   whose lr and weight decay fall inside the narrow ranges, which for log-uniform draws
   is a log-uniform sample of the narrow space).
2. **Replay.** Each order draws ``--samples`` configurations of the pool at random
   and runs them on ``--workers`` workers, every epoch one time unit, results in order
   of arrival. FIFO runs every trial to its end. ASHA is tune-app's own scheduler object
   (``sweep.strategies.TRIAL_SCHEDULERS["asha"]``: Ray's ``ASHAScheduler`` with tune-app's
   defaults), fed each epoch's result as Ray's controller feeds it; a STOP ends the
   trial and frees its worker for the next configuration.
3. **Counts**, as ``tune-app compare`` counts them: trial-epochs reported until the
   best so far first reached the target (inf when the order never reaches it), and the
   trial-epochs of the whole sweep.

``--check DIR`` validates the replay against real sweeps: for each seed of a kept
``search_efficiency.py --keep DIR`` run, it replays ASHA over that seed's FIFO curves
(the same configurations, trained with the same seed, in the same order) and sets the
counts beside those of the real ASHA run of that seed.

    python benchmarks/scheduler_replay.py --collect DIR   # the pool sweep (~7 min here), then the replay (~10 min)
    python benchmarks/scheduler_replay.py --pool benchmarks/results/scheduler_replay_pool.json   # the recorded pool
    python benchmarks/scheduler_replay.py --pool P --check KEPT  # and check it against real sweeps
    python benchmarks/scheduler_replay.py --quick          # smoke run: a pool of 8 short trials
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as C
import numpy
import search_efficiency as S

TARGET_RATIO = S.TARGET_RATIO
STREAM_LENGTH = 400  # configurations an open-ended search may draw before it counts as never reaching

# (label, ASHA options): tune-app's default first, then the knobs a user would turn.
ASHA_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("asha (tune-app default)", {}),
    ("asha rf 2 (old default)", {"reduction_factor": 2}),
    ("asha rf 3", {"reduction_factor": 3}),
    ("asha grace 2", {"grace_period": 2}),
    ("asha grace 3", {"grace_period": 3}),
    ("asha brackets 3", {"brackets": 3}),
]


@dataclass(frozen=True)
class Curve:
    """One configuration's recorded run: its parameters and the metric after each epoch."""

    trial_id: str
    params: dict[str, Any]
    values: tuple[float, ...]


@dataclass
class Outcome:
    """What one replayed sweep spent: in total, and until its best so far reached the target."""

    trial_epochs: int
    to_target: float  # inf: never reached
    best: float


# ------------------------------------------------------------------ the pool
def load_curves(experiment_dir: str | Path, metric: str) -> list[Curve]:
    """Every trial of a finished experiment, in creation order, with its per-epoch metric."""
    from tune_app.report.results import read_trials

    curves = []
    for trial in read_trials(experiment_dir):
        values = tuple(_number(line.get(metric)) for line in trial.history)
        if values:
            curves.append(Curve(trial.trial_id, dict(trial.config), values))
    return curves


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def in_space(params: dict[str, Any], space: dict[str, Any]) -> bool:
    """Whether a configuration's log-uniform parameters fall inside ``space``'s ranges."""
    for name, rule in space.items():
        if isinstance(rule, dict) and "loguniform" in rule:
            low, high = rule["loguniform"]
            if not low <= float(params[name]) <= high:
                return False
    return True


def reaches(curve: Curve, target: float) -> bool:
    return any(v >= target for v in curve.values if not math.isnan(v))


# ------------------------------------------------------------------ the replay
def replay(order: Iterable[Curve], budget: int, workers: int, target: float,
           scheduler_factory: Callable[[], Any] | None, metric: str = "val_acc",
           until_target: bool = False) -> Outcome:
    """Run ``order`` on ``workers`` workers, each epoch one time unit; ``None`` scheduler: FIFO.

    Workers that finish at the same time report in worker order; a freed worker starts
    the next configuration at once (as Ray does with reused actors). ``until_target``:
    end as soon as the best so far reaches the target (for open-ended streams).
    """
    scheduler = scheduler_factory() if scheduler_factory else None
    queue = iter(order)
    running: dict[int, tuple[Any, Curve, int]] = {}  # worker -> (trial handle, curve, epochs done)
    spent, to_target, best, started = 0, math.inf, -math.inf, 0

    def start(worker: int) -> None:
        nonlocal started
        curve = next(queue, None)
        if curve is not None:
            started += 1
            trial = _Trial(f"{started}-{curve.trial_id}", curve)
            if scheduler is not None:
                scheduler.on_trial_add(None, trial)
            running[worker] = (trial, curve, 0)

    for worker in range(workers):
        start(worker)
    while running:
        for worker in sorted(running):  # one time unit: every running trial reports one epoch
            trial, curve, done = running[worker]
            epoch, value = done + 1, curve.values[done]
            spent += 1
            if not math.isnan(value) and value > best:
                best = value
                if best >= target and math.isinf(to_target):
                    to_target = spent
                    if until_target:
                        return Outcome(spent, to_target, best)
            result = {"training_iteration": epoch, metric: value}
            last = epoch >= min(budget, len(curve.values))  # the budget, or the trial ended itself (diverged)
            stop = False
            if scheduler is not None:
                stop = scheduler.on_trial_result(None, trial, result) == "STOP"
                if stop or last:
                    scheduler.on_trial_complete(None, trial, result)
            if stop or last:
                del running[worker]
                start(worker)
            else:
                running[worker] = (trial, curve, epoch)
    return Outcome(spent, to_target, best)


@dataclass(frozen=True)
class _Trial:
    """All that Ray's ASHA reads of a trial (the curve is for the oracle only)."""

    trial_id: str
    curve: Curve | None = field(default=None, compare=False)


class Oracle:
    """A lower bound, not a scheduler: stops after one epoch every trial that will never reach the target.

    No early-stopping rule can spend less while running the trials in the same order,
    so its ratio to FIFO is the best any scheduler could do on these curves.
    """

    def __init__(self, target: float) -> None:
        self.target = target

    def on_trial_add(self, controller: Any, trial: _Trial) -> None:
        pass

    def on_trial_result(self, controller: Any, trial: _Trial, result: dict[str, Any]) -> str:
        return "CONTINUE" if trial.curve is not None and reaches(trial.curve, self.target) else "STOP"

    def on_trial_complete(self, controller: Any, trial: _Trial, result: dict[str, Any]) -> None:
        pass


def asha_factory(spec: Any, options: dict[str, Any]) -> Callable[[], Any]:
    """tune-app's ASHA for ``spec`` with ``options``, told the objective as Ray's Tuner tells it."""
    from tune_app.sweep.strategies import TRIAL_SCHEDULERS

    def make() -> Any:
        scheduler = TRIAL_SCHEDULERS["asha"].factory(spec.search_setup(), options)
        scheduler.set_search_properties(spec.metric, spec.mode)
        return scheduler

    return make


def draw_sweeps(pool: Sequence[Curve], samples: int, count: int, seed: int) -> list[list[Curve]]:
    """``count`` sweeps of ``samples`` distinct configurations of the pool, each in random order."""
    rng = random.Random(seed)
    return [rng.sample(list(pool), min(samples, len(pool))) for _ in range(count)]


def draw_streams(pool: Sequence[Curve], length: int, count: int, seed: int) -> list[list[Curve]]:
    """Open-ended searches: configurations drawn from the pool with replacement, as a sampler draws."""
    rng = random.Random(seed)
    return [rng.choices(list(pool), k=length) for _ in range(count)]


# ------------------------------------------------------------------ summaries
def evaluate(pool: Sequence[Curve], spec: Any, args: argparse.Namespace, target: float,
             settings: Sequence[tuple[str, dict[str, Any]]] = ASHA_SETTINGS) -> dict[str, Any]:
    """FIFO and each ASHA setting on the same random sweeps and streams of ``pool``.

    - sweeps: ``--samples`` trials, as a ``tune-app search`` runs them: its compute, its
      best, and whether (and after how much compute) it reached the target;
    - streams: a search that keeps sampling until it reaches the target: the compute to
      the target without a cap on trials (ASHA, having stopped the weak ones early, can
      try more configurations for FIFO's compute).
    """
    budget, workers = spec.train.epochs, args.workers
    sweeps = draw_sweeps(pool, args.samples, args.orders, args.seed)
    streams = draw_streams(pool, STREAM_LENGTH, args.orders, args.seed)
    fifo_sweeps = [replay(o, budget, workers, target, None) for o in sweeps]
    fifo_streams = [replay(o, budget, workers, target, None, until_target=True) for o in streams]
    rows = [summarize("fifo", fifo_sweeps, fifo_streams)]
    for label, options in settings:
        make = asha_factory(spec, options)
        numpy.random.seed(args.seed)  # Ray's ASHA draws each trial's bracket from numpy's global generator
        rows.append(summarize(label, [replay(o, budget, workers, target, make) for o in sweeps],
                              [replay(o, budget, workers, target, make, until_target=True) for o in streams],
                              fifo_sweeps, fifo_streams))
    oracle = lambda: Oracle(target)  # noqa: E731
    rows.append(summarize("oracle (lower bound)", [replay(o, budget, workers, target, oracle) for o in sweeps],
                          [replay(o, budget, workers, target, oracle, until_target=True) for o in streams],
                          fifo_sweeps, fifo_streams))
    # Where one of the first trials is good, no scheduler has had anything to stop yet.
    lucky = sum(any(reaches(c, target) for c in o[:workers]) for o in streams) / len(streams)
    return {"target": target, "pool": pool_summary(pool, target, budget), "rows": rows,
            "first_trials_reach": lucky}


def summarize(label: str, sweeps: list[Outcome], streams: list[Outcome],
              fifo_sweeps: list[Outcome] | None = None, fifo_streams: list[Outcome] | None = None) -> dict[str, Any]:
    """Means and medians over the sweeps and streams; against FIFO's on the same draws when given."""
    to = [o.to_target for o in streams]
    row: dict[str, Any] = {
        "strategy": label,
        "sweep_trial_epochs_mean": statistics.fmean(o.trial_epochs for o in sweeps),
        "sweep_best_mean": statistics.fmean(o.best for o in sweeps),
        "sweep_reached": round(sum(math.isfinite(o.to_target) for o in sweeps) / len(sweeps), 3),
        "stream_reached": round(sum(math.isfinite(x) for x in to) / len(to), 3),
        "to_target_mean": statistics.fmean(x for x in to if math.isfinite(x)) if any(map(math.isfinite, to))
        else math.inf,
        "to_target_median": C.median_or_inf(to),
    }
    if fifo_sweeps is not None and fifo_streams is not None:
        row["sweep_best_lost_mean"] = statistics.fmean(f.best - o.best for o, f in zip(sweeps, fifo_sweeps))
        pairs = [(o.to_target, f.to_target) for o, f in zip(streams, fifo_streams)
                 if math.isfinite(o.to_target) and math.isfinite(f.to_target)]
        ratios = [a / f for a, f in pairs]
        row["ratio_of_means"] = sum(a for a, _ in pairs) / sum(f for _, f in pairs) if pairs else math.nan
        row["ratio_ci90"] = _bootstrap_ci(pairs) if pairs else [math.nan, math.nan]
        row["ratio_median"] = statistics.median(ratios) if ratios else math.nan
        row["share_at_most_half"] = round(sum(r <= TARGET_RATIO for r in ratios) / len(ratios), 3) if ratios else math.nan
    return row


def _bootstrap_ci(pairs: list[tuple[float, float]], draws: int = 1000, seed: int = 0) -> list[float]:
    """90% bootstrap interval of the ratio of mean trial-epochs to target (resampling the draws)."""
    rng = random.Random(seed)
    n, ratios = len(pairs), []
    for _ in range(draws):
        sample = [pairs[rng.randrange(n)] for _ in range(n)]
        ratios.append(sum(a for a, _ in sample) / sum(f for _, f in sample))
    ratios.sort()
    return [round(ratios[int(0.05 * draws)], 3), round(ratios[int(0.95 * draws) - 1], 3)]


def pool_summary(pool: Sequence[Curve], target: float, budget: int) -> dict[str, Any]:
    good = [c for c in pool if reaches(c, target)]
    return {"configurations": len(pool), "reach_target": len(good), "share_reaching": round(len(good) / max(len(pool), 1), 3),
            "ran_whole_budget": sum(len(c.values) >= budget for c in pool),
            "first_epoch_reaching_median": statistics.median(
                next(i for i, v in enumerate(c.values, 1) if v >= target) for c in good) if good else math.nan}


# ------------------------------------------------------------------ check against real sweeps
def check(kept: Path, spec: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Replay ASHA over each seed's real FIFO curves; set it beside the real ASHA run of that seed."""
    from tune_app.report.compare import comparison_tables

    rows = []
    for seed in range(args.seeds):
        fifo_dir = kept / "random-compare" / f"fifo-seed{seed}"
        asha_dir = kept / "random-compare" / f"asha-seed{seed}"
        if not ((fifo_dir / "report.html").is_file() and (asha_dir / "report.html").is_file()):
            continue
        order = load_curves(fifo_dir, spec.metric)
        replayed = replay(order, spec.train.epochs, args.workers, args.target, asha_factory(spec, {}))
        fifo_replayed = replay(order, spec.train.epochs, args.workers, args.target, None)
        real = comparison_tables({"fifo": [fifo_dir], "asha": [asha_dir]}, target=args.target).seeds
        real_fifo, real_asha = (real[real["strategy"] == k].iloc[0] for k in ("fifo", "asha"))
        rows.append({
            "seed": seed,
            "fifo real to target": _or_inf(real_fifo), "fifo replay to target": fifo_replayed.to_target,
            "asha real to target": _or_inf(real_asha), "asha replay to target": replayed.to_target,
            "asha real trial-epochs": int(real_asha["trial_epochs"]), "asha replay trial-epochs": replayed.trial_epochs,
            "asha real best": float(real_asha["best"]), "asha replay best": replayed.best,
        })
    return rows


def _or_inf(row: Any) -> float:
    return float(row["epochs_to_target"]) if bool(row["reached"]) else math.inf


# ------------------------------------------------------------------ main
def collect(work: Path, samples: int, epochs: int) -> Path:
    """One FIFO sweep of ``samples`` random configurations of the wide space: the pool."""
    import yaml

    from tune_app.cli import main as cli

    spec = S.spec_dict(samples, epochs, S.WIDE_SPACE)
    spec["name"] = "pool-wide"
    path = work / "pool-wide.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code = cli(["search", str(path), "--storage", str(work)])
    if code != 0:
        raise SystemExit(f"tune-app search (the pool) exited with {code}")
    return work / "pool-wide"


def write_pool(spec: Any, pool: Sequence[Curve], quick: bool = False) -> Path:
    """The pool's curves and spec as JSON: small enough to keep, so a replay needs no new sweep."""
    return C.write_json("scheduler_replay_pool", {
        "benchmark": "scheduler_replay_pool", "quick": quick, "spec": spec.to_dict(),
        "curves": [{"trial_id": c.trial_id, "params": c.params, "values": list(c.values)} for c in pool]})


def read_pool(path: Path) -> tuple[Any, list[Curve]]:
    import json

    from tune_app.spec import validate_spec

    data = json.loads(path.read_text())
    curves = [Curve(c["trial_id"], c["params"], tuple(_number(v) for v in c["values"])) for c in data["curves"]]
    return validate_spec(data["spec"]), curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pool", help="a finished FIFO experiment directory to replay, or the curves file a "
                                       "replay wrote (results/scheduler_replay_pool.json)")
    source.add_argument("--collect", metavar="DIR", help="run the pool sweep into DIR first")
    parser.add_argument("--pool-size", type=int, default=160, help="configurations the pool sweep runs")
    parser.add_argument("--epochs", type=int, default=9, help="epoch budget of a trial (the pool's)")
    parser.add_argument("--samples", type=int, default=16, help="trials per replayed sweep")
    parser.add_argument("--workers", type=int, default=2, help="trials at a time")
    parser.add_argument("--orders", type=int, default=2000, help="replayed sweeps per space")
    parser.add_argument("--target", type=float, default=S.DEFAULT_TARGET)
    parser.add_argument("--ladder", default="0.95,0.98,0.99,0.995", help="further targets (tune-app's ASHA only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn orders")
    parser.add_argument("--check", metavar="KEPT", help="a search_efficiency.py --keep directory to check against")
    parser.add_argument("--seeds", type=int, default=10, help="seeds to look for in --check")
    parser.add_argument("--quick", action="store_true", help="smoke run: a pool of 8 trials x 3 epochs")
    parser.add_argument("--out", help="result file (default benchmarks/results/scheduler_replay.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.pool_size, args.epochs, args.samples, args.orders = 8, 3, 4, 50

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tune-app-replay-") as tmp:
        if args.pool and Path(args.pool).is_file():
            spec, pool = read_pool(Path(args.pool))
        else:
            if args.pool:
                pool_dir = Path(args.pool)
            else:
                import ray

                ray.init(address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
                try:
                    pool_dir = collect(Path(args.collect or tmp), args.pool_size, args.epochs)
                finally:
                    ray.shutdown()
            from tune_app.spec import load_spec

            spec = load_spec(pool_dir / "spec.yaml")
            pool = load_curves(pool_dir, spec.metric)
            saved = write_pool(spec, pool, quick=args.quick)
            print(f"the pool's curves: {saved} (replay them again with --pool {saved})")

    spaces = {"wide": pool, "narrow": [c for c in pool if in_space(c.params, S.SPACE)]}
    payload: dict[str, Any] = {"benchmark": "scheduler_replay", "machine": C.machine_info(), "quick": args.quick,
                               "settings": {k: v for k, v in vars(args).items() if k != "out"},
                               "pool": args.pool or args.collect, "target_ratio": TARGET_RATIO, "spaces": {}}
    for name, curves in spaces.items():
        print(f"\n== {name} space: {len(curves)} configurations of the pool, {args.orders} orders of "
              f"{args.samples} trials, {args.workers} at a time, target {spec.metric} {args.target}")
        result = evaluate(curves, spec, args, args.target)
        print(f"pool: {result['pool']}")
        print(C.table(result["rows"], ["strategy", "to_target_mean", "to_target_median", "ratio_of_means",
                                       "ratio_ci90", "ratio_median", "share_at_most_half", "sweep_trial_epochs_mean",
                                       "sweep_reached", "sweep_best_mean", "sweep_best_lost_mean"]))
        print(f"searches whose first {args.workers} trials already reach the target: {result['first_trials_reach']:.0%}")
        ladder = []
        for target in sorted({args.target, *(float(t) for t in args.ladder.split(",") if t)}):
            # The main target's searches are already replayed above.
            at = result if target == args.target else evaluate(curves, spec, args, target)
            ladder.append({"target": target, "configurations reaching it": at["pool"]["share_reaching"],
                           "fifo to target (mean)": at["rows"][0]["to_target_mean"],
                           **{row["strategy"]: row["ratio_of_means"] for row in at["rows"][1:]}})
        print("\nASHA / FIFO, mean trial-epochs to each target (open-ended searches)")
        print(C.table(ladder, list(ladder[0])))
        payload["spaces"][name] = {**result, "ladder": ladder}
    if args.check:
        rows = check(Path(args.check), spec, args)
        print(f"\n== check: replayed ASHA over each seed's real FIFO curves vs the real ASHA run ({args.check})")
        print(C.table(rows, list(rows[0]) if rows else ["seed"]))
        payload["check"] = rows
    payload["seconds"] = time.time() - started
    path = C.write_json("scheduler_replay", payload, args.out)
    print(f"\nwrote {path} ({payload['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
