"""After SIGTERM: how soon the supervisor's reports of a large experiment are on disk.

SLURM (KillWait) and Kubernetes (terminationGracePeriodSeconds) send SIGKILL 30 s after
SIGTERM. When a sweep's Ray driver ends without its reports, tune-app's supervisor (a
process without Ray) writes them from disk: the CSVs, ``report.md`` and
``best_config.yaml`` first, then parameter importance and ``report.html``. This measures
that path as it runs then: a fresh process (its imports included) on a synthetic
experiment of ``--trials`` trials x ``--epochs`` epochs laid out as Ray writes it
(``tests/report/synthetic.py``), the time from the process's start to each file's first
appearance and to its end (``report.md`` is rewritten with parameter importance last), medians of
``--repeats``. Target: every file within 30 s of the start; if not, the CSVs are.

    python benchmarks/signal_reports.py                # 2,000 trials x 20 epochs, 3 repeats: ~2 min
    python benchmarks/signal_reports.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

TARGET_S = 30.0
FILES = ("results.csv", "history.csv", "report.md", "best_config.yaml", "report.html")  # in the order written
WRITE = (
    "import sys\n"
    "from tune_app.experiment.location import Location\n"
    "from tune_app.sweep.lifecycle import reports_from_disk\n"
    "reports_from_disk(Location(sys.argv[1], sys.argv[2]), csv_first=True)\n"
)


def once(directory: Path) -> dict[str, float]:
    """Seconds from the process's start to each file's first appearance (what a SIGKILL then would leave), and
    to the process's end (``all``), as the supervisor writes them after a signal."""
    for name in FILES:
        (directory / name).unlink(missing_ok=True)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", WRITE, str(directory.parent), directory.name], cwd=C.ROOT)
    seen: dict[str, float] = {}
    while proc.poll() is None:  # each file is renamed into place whole: it exists once it is complete
        for name in FILES:
            if name not in seen and (directory / name).exists():
                seen[name] = time.monotonic() - start
        time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"the reports failed (exit {proc.returncode})")
    return {**seen, "all": time.monotonic() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 trials, 1 repeat")
    parser.add_argument("--out", help="result file (default benchmarks/results/signal_reports.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.repeats = 100, 1
    sys.path.insert(0, str(C.ROOT))
    from tests.report.synthetic import sweep

    with tempfile.TemporaryDirectory(prefix="signal-reports-") as tmp:
        directory = sweep(Path(tmp) / "big", n=args.trials, epochs=args.epochs)
        runs = [once(directory) for _ in range(args.repeats)]
    row = {"trials": args.trials, "epochs": args.epochs,
           **{f"{name}_s": statistics.median(r[name] for r in runs) for name in (*FILES, "all")}}
    row["csv_within_target"] = max(row["results.csv_s"], row["history.csv_s"]) <= TARGET_S
    row["all_within_target"] = row["all_s"] <= TARGET_S
    print(C.table([row], ["trials", "epochs", *(f"{name}_s" for name in (*FILES, "all")), "csv_within_target",
                          "all_within_target"]))
    C.write_json("signal_reports", {"machine": C.machine_info(), "git": C.git_state(), "target_s": TARGET_S,
                                    "repeats": runs, "median": row}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
