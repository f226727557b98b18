"""Hand-made experiment directories laid out as Ray Tune 2.60 writes them, with known numbers.

``write_experiment`` takes trials as plain data (config, status, per-epoch metrics, start
time and seconds per epoch); ``sweep`` makes a realistic 100-trial ASHA sweep for the
cost measurement and the screenshot.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

T0 = 1_795_600_000.0  # the experiment's first second (wall clock)


@dataclass
class Trial:
    """One trial: ``metrics`` holds one dict per epoch; epoch ``i`` ends at ``start + sum(seconds[:i+1])``."""

    trial_id: str
    config: dict
    metrics: list[dict]
    status: str = "TERMINATED"
    start: float = 0.0  # seconds after T0
    seconds: list[float] = field(default_factory=list)  # per epoch; default 10 s each
    error: str | None = None


def spec(name: str = "synthetic", metric: str = "val_acc", mode: str = "max", epochs: int | None = 4,
         scheduler: str = "asha") -> dict:
    train = {"metric": metric, "mode": mode} | ({"epochs": epochs} if epochs is not None else {})
    return {"name": name, "task": "classification", "model": {"name": "timm/resnet18"},
            "data": {"dataset": "digits"}, "train": train,
            "tune": {"search_alg": "optuna", "scheduler": scheduler, "num_samples": 8}}


def write_experiment(root: Path, trials: list[Trial], spec_data: dict | None = None,
                     parameters: dict | None = None) -> Path:
    """Lay ``trials`` out under ``root``: experiment state, trial directories, spec.yaml, parameters.json."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for n, trial in enumerate(trials, start=1):
        tag = ",".join(f"{k}={v}" for k, v in trial.config.items())
        started = trial.metrics or trial.error
        logdir = f"train_fn_{trial.trial_id}_{n}_{tag[:60]}_2026-11-27_09-59-00" if started else None
        entries.append([json.dumps({"trainable_name": "train_fn", "trial_id": trial.trial_id, "status": trial.status,
                                    "config": trial.config, "relative_logdir": logdir,
                                    "experiment_tag": f"{n}_{tag}"}), "{}"])
        if logdir is None:
            continue
        directory = root / logdir
        directory.mkdir()
        (directory / "params.json").write_text(json.dumps(trial.config))
        seconds = trial.seconds or [10.0] * len(trial.metrics)
        lines, total = [], 0.0
        for i, metrics in enumerate(trial.metrics, start=1):
            total += seconds[i - 1]
            lines.append(json.dumps({"epoch": i, **metrics, "timestamp": int(T0 + trial.start + total),
                                     "done": trial.status == "TERMINATED" and i == len(trial.metrics),
                                     "training_iteration": i, "trial_id": trial.trial_id,
                                     "time_this_iter_s": seconds[i - 1], "time_total_s": total,
                                     "time_since_restore": total, "iterations_since_restore": i,
                                     "config": trial.config}))
        (directory / "result.json").write_text("".join(line + "\n" for line in lines))
        if trial.error:
            (directory / "error.txt").write_text(f"Failure # 1\nTraceback ...\n{trial.error}\n")
    (root / "experiment_state-2026-11-27_09-59-00.json").write_text(json.dumps({"trial_data": entries}))
    if spec_data is not None:
        (root / "spec.yaml").write_text(yaml.safe_dump(spec_data, sort_keys=False))
    if parameters is not None:
        (root / "parameters.json").write_text(json.dumps(parameters, indent=2))
    return root


