"""Training speed of tune-app's training function against a hand-written timm loop.

Both sides train the same model (same seed, so the same initial weights) on the same
in-memory digits tensors with the same DataLoader settings, batch size, precision and
optimizer (AdamW from timm's ``create_optimizer_v2``, weight decay split off biases and
norms as tune-app does). One repeat is ``--steps`` training steps (``train_one_epoch(max_steps=...)``
on both sides); the two sides alternate (A B A B ...) after a warm-up repeat each, and
the table quotes medians: images/s by wall time, their ratio, the median of the
per-pair ratios, and on the CPU the ratio by process CPU time, which other jobs on a
shared machine disturb least (the default is one torch thread, as each sweep trial gets).

- A: ``TrainingRun(TrainConfig(...)).train_one_epoch()`` (what every trial runs)
- B: :class:`_common.HandLoop` (the loop a user writes: forward, loss, backward, step)

Target: tune-app >= 0.97x the hand-written loop's images/s (judged on the CPU by the
CPU-time ratio, on CUDA by the wall-time ratio). An A/A control (a second copy of the
hand-written loop against the first, same protocol) shows the noise floor.

It also measures the cost of the per-epoch checkpoint a trial writes: ``torch.save(
run.state_dict())`` into a temporary directory, then ``torch.load`` + ``load_state_dict``,
relative to one epoch (train + evaluate).

    python benchmarks/engine_throughput.py              # the real run (~7 min on 2 CPU cores)
    python benchmarks/engine_throughput.py --quick      # smoke run (seconds)
    python benchmarks/engine_throughput.py --device cuda --models timm/resnet50@224 --amp off,bf16,fp16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import _common as C

TARGET = 0.97


def parse_models(text: str) -> list[tuple[str, int]]:
    """``timm/resnet18@32,timm/resnet10t@32`` -> [(name, image size), ...]."""
    out = []
    for item in text.split(","):
        name, _, size = item.strip().partition("@")
        out.append((name if "/" in name else f"timm/{name}", int(size or 32)))
    return out


def build_pair(model: str, size: int, amp: str, channels_last: bool, args: argparse.Namespace, data, epochs: int):
    """(tune-app's TrainingRun, the hand-written loop) over the same data, seed and settings."""
    from tune_app.training import DataConfig, TrainConfig, TrainingRun

    config = TrainConfig(model=model, data=DataConfig(dataset="digits", image_size=size, num_workers=args.num_workers),
                         batch_size=args.batch_size, epochs=epochs, optimizer="adamw", lr=1e-3,
                         weight_decay=args.weight_decay, amp=amp, seed=0, device=args.device,
                         channels_last=channels_last)
    run = TrainingRun(config, data=data)
    hand = C.HandLoop(model, data, batch_size=args.batch_size, lr=1e-3, weight_decay=args.weight_decay, amp=amp,
                      device=args.device, channels_last=channels_last, num_workers=args.num_workers, seed=0)
    return run, hand


def interleaved(a, b, repeats: int, sync) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time ``a`` and ``b`` alternately: A B, B A, A B, ... (whoever goes first in a round gains nothing).

    Returns wall seconds and process CPU seconds, each ``{"a": [...], "b": [...]}``.
    """
    wall: dict[str, list[float]] = {"a": [], "b": []}
    cpu: dict[str, list[float]] = {"a": [], "b": []}
    sides = {"a": a, "b": b}
    for r in range(repeats):
        for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
            with C.Stopwatch(sync) as sw:
                sides[side]()
            wall[side].append(sw.seconds)
            cpu[side].append(sw.cpu_seconds)
    return wall, cpu


def compare_row(images: int, wall: dict, cpu_s: dict, on_cpu: bool) -> dict:
    ips = {k: [images / s for s in v] for k, v in wall.items()}
    pair = [a / b for a, b in zip(ips["a"], ips["b"])]
    row = {"tune_app_img_s": C.median(ips["a"]), "hand_img_s": C.median(ips["b"]),
           "ratio": C.median(ips["a"]) / C.median(ips["b"]), "ratio_paired": C.median(pair),
           "ratio_paired_spread": C.spread(pair),
           "tune_app_img_s_repeats": ips["a"], "hand_img_s_repeats": ips["b"]}
    if on_cpu:  # single-threaded CPU work: CPU time is what a shared machine disturbs least
        cips = {k: [images / s for s in v] for k, v in cpu_s.items()}
        row.update(tune_app_img_cpu_s=C.median(cips["a"]), hand_img_cpu_s=C.median(cips["b"]),
                   ratio_cpu_time=C.median(cips["a"]) / C.median(cips["b"]),
                   ratio_cpu_time_paired=C.median(a / b for a, b in zip(cips["a"], cips["b"])))
    return row


def throughput(args: argparse.Namespace) -> list[dict]:
    import torch

    from tune_app.training import build_data
    from tune_app.training.datasets import DataConfig

    sync = C.cuda_sync(args.device)
    on_cpu = not args.device.startswith("cuda")
    rows = []
    for model, size in parse_models(args.models):
        data = build_data(DataConfig(dataset="digits", image_size=size))
        for channels_last in args.channels_last:
            for amp in args.amp:
                run, hand = build_pair(model, size, amp, channels_last, args, data, args.warmup + args.repeats)
                steps = args.steps or len(run.train_loader)
                if steps > len(run.train_loader):
                    raise SystemExit(f"--steps {steps}: an epoch of {model}@{size} has {len(run.train_loader)}")
                images = steps * args.batch_size  # drop_last: full batches only
                for _ in range(args.warmup):  # first passes: allocator, cuDNN autotuning, caches
                    run.train_one_epoch(max_steps=steps)
                    hand.train_one_epoch(max_steps=steps)
                wall, cpu_s = interleaved(partial(run.train_one_epoch, max_steps=steps),
                                          partial(hand.train_one_epoch, max_steps=steps), args.repeats, sync)
                row = {"model": model, "image_size": size, "amp": amp, "channels_last": channels_last,
                       "batch_size": args.batch_size, "steps": steps, "repeats": args.repeats,
                       "compared": "tune-app / hand", **compare_row(images, wall, cpu_s, on_cpu)}
                # The verdict: on the CPU by process CPU time (one thread; what other jobs on a shared
                # machine disturb least, see the A/A control), on CUDA by wall time.
                row["verdict_by"] = "ratio_cpu_time" if on_cpu else "ratio"
                row["target_met"] = row[row["verdict_by"]] >= TARGET
                rows.append(row)
                report(row, on_cpu)
                if args.control and len(rows) == 1:
                    # A/A control: a second copy of the hand-written loop against the first, same protocol.
                    # Its distance from 1.0 is the noise floor of this machine for these ratios.
                    twin = C.HandLoop(model, data, batch_size=args.batch_size, lr=1e-3,
                                      weight_decay=args.weight_decay, amp=amp, device=args.device,
                                      channels_last=channels_last, num_workers=args.num_workers, seed=0)
                    for _ in range(args.warmup):
                        twin.train_one_epoch(max_steps=steps)
                    wall, cpu_s = interleaved(partial(twin.train_one_epoch, max_steps=steps),
                                              partial(hand.train_one_epoch, max_steps=steps), args.repeats, sync)
                    control = {**row, "compared": "hand copy / hand (A/A control)",
                               **compare_row(images, wall, cpu_s, on_cpu)}
                    control["target_met"] = None
                    rows.append(control)
                    report(control, on_cpu)
                    del twin
                del run, hand
                if not on_cpu:
                    torch.cuda.empty_cache()
    return rows


def report(row: dict, on_cpu: bool) -> None:
    extra = f"; CPU-time ratio {row['ratio_cpu_time']:.3f}" if on_cpu else ""
    print(f"  {row['model']}@{row['image_size']} amp={row['amp']} channels_last={row['channels_last']} "
          f"[{row['compared']}]: {row['tune_app_img_s']:.0f} vs {row['hand_img_s']:.0f} img/s, ratio "
          f"{row['ratio']:.3f} (paired median {row['ratio_paired']:.3f}, repeats {row['ratio_paired_spread']}){extra}",
          flush=True)


def checkpoint_cost(args: argparse.Namespace) -> list[dict]:
    """torch.save(run.state_dict()) to a temp dir, torch.load + load_state_dict, against an epoch."""
    import torch

    from tune_app.training import TrainConfig, TrainingRun, build_data
    from tune_app.training.datasets import DataConfig

    sync = C.cuda_sync(args.device)
    rows = []
    for model, size in parse_models(args.checkpoint_models):
        data = build_data(DataConfig(dataset="digits", image_size=size))
        config = TrainConfig(model=model, data=DataConfig(image_size=size, num_workers=args.num_workers),
                             batch_size=args.batch_size, epochs=100, lr=1e-3,
                             weight_decay=args.weight_decay, amp="off", device=args.device)
        run = TrainingRun(config, data=data)
        run.run_epoch()  # warm-up; also gives the optimizer its state (AdamW moments), as in a real checkpoint
        epoch_s, save_s, load_s, sizes = [], [], [], []
        for _ in range(args.checkpoint_repeats):
            with C.Stopwatch(sync) as sw:
                run.run_epoch()  # train + evaluate + schedule: one trial epoch
            epoch_s.append(sw.seconds)
            with tempfile.TemporaryDirectory() as directory:  # as the Ray adapter does each epoch
                path = Path(directory) / "state.pt"
                with C.Stopwatch(sync) as sw:
                    torch.save(run.state_dict(), path)
                save_s.append(sw.seconds)
                sizes.append(path.stat().st_size)
                with C.Stopwatch(sync) as sw:
                    state = torch.load(path, map_location=run.device, weights_only=True)
                    run.load_state_dict(state)
                load_s.append(sw.seconds)
        row = {
            "model": model, "image_size": size, "state_mb": sizes[-1] / 2**20,
            "epoch_s": C.median(epoch_s), "save_s": C.median(save_s), "load_s": C.median(load_s),
            "save_load_s": C.median(save + load for save, load in zip(save_s, load_s)),
        }
        row["save_share_of_epoch"] = row["save_s"] / row["epoch_s"]
        row["save_load_share_of_epoch"] = row["save_load_s"] / row["epoch_s"]
        row.update(epoch_s_repeats=epoch_s, save_s_repeats=save_s, load_s_repeats=load_s)
        rows.append(row)
        print(f"  {model}@{size}: state {row['state_mb']:.1f} MiB, epoch {row['epoch_s']:.2f}s, save "
              f"{row['save_s'] * 1e3:.0f} ms, load {row['load_s'] * 1e3:.0f} ms = "
              f"{row['save_load_share_of_epoch']:.2%} of an epoch", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: a tiny model, 1 repeat")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--models", help="comma-separated name@image_size (default: resnet18@32, resnet10t@32)")
    parser.add_argument("--amp", help="comma-separated precisions (default: off,bf16; on cuda off,bf16,fp16)")
    parser.add_argument("--channels-last", default="auto",
                        help="auto (on CUDA only), on, off, or on,off to measure both")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default on the CPU: 1, as each trial of a sweep gets; on CUDA: torch's)")
    parser.add_argument("--steps", type=int, default=11,
                        help="training steps per timed repeat (0: one epoch; digits at batch 64 has 22)")
    parser.add_argument("--repeats", type=int, default=12, help="timed repeats per side, interleaved (median quoted)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats per side first")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip the A/A control (a second hand-written loop against the first)")
    parser.add_argument("--checkpoint-models", help="name@size list for the checkpoint cost "
                                                    "(default: resnet18@32, test_resnet@16)")
    parser.add_argument("--checkpoint-repeats", type=int, default=5)
    parser.add_argument("--skip-checkpoint", action="store_true")
    parser.add_argument("--out", help="result file (default benchmarks/results/engine_throughput[_cuda].json)")
    args = parser.parse_args(argv)

    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 1
    if args.quick:
        args.models = args.models or "timm/test_resnet@16"
        args.checkpoint_models = args.checkpoint_models or "timm/test_resnet@16"
        args.repeats, args.warmup, args.checkpoint_repeats, args.steps, args.control = 2, 1, 2, 5, False
    args.models = args.models or "timm/resnet18@32,timm/resnet10t@32"
    args.checkpoint_models = args.checkpoint_models or "timm/resnet18@32,timm/test_resnet@16"
    args.amp = (args.amp or ("off,bf16,fp16" if cuda else "off,bf16")).split(",")
    args.channels_last = {"auto": [cuda], "on": [True], "off": [False], "on,off": [True, False],
                          "off,on": [False, True]}[args.channels_last]
    threads = args.threads or (None if cuda else 1)
    if threads:
        torch.set_num_threads(threads)

    started = time.time()
    print(f"engine throughput on {args.device} ({C.cpu_model()}, torch threads {torch.get_num_threads()})", flush=True)
    rows = throughput(args)
    ckpt = [] if args.skip_checkpoint else checkpoint_cost(args)

    print(f"\nTraining throughput, images/s: medians of {args.repeats} repeats of {args.steps or 'one epoch of'} "
          f"steps per side, A/B interleaved")
    columns = ["model", "image_size", "amp", "channels_last", "tune_app_img_s", "hand_img_s", "ratio", "ratio_paired"]
    if not cuda:
        columns += ["ratio_cpu_time"]
    columns.insert(0, "compared")
    print(C.table([{**r, "target >= 0.97": {True: "yes", False: "NO", None: "-"}[r["target_met"]]} for r in rows],
                  columns + ["target >= 0.97"]))
    if ckpt:
        print("\nPer-epoch checkpoint (torch.save of run.state_dict() to a temp dir, then torch.load + "
              "load_state_dict), medians")
        print(C.table(ckpt, ["model", "image_size", "state_mb", "epoch_s", "save_s", "load_s", "save_load_s",
                             "save_load_share_of_epoch"]))
    payload = {
        "benchmark": "engine_throughput", "quick": args.quick, "machine": C.machine_info(args.device),
        "settings": {k: v for k, v in vars(args).items() if k != "out"}, "target_ratio": TARGET,
        "all_targets_met": all(r["target_met"] for r in rows if r["target_met"] is not None), "seconds": time.time() - started,
        "throughput": rows, "checkpoint": ckpt,
    }
    name = "engine_throughput" + ("_cuda" if cuda else "")
    path = C.write_json(name, payload, args.out)
    print(f"\nwrote {path} ({payload['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
