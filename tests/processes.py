"""Processes the tests start: found, waited for and killed by their session id, never by name."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def session_processes(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (field 6 of /proc/<pid>/stat)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
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