SWEEP_PARAMETERS = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True, "condition": {}},
    "weight_decay": {"type": "categorical", "choices": [0.0, 0.0001, 0.01], "condition": {}},
    "freeze_depth": {"type": "int", "low": 0, "high": 4, "log": False, "condition": {}},
    "amp": {"type": "categorical", "choices": ["off", "bf16"], "condition": {}},
    "loss": {"type": "categorical", "choices": ["ce", "focal"], "condition": {}},
    "loss.gamma": {"type": "categorical", "choices": [1.0, 2.0, 3.0], "condition": {"loss": "focal"}},
    "loss.alpha": {"type": "float", "low": 0.25, "high": 0.9, "log": False, "condition": {"loss": "focal"}},
    "scheduler": {"type": "categorical", "choices": ["cosine", "step", "onecycle"], "condition": {}},
    "scheduler.step_size": {"type": "int", "low": 1, "high": 4, "log": False, "condition": {"scheduler": "step"}},
}


def sweep(root: Path, n: int = 100, epochs: int = 8, seed: int = 0, concurrency: int = 2,
          scheduler: str = "asha") -> Path:
    """A plausible ASHA sweep: accuracy peaks near lr=3e-3, focal and cosine help; lr > 0.07 diverges."""
    rng = random.Random(seed)
    workers = [0.0] * concurrency
    finished: list[list[float]] = [[] for _ in range(epochs + 1)]  # accuracies reached per epoch (ASHA rungs)
    trials = []
    for i in range(n):
        config = {"lr": 10 ** rng.uniform(-4, -1), "weight_decay": rng.choice([0.0, 0.0001, 0.01]),
                  "freeze_depth": rng.randint(0, 4), "amp": rng.choice(["off", "bf16"]),
                  "loss": rng.choice(["ce", "focal"])}
        if config["loss"] == "focal":
            config |= {"loss.gamma": rng.choice([1.0, 2.0, 3.0]), "loss.alpha": rng.uniform(0.25, 0.9)}
        config["scheduler"] = rng.choice(["cosine", "step", "onecycle"])
        if config["scheduler"] == "step":
            config["scheduler.step_size"] = rng.randint(1, 4)
        ceiling = (0.97 - 0.09 * (math.log10(config["lr"]) + 2.5) ** 2 - 0.03 * config["freeze_depth"]
                   + (0.015 if config["loss"] == "focal" else 0) + (0.01 if config["scheduler"] == "cosine" else 0))
        metrics, status, error = [], "TERMINATED", None
        for e in range(1, epochs + 1):
            if config["lr"] > 0.07 and e == 2:
                status, error = "ERROR", f"DivergedError: training loss is nan in epoch 2 (lr={config['lr']:.3g})"
                break
            acc = ceiling * (1 - 0.6 * 0.55 ** e) + rng.gauss(0, 0.01)
            metrics.append({"train_loss": 2.2 * (1 - acc) + 0.05, "val_loss": 2.0 * (1 - acc) + 0.1, "val_acc": acc,
                            "val_f1": acc - 0.02, "lr": config["lr"], "train_throughput": 900 + rng.uniform(-50, 50)})
            finished[e].append(acc)
            rung = scheduler == "asha" and e in (2, 4) and len(finished[e]) >= 4  # grace period 2
            if rung and acc < sorted(finished[e])[len(finished[e]) * 2 // 3]:
                break  # ASHA: below the top third of its rung
        seconds = [rng.uniform(8, 12) * (1 - 0.12 * config["freeze_depth"]) for _ in metrics]
        w = min(range(concurrency), key=lambda k: workers[k])
        start = workers[w]
        workers[w] += sum(seconds) + 1.0
        trials.append(Trial(f"s{seed}{i:06x}", config, metrics, status, start, seconds, error))
    return write_experiment(root, trials, spec(f"sweep-{scheduler}", epochs=epochs, scheduler=scheduler),
                            SWEEP_PARAMETERS)


# ------------------------------------------------------------ known numbers
KNOWN_PARAMETERS = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True, "condition": {}},
    "freeze_depth": {"type": "int", "low": 0, "high": 4, "log": False, "condition": {}},
    "loss": {"type": "categorical", "choices": ["ce", "focal"], "condition": {}},
    "loss.gamma": {"type": "categorical", "choices": [1.0, 2.0], "condition": {"loss": "focal"}},
    "scheduler": {"type": "categorical", "choices": ["cosine", "step"], "condition": {}},
    "scheduler.step_size": {"type": "int", "low": 1, "high": 4, "log": False, "condition": {"scheduler": "step"}},
}
DIVERGED = "DivergedError: training loss is nan in epoch 2 (lr=0.05)"


