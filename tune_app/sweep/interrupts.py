"""SIGTERM and SIGINT during a sweep: the reports written from what is on disk, then exit 143 / 130.

``timeout``, SLURM, Kubernetes and Ctrl-C signal every process of the job at once: the
driver, Ray's raylet and GCS, and the trial workers. By the time the driver could react
through Ray or Tune, they are gone, and a call into them may block in Ray's C++ code, so
a Python handler in the main thread may never run. Here the signal only wakes a thread
(through :func:`signal.set_wakeup_fd`, written by the C-level handler whatever the main
thread is doing); that thread writes the reports from the experiment directory (no Ray
needed) and ends the process, leaving Ray's saved state as a killed driver leaves it:
``tune-app resume`` finishes the sweep. A second signal ends the process at once.

Ray can still end this process first (its core worker does once the raylet is gone):
the ``tune-app`` command therefore runs the driver under :mod:`tune_app.supervisor`, and
here, while the supervisor lives, a signal only copies what Ray staged; the supervisor
writes the reports once this process has ended.

Example:
    >>> EXIT_CODES[signal.SIGTERM], EXIT_CODES[signal.SIGINT]
    (143, 130)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..supervision import EXIT_CODES, orphaned, watched


class Interrupts:
    """Turns the first SIGTERM / SIGINT into ``on_signal(name)`` and an exit; a second exits at once.

    :meth:`arm` must run in the main thread, and again after anything that installs its own
    handlers (``ray.init`` installs Ray's for SIGTERM, Tune its own for SIGINT).
    """

    def __init__(self, on_signal: Callable[[str], None]) -> None:
        self.on_signal = on_signal
        # While True, a signal also stops the main thread where it stands (once it runs Python):
        # Tune then records no result the reports being written would miss, and no trial as
        # errored because its worker got the signal too.
        self.hold_main = True
        self._previous_fd = -1
        self._read_end, self._write_end = socket.socketpair()
        self._write_end.setblocking(False)  # the C-level handler must never block
        threading.Thread(target=self._watch, name="tune-app-interrupts", daemon=True).start()

    def arm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; a caller in another thread handles its own
        for signum in EXIT_CODES:
            signal.signal(signum, self._noted)
        previous = signal.set_wakeup_fd(self._write_end.fileno(), warn_on_full_buffer=False)
        if previous != self._write_end.fileno():
            self._previous_fd = previous  # e.g. an asyncio loop's: given back by disarm

    def disarm(self, handlers: dict[int, object]) -> None:
        """Put ``handlers`` back and stop watching (the watcher thread ends)."""
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(self._previous_fd)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        self._write_end.close()

    def _watch(self) -> None:
        signum = self._next_signal()
        if signum is None:
            return
        code = EXIT_CODES[signum]
        threading.Thread(target=self._finish, args=(signum, code), name="tune-app-reports", daemon=True).start()
        if self._next_signal() is not None:  # under a supervisor, which says so itself and writes the reports
            _exit(code, None if watched() else f"{signal.Signals(signum).name} again: exiting at once")

    def _next_signal(self) -> int | None:
        """The next SIGINT / SIGTERM (other signals with Python handlers wake it too); None once disarmed."""
        while True:
            byte = self._read_end.recv(1)
            if not byte:
                return None
            if byte[0] in EXIT_CODES:
                return byte[0]

    def _noted(self, signum: int, frame: object) -> None:
        """The Python-level handler, in the main thread: the watcher thread has already been woken."""
        while self.hold_main:
            threading.Event().wait(3600)  # until the watcher ends the process

    def _finish(self, signum: int, code: int) -> None:
        name = signal.Signals(signum).name
        try:
            self.on_signal(name)
        except BaseException as exc:  # the exit code must still say "interrupted"
            _say(f"could not write the reports: {type(exc).__name__}: {exc}")
        finally:
            _exit(code)


def unfailing(echo: Callable[[str], None]) -> Callable[[str], None]:
    """``echo`` that never raises: after a signal the output may be a pipe nobody reads any more (a dead
    supervisor's, a closed terminal), and a message that cannot be shown must not cost the reports or the exit."""
    def say(text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # BrokenPipeError; a closed stream
            echo(text)
    return say


def _say(text: str) -> None:
    # An error here would end the thread before the exit below: the held main thread would keep the process forever.
    unfailing(lambda line: print(line, file=sys.stderr, flush=True))(text)


def _exit(code: int, message: str | None = None) -> None:
    if message:
        _say(message)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if orphaned():  # what the dead supervisor would do next: stop the local Ray's processes (and this one)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(code)  # no unwinding through Ray and Tune, whose processes may be gone


@contextmanager
def interrupts(on_signal: Callable[[str], None]) -> Iterator[Interrupts]:
    """:class:`Interrupts` armed for the block; the previous handlers come back after it."""
    previous = {signum: signal.getsignal(signum) for signum in EXIT_CODES}
    watcher = Interrupts(on_signal)
    watcher.arm()
    try:
        yield watcher
    finally:
        watcher.disarm(previous)
