"""What ``train.deterministic: true`` costs: training images/s with it off and on, same model and data.

Two TrainingRuns of one config (digits resized to ``--size``), deterministic off and on,
timed alternately (off on, on off, ...) over ``--steps`` training steps per repeat; the
switch is global to torch, so it is set again before each side runs. Medians of the
repeats, and the median of the paired ratios on/off.

    python benchmarks/deterministic_cost.py                      # CPU: resnet10t@64
    python benchmarks/deterministic_cost.py --device cuda --model timm/resnet50 --size 224 --amp bf16
"""

from __future__ import annotations

import argparse
import sys

import _common as C


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="timm/resnet10t")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--amp", default="off")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    import torch

    from tune_app.training import DataConfig, TrainConfig, TrainingRun, build_data
    from tune_app.training.engine import set_deterministic

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    data = build_data(DataConfig(dataset="digits", image_size=args.size))
    runs = {}
    for on in (False, True):
        config = TrainConfig(model=args.model, data=DataConfig(dataset="digits", image_size=args.size),
                             batch_size=args.batch_size, epochs=1000, lr=1e-3, amp=args.amp, seed=0,
                             device=args.device, deterministic=on)
        runs[on] = TrainingRun(config, data=data)
    sync = C.cuda_sync(args.device)
    images = args.steps * args.batch_size
    rates: dict[bool, list[float]] = {False: [], True: []}
    for on in (False, True):  # warm-up: cuDNN's benchmark search and the first allocations
        set_deterministic(on)
        runs[on].train_one_epoch(max_steps=2)
    for r in range(args.repeats):
        for on in (False, True) if r % 2 == 0 else (True, False):
            set_deterministic(on)
            with C.Stopwatch(sync) as sw:
                runs[on].train_one_epoch(max_steps=args.steps)
            rates[on].append(images / sw.seconds)
    paired = [b / a for a, b in zip(rates[False], rates[True])]
    row = {"model": args.model, "image_size": args.size, "amp": args.amp, "batch_size": args.batch_size,
           "off_img_s": C.median(rates[False]), "on_img_s": C.median(rates[True]),
           "on_over_off": C.median(paired), "on_over_off_spread": C.spread(paired),
           "off_repeats": rates[False], "on_repeats": rates[True]}
    print(C.table([row], ["model", "image_size", "amp", "off_img_s", "on_img_s", "on_over_off", "on_over_off_spread"]))
    path = C.write_json(f"deterministic_cost{'_cuda' if args.device.startswith('cuda') else ''}",
                        {"machine": C.machine_info(args.device), "git": C.git_state(), "args": vars(args),
                         "rows": [row]}, args.out)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
