"""Search efficiency of tune-app's trial schedulers on a fixed space over the digits task.

Strategies, each with ``--seeds`` seeds (seed k: search seed k and training seed k for
every strategy, so FIFO and ASHA with random search draw the same configurations in
the same order):

- ``fifo`` + random search: every trial runs the whole budget (the baseline)
- ``asha`` + random search (tune-app's ASHA: grace 1 epoch, reduction factor 4)
- ``hyperband`` + random search (reduction factor 3; needs ``max_concurrent`` unset)
- ``asha`` + TPE (Optuna, ``n_startup_trials`` 5)
- ``pbt`` + its random population (only with ``--pbt``)

Space (``SPACE`` below): lr loguniform [1e-5, 1e-1], weight decay loguniform
[1e-6, 1e-1], loss ce / focal (gamma 1, 2, 3), scheduler cosine / step (step size 1..4,
gamma 0.1..0.5); timm/test_resnet at 16 px, batch 64, a 9-epoch budget, 16 trials,
2 at a time (1 CPU each; about 0.6 s per trial-epoch on one core).

Numbers (from tune-app's own ``tune-app compare`` runs and ``tune_app.report``'s
comparison): best val_acc at equal compute (the best-so-far of each run after a given
number of trial-epochs), and the trial-epochs each run spent until its best so far
first reached ``--target`` (results counted in order of arrival). Target: ASHA
(random) reaches the target with at most half the trial-epochs of FIFO (random).

Everything runs in one local Ray instance (loopback only), started here.

    python benchmarks/search_efficiency.py --pbt      # the real run (~30 min on 2 CPU cores, most of it PBT)
    python benchmarks/search_efficiency.py --space wide   # a wide first search (~11 min)
    python benchmarks/search_efficiency.py --analyze DIR  # re-read the runs a --keep DIR run left
    python benchmarks/search_efficiency.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

TARGET_RATIO = 0.5
DEFAULT_TARGET = 0.97  # val_acc: chosen so that FIFO random search reaches it in most seeds (see README)

SPACE = {
    "lr": {"loguniform": [1.0e-5, 1.0e-1]},
    "weight_decay": {"loguniform": [1.0e-6, 1.0e-1]},
    "loss": {"choice": ["ce", {"name": "focal", "gamma": {"choice": [1.0, 2.0, 3.0]}}]},
    "scheduler": {"choice": ["cosine", {"name": "step", "step_size": {"int": [1, 4]},
                                        "gamma": {"uniform": [0.1, 0.5]}}]},
}


# A wide first search, as users start one: most of these learning rates and weight decays are
# hopeless (too small to learn in 9 epochs, or diverging), which is what early stopping is for.
WIDE_SPACE = {**SPACE, "lr": {"loguniform": [1.0e-7, 1.0]}, "weight_decay": {"loguniform": [1.0e-6, 1.0]}}
SPACES = {"narrow": SPACE, "wide": WIDE_SPACE}


def spec_dict(samples: int, epochs: int, space: dict[str, Any] = SPACE) -> dict[str, Any]:
    return {
        "name": "efficiency",
        "task": "classification",
        "data": {"dataset": "digits", "image_size": 16, "batch_size": 64},
        "model": {"name": "timm/test_resnet", "pretrained": False},
        "train": {"epochs": epochs, "optimizer": "adamw", "seed": 0, "metric": "val_acc", "mode": "max"},
        "search": space,
        # max_concurrent unset: HyperBand requires it; 2 CPUs at 1 CPU per trial run 2 at a time anyway
        "tune": {"num_samples": samples, "search_alg": "random", "scheduler": "fifo",
                 "resources": {"cpu": 1, "gpu": 0}},
    }


# (label, schedulers for `tune-app compare`, extra --set overrides)
GROUPS = [
    ("random", "fifo,asha,hyperband", ["tune.search_alg=random"]),
    ("tpe", "asha", ["tune.search_alg={name: optuna, n_startup_trials: 5}"]),
]


def epochs_to(curve: Any, target: float) -> float:
    """Trial-epochs a run spent until its best-so-far first reached ``target`` (inf if never)."""
    reached = curve[curve["best"] >= target]
    return float(reached["trial_epochs"].iloc[0]) if len(reached) else math.inf


def ladder(curves: dict[str, list[Any]], targets: list[float]) -> list[dict[str, Any]]:
    """Per target: each strategy's median trial-epochs to it over the seeds (inf: most seeds never got there).

    One target alone can flatter or hide a scheduler: a target that nearly every
    configuration reaches is met by the first trials, before any scheduler has
    anything to stop; a stricter one needs many trials, where early stopping pays.
    """
    rows = []
    for target in targets:
        row: dict[str, Any] = {"target": target}
        for strategy, runs in curves.items():
            per_seed = [epochs_to(c, target) for c in runs]
            row[strategy] = C.median_or_inf(per_seed)
            row[f"{strategy} reached"] = f"{sum(math.isfinite(x) for x in per_seed)}/{len(per_seed)}"
        fifo, asha = row.get("fifo (random)", math.nan), row.get("asha (random)", math.nan)
        row["asha/fifo"] = asha / fifo if math.isfinite(fifo) and fifo > 0 and math.isfinite(asha) else math.nan
        rows.append(row)
    return rows


def best_at(curve: Any, budget: float) -> float:
    """The best-so-far value of a run after ``budget`` trial-epochs (NaN before its first result)."""
    done = curve[curve["trial_epochs"] <= budget]
    return float(done["best"].iloc[-1]) if len(done) else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials, 3 epochs, 1 seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=16, help="trials per run")
    parser.add_argument("--epochs", type=int, default=9, help="epoch budget of a trial (ASHA's max_t)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET, help="val_acc to reach")
    parser.add_argument("--ladder", default="0.95,0.97,0.98,0.99",
                        help="further val_acc targets to report trial-epochs for (comma-separated)")
    parser.add_argument("--pbt", action="store_true", help="add PBT (random population)")
    parser.add_argument("--schedulers", default="fifo,asha,hyperband",
                        help="trial schedulers run with random search (comma-separated; fifo and asha needed)")
    parser.add_argument("--no-tpe", action="store_true", help="leave out ASHA + TPE")
    parser.add_argument("--space", choices=sorted(SPACES), default="narrow",
                        help="narrow: most configurations learn (the default); wide: most do not")
    parser.add_argument("--keep", help="keep the experiment directories here instead of a temp dir")
    parser.add_argument("--analyze", metavar="DIR",
                        help="no new runs: analyze the finished runs a --keep DIR run left (an interrupted "
                             "run's last, unfinished sweep is left out)")
    parser.add_argument("--out", help="result file (default benchmarks/results/search_efficiency.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.samples, args.epochs = 1, 4, 3

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    import yaml

    from tune_app.cli import main as cli
    from tune_app.report import comparison_text, write_comparison

    groups = [(label, args.schedulers if label == "random" else schedulers, overrides)
              for label, schedulers, overrides in GROUPS if not (args.no_tpe and label == "tpe")]
    if args.pbt:
        groups.append(("pbt", "pbt", []))
    started = time.time()
    print(f"search efficiency: {args.samples} trials x {args.epochs} epochs, {args.seeds} seed(s) per strategy, "
          f"target val_acc {args.target}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tune-app-bench-") as tmp:
        work = Path(args.analyze or args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        spec_path = work / "efficiency.yaml"
        spec_path.write_text(yaml.safe_dump(spec_dict(args.samples, args.epochs, SPACES[args.space]), sort_keys=False))
        runs: dict[str, list[Path]] = {}
        wall: dict[str, float] = {}
        if args.analyze:
            for label, schedulers, _ in groups:
                for scheduler in schedulers.split(","):
                    key = f"{scheduler} ({label})" if label != scheduler else scheduler
                    # The final reports (report.html) are written when a sweep ends; refreshes write no HTML.
                    done = [work / f"{label}-compare" / f"{scheduler}-seed{s}" for s in range(args.seeds)]
                    runs[key] = [d for d in done if (d / "report.html").is_file()]
                    if not runs[key]:
                        del runs[key]
        else:
            ray.init(address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
            try:
                for label, schedulers, overrides in groups:
                    sets = [x for o in overrides for x in ("--set", o)]
                    t0 = time.time()
                    code = cli(["compare", str(spec_path), "--schedulers", schedulers, "--seeds", str(args.seeds),
                                "--storage", str(work), "--name", label, "--target", str(args.target), *sets])
                    if code != 0:
                        raise SystemExit(f"tune-app compare ({label}) exited with {code}")
                    wall[label] = time.time() - t0
                    for scheduler in schedulers.split(","):
                        key = f"{scheduler} ({label})" if label != scheduler else scheduler
                        runs[key] = [work / f"{label}-compare" / f"{scheduler}-seed{s}" for s in range(args.seeds)]
            finally:
                ray.shutdown()
        comparison, paths = write_comparison(work / "all-compare", runs, target=args.target, formats=("md",))
        report_md = paths["compare_md"].read_text()

    print("\n" + comparison_text(comparison))
    seeds = comparison.seeds
    fifo_key, asha_key = "fifo (random)", "asha (random)"
    totals = {k: float(seeds[seeds["strategy"] == k]["trial_epochs"].median()) for k in runs}
    budgets = sorted({round(totals[asha_key]), round(totals[fifo_key] / 2), round(totals[fifo_key])})
    rows = []
    for strategy in runs:
        group = seeds[seeds["strategy"] == strategy]
        to_target = [v if r else math.inf for v, r in zip(group["epochs_to_target"], group["reached"])]
        row = {
            "strategy": strategy, "seeds": len(group), "best_median": float(group["best"].median()),
            "best_per_seed": [float(x) for x in group["best"]], "trial_epochs_median": totals[strategy],
            "reached": f"{int(group['reached'].sum())}/{len(group)}",
            "epochs_to_target_median": C.median_or_inf(to_target),
            "epochs_to_target_per_seed": to_target,
            "trial_seconds_median": float(group["trial_seconds"].median()),
            "wall_seconds_median": float(group["wall_seconds"].median()),
        }
        for budget in budgets:
            row[f"best_at_{budget}"] = C.median(best_at(c, budget) for c in comparison.curves[strategy])
        rows.append(row)
    by = {r["strategy"]: r for r in rows}
    fifo_e, asha_e = by[fifo_key]["epochs_to_target_median"], by[asha_key]["epochs_to_target_median"]
    ratio = asha_e / fifo_e if math.isfinite(fifo_e) and fifo_e > 0 else math.nan
    paired = [a / f for a, f in zip(by[asha_key]["epochs_to_target_per_seed"], by[fifo_key]["epochs_to_target_per_seed"])
              if math.isfinite(f)]
    verdict = bool(ratio <= TARGET_RATIO) if not math.isnan(ratio) else False

    print(f"\nPer strategy, medians over {args.seeds} seed(s); target val_acc {args.target}")
    print(C.table(rows, ["strategy", "seeds", "best_median", "trial_epochs_median", "reached",
                         "epochs_to_target_median", *[f"best_at_{b}" for b in budgets], "wall_seconds_median"]))
    print(f"\nASHA (random) / FIFO (random) trial-epochs to val_acc {args.target}: {ratio:.3f} "
          f"(per seed: {', '.join(f'{p:.2f}' for p in paired)}); target <= {TARGET_RATIO}: "
          f"{'met' if verdict else 'MISSED'}")
    targets = sorted({args.target, *(float(t) for t in args.ladder.split(",") if t)})
    ladder_rows = ladder(comparison.curves, targets)
    print("\nMedian trial-epochs to each val_acc target (reached: seeds that got there)")
    print(C.table(ladder_rows, ["target", *[k for k in ladder_rows[0] if k != "target"]]))
    payload = {
        "benchmark": "search_efficiency", "ladder": ladder_rows, "quick": args.quick, "machine": C.machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"}, "space": SPACES[args.space],
        "spec": spec_dict(args.samples, args.epochs, SPACES[args.space]), "target_val_acc": args.target,
        "target_ratio": TARGET_RATIO, "asha_over_fifo_epochs_to_target": ratio,
        "asha_over_fifo_per_seed": paired, "target_met": verdict, "budgets_trial_epochs": budgets,
        "strategies": rows, "per_seed": seeds.to_dict(orient="records"), "compare_wall_s": wall,
        "compare_md": report_md, "seconds": time.time() - started,
    }
    path = C.write_json("search_efficiency", payload, args.out)
    print(f"\nwrote {path} ({payload['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
