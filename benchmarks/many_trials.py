"""Thousands of trials: what each added trial costs the sweep, the driver's memory, and the reports' time.

Three parts (``--part sweeps``, ``--part reports``, ``--part study``; default all):

- sweeps: ``tune-app search`` (each a fresh process) of N one-epoch tiny trials (digits at
  8 px, ``timm/test_resnet``, random search over lr, FIFO, 2 at a time), for each N of
  ``--trials`` (default 40, 320, 2000). The marginal overhead between two sizes is the slot
  time an added trial costs beyond its own training:
  ``(wall_b - wall_a) x concurrency / (N_b - N_a) - t_trial`` with ``t_trial`` the median
  ``time_total_s`` of the larger sweep's trials. The driver's peak RSS is its ``VmHWM``,
  read every second while it runs. Targets: <= 0.3 s per trial, RSS <= 2 GiB. Each sweep
  also records the share of the driver's time its report rewrites took (``ReportRefresh``
  logs it at INFO when the sweep ends). Target: <= 2%.
- study: the Optuna study's cost per trial on the driver (SQLite in a temporary folder: ask,
  one reported epoch, the three user attributes, tell; what ``StudySearch`` does per trial),
  at the study's first 40 trials, around 320 and at 2000.
- reports: a synthetic experiment of ``--report-trials`` (10,000) trials x 20 epochs laid out
  as Ray writes it (``tests/report/synthetic.py``); the time of the final ``write_reports``
  (every file, importance and HTML included) and of an intermediate one (CSV + Markdown,
  what the driver rewrites while a sweep runs), medians of ``--repeats``. Target: final <= 30 s.
  The share of the driver's time spent refreshing is bounded by ``ReportRefresh.SHARE`` (2%):
  the interval between rewrites grows to 50 times the last one's duration.

    python benchmarks/many_trials.py --part reports            # ~3 min
    python benchmarks/many_trials.py --part sweeps --trials 40,320   # ~10 min here
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common as C
import yaml


def spec(n: int, storage: Path) -> dict:
    return {"name": f"many-{n}", "task": "classification",
            "data": {"dataset": "digits", "image_size": 8, "batch_size": 64},
            "model": {"name": "timm/test_resnet"},
            "train": {"epochs": 1, "optimizer": "adamw", "seed": 0, "metric": "val_acc"},
            "search": {"lr": {"loguniform": [1.0e-3, 1.0e-2]}},
            "tune": {"num_samples": n, "search_alg": "random", "scheduler": "fifo", "max_concurrent": 2,
                     "resources": {"cpu": 1, "gpu": 0}, "storage": str(storage)}}


def peak_rss(pid: int, stop: threading.Event, seen: list[int]) -> None:
    """VmHWM of ``pid`` (kB), polled until ``stop``: the last reading is the process's peak."""
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    seen.append(int(line.split()[1]))
        except OSError:
            return
        stop.wait(1.0)


# `tune-app search` with tune_app.sweep.callbacks' INFO messages shown: the report rewrites' cost
DRIVER = ("import logging, sys\n"
          "logging.basicConfig(level=logging.WARNING)\n"
          "logging.getLogger('tune_app.sweep.callbacks').setLevel(logging.INFO)\n"
          "from tune_app.cli import main\n"
          "sys.exit(main(sys.argv[1:]))\n")
REWRITES = re.compile(r"report rewrites while the sweep ran: (?P<count>\d+), (?P<seconds>[\d.]+) s in all, "
                      r"(?P<share>[\d.]+)% of the driver's")


