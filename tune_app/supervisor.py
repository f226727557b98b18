"""The ``tune-app`` process of a sweep: it runs the Ray driver as its child and keeps the reports whatever ends it.

Ray ends its driver process once the driver's raylet is gone (a signal to every process
of the job, as SLURM's ``scancel`` sends), and the kernel's out-of-memory killer picks
the driver, the biggest process: either takes the driver's own report writing with it.
So ``search``, ``resume``, ``extend``, ``compare`` and ``confirm`` run the driver
(``python -m tune_app ...``, the same command) in a child process, in a process group of
its own, and this process, which never imports Ray:

- forwards SIGTERM / SIGINT to the driver, which copies what Ray staged into the
  experiment and exits; a second signal ends both at once;
- hears from the driver (:mod:`tune_app.supervision`) of each experiment it runs, where
  Ray stages that experiment's files, and when its final reports are written;
- when the driver ends with an experiment's reports unwritten (a signal, Ray, the
  out-of-memory killer, a crash), copies what Ray staged, writes the reports from disk,
  says how to continue (``tune-app resume DIR``), and exits 143 / 130 after a signal,
  1 otherwise;
- stops whatever the driver left in its process group (a local Ray's processes).

The driver gets SIGTERM if this process dies (``PR_SET_PDEATHSIG``) and then writes the
reports itself, as it does when nobody supervises it (``tune-app`` called from Python).

Example:
    >>> needs_supervisor(["search", "quickstart"]), needs_supervisor(["search", "x.yaml", "--dry-run"])
    (True, False)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .supervision import EXIT_CODES, FD_VARIABLE, PID_VARIABLE

SUPERVISED = ("search", "resume", "extend", "compare", "confirm")  # the commands that run a Ray driver
GRACE_S = 10.0  # how long a signalled driver may take to copy what Ray staged before it is killed
PR_SET_PDEATHSIG = 1
PIPE_READ = 65536


def needs_supervisor(argv: list[str]) -> bool:
    """Whether ``tune-app argv`` runs a Ray driver that this process should supervise."""
    return (os.name == "posix" and bool(argv) and argv[0] in SUPERVISED
            and not {"--dry-run", "-h", "--help"} & set(argv) and FD_VARIABLE not in os.environ
            and os.environ.get("TUNE_APP_SUPERVISOR", "1") != "0")


@dataclass
class Watched:
    """One experiment the driver runs."""

    storage: str
    name: str
    staging: str | None = None  # where Ray's driver stages its files, once Ray runs
    copied: bool = False  # what Ray staged copied into it by the driver, after a signal
    reported: bool = False  # its final reports written by the driver


class Supervisor:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.experiments: dict[tuple[str, str], Watched] = {}
        self.signal: int | None = None
        self.signalled_at: float | None = None
        self.child: subprocess.Popen | None = None

    def run(self) -> int:
        read_end, write_end = os.pipe()
        env = {**os.environ, FD_VARIABLE: str(write_end), PID_VARIABLE: str(os.getpid())}
        previous = {signum: signal.signal(signum, self._forward) for signum in EXIT_CODES}
        try:
            self.child = subprocess.Popen([sys.executable, "-m", "tune_app", *self.argv], env=env,
                                          pass_fds=(write_end,), process_group=0, preexec_fn=_die_with_parent)
        except BaseException:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            raise
        os.close(write_end)
        with open(read_end, "rb", buffering=0) as pipe:
            code = self._wait(pipe)
        _stop_group(self.child.pid)  # a local Ray's processes the driver could not stop
        pending = [e for e in self.experiments.values() if not e.reported]
        if pending and (code not in (0, 2) or self.signal is not None):  # 2: bad input, nothing ran
            self._keep(pending, code)
        if self.signal is not None:
            return EXIT_CODES[self.signal]
        return code if code > 0 else (1 if code < 0 else 0)

    # ------------------------------------------------------------ the driver
    def _wait(self, pipe: BinaryIO) -> int:
        """The driver's exit code (minus the signal that ended it), hearing what it says meanwhile; the driver
        is killed if it outlives a forwarded signal by GRACE_S.

        One thread only: the kernel sends the driver its parent-death signal each time the thread that
        started it, or the thread it passed to, ends, so a second thread here would make it two signals,
        and the driver would take the second for a user's "exit at once".
        """
        assert self.child is not None
        pending = b""
        while (code := self.child.poll()) is None:
            if select.select([pipe], [], [], 0.5)[0]:
                pending = self._hear(pending + (pipe.read(PIPE_READ) or b""))
            if self.signalled_at is not None and time.monotonic() > self.signalled_at + GRACE_S:
                _say(f"the driver did not end {GRACE_S:.0f} s after the signal: killing it")
                _stop_group(self.child.pid)
                self.signalled_at = None
        deadline = time.monotonic() + 5  # what it said last (the write end closed with it)
        while time.monotonic() < deadline and select.select([pipe], [], [], 0.5)[0]:
            chunk = pipe.read(PIPE_READ)
            if not chunk:
                break
            pending = self._hear(pending + chunk)
        return code

    def _forward(self, signum: int, frame: object) -> None:
        """SIGTERM / SIGINT: to the driver; a second one ends both at once."""
        name = signal.Signals(signum).name
        assert self.child is not None
        if self.signal is not None:
            _say(f"{name} again: exiting at once")
            _stop_group(self.child.pid)
            os._exit(EXIT_CODES[self.signal])
        self.signal, self.signalled_at = signum, time.monotonic()
        _say(f"\n{name}: stopping the sweep; the reports are written from what is on disk "
             f"(a second signal exits at once)")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child.pid, signum)

    def _hear(self, data: bytes) -> bytes:
        """Take in the driver's complete lines; the incomplete rest is returned."""
        *lines, rest = data.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
                key = (event["storage"], event["name"])
            except (ValueError, KeyError, TypeError):
                continue  # not ours: never a reason to lose the reports
            watched = self.experiments.setdefault(key, Watched(*key))
            if event["event"] == "staging":
                watched.staging = event.get("root")
            elif event["event"] in ("copied", "reported"):
                setattr(watched, event["event"], True)
        return rest

    # ------------------------------------------------------------ the reports
    def _keep(self, pending: list[Watched], code: int) -> None:
        """The reports of the experiments the driver left unreported, and how to continue them."""
        if self.signal is None:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"ended with exit code {code}"
            hint = " (the out-of-memory killer sends it, as kill -9 does)" if code == -signal.SIGKILL else ""
            _say(f"\nthe sweep's driver {how}{hint} before writing its reports: writing them from what is on disk")
        from .experiment.location import Location
        from .sweep.lifecycle import copy_staged, reports_from_disk

        for watched in pending:
            location = Location(watched.storage, watched.name)
            try:
                if not watched.copied:
                    copy_staged(location, Path(watched.staging) if watched.staging else None, _say)
                _, paths = reports_from_disk(location, csv_first=True)
                _say(f"reports: {paths['report']}")
            except Exception as exc:  # the resume line below still comes
                _say(f"could not write the reports of {location}: {type(exc).__name__}: {exc} "
                     f"(tune-app report {location} retries)")
            _say(f"{'interrupted' if self.signal is not None else 'stopped'}; finish the sweep with: "
                 f"tune-app resume {location}")


def supervise(argv: list[str]) -> int:
    """Run ``tune-app argv`` as a supervised child; its exit code, or the code of what ended it."""
    return Supervisor(argv).run()


def _die_with_parent() -> None:
    """In the driver before it starts: SIGTERM when the supervisor dies (Linux), so it writes its own reports."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _say(text: str) -> None:
    print(text, file=sys.stderr if text.startswith(("could not", "the driver did not")) else sys.stdout, flush=True)
