"""SIGTERM / SIGINT handling in a real process: reports on the first signal, at once on a second."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tune_app.sweep.interrupts import EXIT_CODES, interrupts

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path: Path, on_signal: str) -> subprocess.Popen:
    """A process whose main thread sleeps inside ``interrupts(on_signal)``; it prints ``ready`` when armed."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from tune_app.sweep.interrupts import interrupts
        out = Path({str(tmp_path / "out.txt")!r})
        def on_signal(name):
            {on_signal}
        with interrupts(on_signal):
            print("ready", flush=True)
            time.sleep(120)
        sys.exit(0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_first_signal_runs_the_handler_then_exits_with_128_plus_the_signal(tmp_path, signum):
    proc = start(tmp_path, "out.write_text(name)")
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == EXIT_CODES[signum] == 128 + signum
    assert (tmp_path / "out.txt").read_text() == signum.name


def test_a_second_signal_exits_at_once_while_the_reports_are_still_being_written(tmp_path):
    proc = start(tmp_path, "out.write_text('writing'); time.sleep(120)")
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while not (tmp_path / "out.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "out.txt").read_text() == "writing"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert time.monotonic() - sent < 5
    assert "SIGTERM again: exiting at once" in proc.stdout.read()


def test_it_exits_when_its_output_is_a_pipe_nobody_reads_any_more(tmp_path):
    """A dead supervisor's pipe, a closed terminal: the messages fail, the exit must not."""
    proc = start(tmp_path, "out.write_text(name); print('reports written', flush=True)")
    proc.stdout.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert (tmp_path / "out.txt").read_text() == "SIGTERM"


def test_the_previous_handlers_come_back_after_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with interrupts(lambda name: None):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.set_wakeup_fd(-1) == -1  # no wakeup fd left behind
