"""Fractional GPUs: 4 trials packed on one GPU (``tune.resources.gpu: 0.25``) against 1 trial on it (``gpu: 1``).

Each variant is one ``tune-app search`` (the CLI, in a subprocess, with its own Ray)
on a spec file written here: fixed hyperparameters, FIFO, every trial training the
same model for ``--epochs`` epochs on digits resized to the model's input size. Total
images/s of the GPU:

- ``sum_epoch_img_s``: the sum over trials of each trial's median per-epoch training
  throughput (``train_throughput`` in history.csv) over its epochs after the first;
  right when the packed trials overlap, which the ``overlap`` column checks;
- ``wall_img_s``: training images of all trials / (last result - first trial start),
  from Ray's timestamps (whole seconds; includes evaluation and trial start-up).

The variants alternate (packed, single, packed, single, ...). On a CPU, ``--device cpu``
runs the same path with ``gpu: 0`` and fractional CPUs: a smoke test of the script,
not a measurement.

    python benchmarks/gpu_packing.py --out $OUT/gpu_packing.json          # on a GPU machine
    python benchmarks/gpu_packing.py --device cpu --quick                  # smoke run here
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C


def spec_dict(args: argparse.Namespace, trials: int, gpu: float, cpu: float) -> dict[str, Any]:
    name, _, size = args.model.partition("@")
    return {
        "name": "gpu-packing",
        "task": "classification",
        "data": {"dataset": "digits", "image_size": int(size or 224), "batch_size": args.batch_size,
                 "num_workers": args.num_workers},
        "model": {"name": name, "pretrained": False},
        "train": {"epochs": args.epochs, "optimizer": "adamw", "seed": 0, "metric": "val_acc", "mode": "max",
                  "device": "cpu" if args.device == "cpu" else "auto"},
        "search": {"lr": {"loguniform": [3.0e-4, 3.0e-3]}, "amp": args.amp},
        "tune": {"num_samples": trials, "search_alg": "random", "scheduler": "fifo", "max_concurrent": trials,
                 "resources": {"cpu": cpu, "gpu": gpu}, "checkpoint_every": 0},
    }


def run_variant(args: argparse.Namespace, work: Path, label: str, trials: int, gpu: float, cpu: float,
                repeat: int) -> dict[str, Any]:
    import yaml

    from tune_app.report import load_history
    from tune_app.report.results import read_trials
    from tune_app.report.timeline import timeline, trial_starts

    spec = work / f"{label}.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(args, trials, gpu, cpu), sort_keys=False))
    name = f"{label}-{repeat}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "PYTHONPATH": os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", ""), str(C.ROOT)] if p)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(work),
                           "--name", name], capture_output=True, text=True, cwd=C.ROOT, env=env,
                          timeout=args.timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"tune-app search ({label}) exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    history = load_history(work / name)
    if history.empty or history["trial_id"].nunique() != trials:
        raise RuntimeError(f"{label}: expected {trials} trials with results, got\n{history}")
    steady = history[history["epoch"] > 1] if args.epochs > 1 else history
    per_trial = steady.groupby("trial_id")["train_throughput"].median()
    events = timeline(read_trials(work / name), "val_acc")
    starts = trial_starts(events)
    ends = events.groupby("trial_id")["time"].max()
    span = float(ends.max() - starts.min())
    overlap = float(max(0.0, ends.min() - starts.max()) / span) if span > 0 else 0.0
    images = int(history["epoch"].count()) * train_images(args)
    return {"variant": label, "repeat": repeat, "trials": trials, "gpu_per_trial": gpu, "cpu_per_trial": cpu,
            "sum_epoch_img_s": float(per_trial.sum()), "per_trial_img_s": [float(x) for x in per_trial],
            "wall_img_s": images / span if span > 0 else float("nan"), "trial_span_s": span,
            "overlap": overlap, "command_wall_s": wall,
            "peak_memory_mb": float(history["peak_memory_mb"].max()) if "peak_memory_mb" in history else None}


def train_images(args: argparse.Namespace) -> int:
    # digits: 1437 training images; drop_last keeps whole batches
    return (1437 // args.batch_size) * args.batch_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: a tiny model, 2 epochs, 1 repeat")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (a smoke test)")
    parser.add_argument("--model", default="timm/resnet50@224", help="name@image_size")
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--packed", type=int, default=4, help="trials sharing the GPU (gpu: 1/packed each)")
    parser.add_argument("--cpus-per-trial", type=float, default=None, help="default: cores / packed")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers per trial")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=240, help="seconds per tune-app search")
    parser.add_argument("--out", help="result file (default benchmarks/results/gpu_packing.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.epochs, args.repeats, args.num_workers = "timm/test_resnet@16", 2, 1, 0
    cores = os.cpu_count() or 1
    cpu = args.cpus_per_trial or max(0.25, cores / args.packed if args.device == "cpu" else cores // args.packed)
    if args.device == "cpu":
        variants = [("packed", args.packed, 0.0, cpu), ("single", 1, 0.0, cpu)]
    else:
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
            return 1
        variants = [("packed", args.packed, 1.0 / args.packed, cpu), ("single", 1, 1.0, cpu)]

    started = time.time()
    records = []
    with tempfile.TemporaryDirectory(prefix="tune-app-gpu-") as tmp:
        for repeat in range(args.repeats):
            for label, trials, gpu, cpus in variants:
                record = run_variant(args, Path(tmp), label, trials, gpu, cpus, repeat)
                records.append(record)
                print(f"  [{repeat + 1}/{args.repeats}] {label:6s} {trials} trial(s) x gpu {gpu:g}: "
                      f"{record['sum_epoch_img_s']:.0f} img/s (sum of per-trial epochs), {record['wall_img_s']:.0f} "
                      f"img/s (wall), overlap {record['overlap']:.0%}, command {record['command_wall_s']:.0f}s",
                      flush=True)
    rows = []
    for label, trials, gpu, cpus in variants:
        mine = [r for r in records if r["variant"] == label]
        rows.append({"variant": label, "trials": trials, "gpu_per_trial": gpu, "cpu_per_trial": cpus,
                     "sum_epoch_img_s": C.median(r["sum_epoch_img_s"] for r in mine),
                     "wall_img_s": C.median(r["wall_img_s"] for r in mine),
                     "overlap": C.median(r["overlap"] for r in mine),
                     "command_wall_s": C.median(r["command_wall_s"] for r in mine)})
    gain = rows[0]["sum_epoch_img_s"] / rows[1]["sum_epoch_img_s"]
    gain_wall = rows[0]["wall_img_s"] / rows[1]["wall_img_s"]
    print(f"\n{args.model}, amp {args.amp}, batch {args.batch_size}, {args.epochs} epochs; medians of {args.repeats}")
    print(C.table(rows))
    print(f"packed / single total images/s: {gain:.2f}x (per-epoch sums), {gain_wall:.2f}x (wall)")
    payload = {"benchmark": "gpu_packing", "quick": args.quick, "machine": C.machine_info(args.device),
               "settings": {k: v for k, v in vars(args).items() if k != "out"}, "table": rows,
               "packed_over_single": gain, "packed_over_single_wall": gain_wall, "runs": records,
               "seconds": time.time() - started}
    name = "gpu_packing" + ("_cpu_smoke" if args.device == "cpu" else "")
    path = C.write_json(name, payload, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
