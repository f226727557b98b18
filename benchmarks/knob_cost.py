"""What each fine-tuning knob costs per training step, side by side in one run.

One TrainingRun per setting (all knobs off, then one knob on at a time) over the same
data (digits resized to ``--size``), same model, seed and batch size; the settings take
turns within each round (the order rotates from round to round), each timed over
``--steps`` training steps, after a warm-up. The table quotes each setting's median step
time and the median of its per-round ratios to the all-off run in the same round. On the
CPU the ratio uses process CPU time (one torch thread, as a sweep trial gets), which other
jobs on a shared machine disturb least; the wall-time ratio is shown too.

Targets (the fine-tuning knobs issue): mixup/cutmix, EMA, layer decay and head_lr_mult
each <= 1.05x of the step, an ``augment`` policy <= 1.15x.

    python benchmarks/knob_cost.py                     # CPU: resnet18@64, ~6 min here
    python benchmarks/knob_cost.py --quick             # smoke run
    python benchmarks/knob_cost.py --settings "off,randaugment m9"   # some of them
    python benchmarks/knob_cost.py --device cuda --size 224 --batch-size 128 --amp bf16
"""

from __future__ import annotations

import argparse
import sys

import _common as C

SETTINGS: dict[str, dict] = {
    "off": {},
    "ema 0.999": {"ema": 0.999},
    "layer_decay 0.75": {"layer_decay": 0.75},
    "head_lr_mult 10": {"head_lr_mult": 10.0},
    "mixup 0.8": {"mixup": 0.8},
    "cutmix 1.0": {"cutmix": 1.0},
    "mixup+cutmix elem": {"mixup": 0.8, "cutmix": 1.0, "mixup_mode": "elem"},
    "randaugment m9": {"augment": {"name": "randaugment", "magnitude": 9, "num_ops": 2}},
    "trivialaugment": {"augment": {"name": "trivialaugment"}},
}
TARGETS = {"randaugment m9": 1.15, "trivialaugment": 1.15}  # the rest: 1.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="timm/resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--amp", default="off")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--quick", action="store_true", help="smoke run: test_resnet, 2 steps, 2 repeats")
    parser.add_argument("--settings", help="comma-separated names of SETTINGS to run (off always runs)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    chosen = {name: SETTINGS[name] for name in SETTINGS
              if name == "off" or args.settings is None or name in args.settings.split(",")}
    if args.quick:
        args.model, args.size, args.steps, args.repeats = "timm/test_resnet", 32, 2, 2

    import torch

    from tune_app.training import DataConfig, TrainConfig, TrainingRun, build_data

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    data_config = DataConfig(dataset="digits", image_size=args.size)
    data = build_data(data_config)
    runs = {}
    for name, knobs in chosen.items():
        config = TrainConfig(model=args.model, data=data_config, batch_size=args.batch_size, epochs=1000, lr=1e-3,
                             weight_decay=0.05, amp=args.amp, seed=0, device=args.device, **knobs)
        runs[name] = TrainingRun(config, data=data)
        runs[name].train_one_epoch(max_steps=2)  # warm-up: first allocations, cuDNN's search
    sync = C.cuda_sync(args.device)
    wall: dict[str, list[float]] = {name: [] for name in chosen}
    cpu: dict[str, list[float]] = {name: [] for name in chosen}
    names = list(chosen)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            with C.Stopwatch(sync) as sw:
                runs[name].train_one_epoch(max_steps=args.steps)
            wall[name].append(sw.seconds / args.steps)
            cpu[name].append(sw.cpu_seconds / args.steps)
    rows = []
    for name in chosen:
        target = TARGETS.get(name, 1.05)
        by_cpu = [k / o for k, o in zip(cpu[name], cpu["off"])]
        by_wall = [k / o for k, o in zip(wall[name], wall["off"])]
        verdict = by_cpu if args.device == "cpu" else by_wall
        rows.append({"setting": name, "step_ms": 1000 * C.median(wall[name]),
                     "step_cpu_ms": 1000 * C.median(cpu[name]), "x_off_wall": C.median(by_wall),
                     "x_off": C.median(verdict), "x_off_spread": C.spread(verdict),
                     "target": target, "target_met": name == "off" or C.median(verdict) <= target,
                     "wall_repeats": wall[name], "cpu_repeats": cpu[name]})
    print(f"{args.model} @{args.size}, batch {args.batch_size}, amp {args.amp}, {args.device}; {args.repeats} rounds "
          f"of {args.steps} steps; x_off: median per-round ratio to all knobs off "
          f"({'process CPU time' if args.device == 'cpu' else 'wall time'})")
    print(C.table(rows, ["setting", "step_ms", "step_cpu_ms", "x_off_wall", "x_off", "x_off_spread", "target",
                         "target_met"]))
    suffix = "_cuda" if args.device.startswith("cuda") else ""
    path = C.write_json(f"knob_cost{suffix}" + ("" if args.settings is None else "_some"),
                        {"machine": C.machine_info(args.device), "git": C.git_state(), "args": vars(args),
                         "rows": rows}, args.out)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
