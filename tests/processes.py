"""Processes the tests start: found, waited for and killed by their session id, never by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def session_processes(sid: int) -> list[int]:
    """Pids of the live processes in session ``sid`` (field 6 of /proc/<pid>/stat): not zombies, which an
    orphan becomes until PID 1 reaps it, and a container's PID 1 may never do."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session this test started (the driver and the Ray it started)."""
    for _ in range(20):
        pids = session_processes(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (code {proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def start_search(spec: Path, storage: Path) -> subprocess.Popen:
    """``tune-app search`` as a user starts it (under its supervisor), in a process session of its own."""
    return subprocess.Popen([sys.executable, "-m", "tune_app", "search", str(spec), "--storage", str(storage)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def resume_to_the_end(experiment: Path, trials: int, epochs: int) -> dict[str, list[dict]]:
    """``tune-app resume``: every trial once in results.csv, finished with all its epochs; the result lines after."""
    from .conftest import result_lines

    resumed = subprocess.run([sys.executable, "-m", "tune_app", "resume", str(experiment)],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    results = pd.read_csv(experiment / "results.csv")
    table = results[["trial_id", "status", "epochs"]].to_string() + "\n" + resumed.stdout + resumed.stderr
    assert len(results) == trials and results["trial_id"].is_unique, table
    assert set(results["status"]) == {"TERMINATED"} and (results["epochs"] == epochs).all(), table
    return result_lines(experiment)