def curve(best: float, epochs: int, peak: int | None = None) -> list[dict]:
    """``epochs`` results whose best val_acc is ``best``, reached at epoch ``peak`` (default: the last)."""
    peak = peak or epochs
    values = [best - 0.05 * (peak - e) if e <= peak else best - 0.02 * (e - peak) for e in range(1, epochs + 1)]
    return [{"val_acc": round(v, 6), "val_loss": round(1.0 - v, 6), "lr": 0.0} for v in values]


def known(root: Path, parameters: bool = True) -> Path:
    """Nine trials, budget 4 epochs; every number the report tests assert follows from this table.

    ==  =====  =====  ========  ====  ==  ==========  ======  =====  =====
    id  loss   gamma  sched     lr    fd  status      epochs  best   start
    ==  =====  =====  ========  ====  ==  ==========  ======  =====  =====
    t1  ce            cosine    1e-3  0   TERMINATED  4       0.90   0     (peak at epoch 3)
    t2  ce            step/2    1e-2  1   TERMINATED  2       0.70   0     (stopped early)
    t3  focal  2.0    cosine    3e-3  0   TERMINATED  4       0.95   20
    t4  focal  1.0    step/1    1e-4  2   TERMINATED  1       0.60   40    (stopped early)
    t5  focal  2.0    cosine    5e-4  1   TERMINATED  4       0.85   50
    t6  ce            cosine    0.05  0   ERROR       1       0.50   60    (diverged)
    t7  ce            step/3    2e-3  2   TERMINATED  4       0.80   70
    t8  focal  1.0    cosine    2e-2  0   TERMINATED  2       0.75   90    (stopped early)
    t9  ce            cosine    3e-4  1   PENDING     0                  (no directory yet)
    ==  =====  =====  ========  ====  ==  ==========  ======  =====  =====

    Every epoch takes 10 s; the last result arrives at 90 + 20 = 110 s (t8) or 70 + 40 = 110 s (t7).
    """
    def cfg(lr, fd, loss, sched, gamma=None, step=None):
        c = {"lr": lr, "freeze_depth": fd, "loss": loss}
        if gamma is not None:
            c["loss.gamma"] = gamma
        c["scheduler"] = sched
        if step is not None:
            c["scheduler.step_size"] = step
        return c

    trials = [
        Trial("t1", cfg(1e-3, 0, "ce", "cosine"), curve(0.90, 4, peak=3), start=0),
        Trial("t2", cfg(1e-2, 1, "ce", "step", step=2), curve(0.70, 2), start=0),
        Trial("t3", cfg(3e-3, 0, "focal", "cosine", gamma=2.0), curve(0.95, 4), start=20),
        Trial("t4", cfg(1e-4, 2, "focal", "step", gamma=1.0, step=1), curve(0.60, 1), start=40),
        Trial("t5", cfg(5e-4, 1, "focal", "cosine", gamma=2.0), curve(0.85, 4), start=50),
        Trial("t6", cfg(0.05, 0, "ce", "cosine"), curve(0.50, 1), "ERROR", start=60, error=DIVERGED),
        Trial("t7", cfg(2e-3, 2, "ce", "step", step=3), curve(0.80, 4), start=70),
        Trial("t8", cfg(2e-2, 0, "focal", "cosine", gamma=1.0), curve(0.75, 2), start=90),
        Trial("t9", cfg(3e-4, 1, "ce", "cosine"), [], "PENDING"),
    ]
    return write_experiment(root, trials, spec("known", epochs=4), KNOWN_PARAMETERS if parameters else None)