def one_sweep(n: int, root: Path) -> dict:
    import pandas as pd

    path = root / f"many-{n}.yaml"
    path.write_text(yaml.safe_dump(spec(n, root / "runs")))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, "search", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=C.ROOT)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=peak_rss, args=(proc.pid, stop, seen), daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    stop.set()
    if proc.returncode != 0:
        raise RuntimeError(f"tune-app search of {n} trials failed:\n{out[-3000:]}")
    results = pd.read_csv(root / "runs" / f"many-{n}" / "results.csv")
    rewrites = REWRITES.search(out)
    return {"trials": n, "wall_s": wall, "trial_s_median": float(results["time_total_s"].median()),
            "terminated": int((results["status"] == "TERMINATED").sum()),
            "driver_peak_rss_mib": max(seen) / 1024 if seen else None,
            "report_rewrites": int(rewrites["count"]) if rewrites else None,
            "report_rewrite_s": float(rewrites["seconds"]) if rewrites else None,
            "report_rewrite_share_pct": float(rewrites["share"]) if rewrites else None}


def sweeps(sizes: list[int]) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="many-trials-") as tmp:
        for n in sizes:
            rows.append(one_sweep(n, Path(tmp)))
            print(C.table([rows[-1]]), flush=True)
    marginal = []
    for a, b in itertools.pairwise(rows):
        per_trial = (b["wall_s"] - a["wall_s"]) * 2 / (b["trials"] - a["trials"]) - b["trial_s_median"]
        marginal.append({"from": a["trials"], "to": b["trials"], "overhead_s_per_trial": per_trial})
    print(C.table(marginal))
    return {"sweeps": rows, "marginal": marginal}


def study_cost(trials: int = 2000) -> dict:
    """Milliseconds per trial of what StudySearch does with an SQLite study, as the study grows."""
    sys.path.insert(0, str(C.ROOT))
    import optuna
    from optuna.distributions import FloatDistribution

    from tune_app.experiment.study import rdb_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    per_trial = []
    with tempfile.TemporaryDirectory(prefix="many-study-") as tmp:
        study = optuna.create_study(storage=rdb_storage(f"sqlite:///{tmp}/optuna.db"), study_name="many",
                                    direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
        space = {"lr": FloatDistribution(1e-3, 1e-2, log=True)}
        for _ in range(trials):
            start = time.perf_counter()
            trial = study.ask(fixed_distributions=space)
            trial.report(0.5, 1)
            for key in ("ray_trial_id", "epochs", "value"):
                trial.set_user_attr(key, 1)
            study.tell(trial, 0.5)
            per_trial.append(time.perf_counter() - start)
    rows = [{"trials": f"{a + 1}-{b}", "ms_per_trial_median": 1000 * statistics.median(per_trial[a:b])}
            for a, b in ((0, 40), (300, 340), (trials - 40, trials))]
    print(C.table(rows))
    return {"study": rows}


def reports(trials: int, epochs: int, repeats: int) -> dict:
    sys.path.insert(0, str(C.ROOT))
    from tests.report.synthetic import sweep
    from tune_app.report import write_reports

    with tempfile.TemporaryDirectory(prefix="many-reports-") as tmp:
        directory = sweep(Path(tmp) / "big", n=trials, epochs=epochs)
        row: dict = {"trials": trials, "epochs": epochs}
        for final in (True, False):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                _, _paths = write_reports(directory, final=final)
                times.append(time.perf_counter() - start)
            row["final_s" if final else "intermediate_s"] = statistics.median(times)
            row["final_s_repeats" if final else "intermediate_s_repeats"] = times
        row["html_mb"] = (directory / "report.html").stat().st_size / 1e6
    print(C.table([row], ["trials", "epochs", "final_s", "intermediate_s", "html_mb"]))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("sweeps", "reports", "study", "all"), default="all")
    parser.add_argument("--trials", default="40,320,2000", help="sweep sizes, comma-separated")
    parser.add_argument("--report-trials", type=int, default=10_000)
    parser.add_argument("--report-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    payload: dict = {"machine": C.machine_info(), "git": C.git_state(), "args": vars(args)}
    if args.part in ("reports", "all"):
        payload["reports"] = reports(args.report_trials, args.report_epochs, args.repeats)
    if args.part in ("study", "all"):
        payload.update(study_cost())
    if args.part in ("sweeps", "all"):
        payload.update(sweeps([int(n) for n in args.trials.split(",")]))
    print(f"written: {C.write_json('many_trials', payload, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
