"""The sweep driver's side of the supervisor (:mod:`tune_app.supervisor`): what it tells the process watching it.

The supervisor starts the driver with the number of a pipe's write end in
``TUNE_APP_SUPERVISOR_FD``. The driver takes it (:func:`take_channel`, first thing, so
that no process it starts inherits the variable) and tells the supervisor, one JSON
line each, of every experiment it runs: where it is, where Ray stages its files, and
when its final reports are written. Dependency-free: the sweep layer tells, the
supervisor on top listens.

Example:
    >>> watched()  # a process nobody supervises
    False
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report it
FD_VARIABLE = "TUNE_APP_SUPERVISOR_FD"
PID_VARIABLE = "TUNE_APP_SUPERVISOR_PID"

_channel: tuple[int, int] | None = None  # (write end, the supervisor's pid)


def take_channel() -> bool:
    """In a driver the supervisor started: keep the pipe to it and clear the variables; whether there is one."""
    global _channel
    fd, pid = os.environ.pop(FD_VARIABLE, None), os.environ.pop(PID_VARIABLE, None)
    if fd is not None and pid is not None:
        _channel = (int(fd), int(pid))
        os.set_inheritable(_channel[0], False)  # not for Ray's processes, nor a trial's
    return _channel is not None


def watched() -> bool:
    """Whether the supervisor that started this driver is still there to write the reports after it."""
    return _channel is not None and os.getppid() == _channel[1]


def orphaned() -> bool:
    """Whether the supervisor that started this driver died: the process group it made for the driver (and a
    local Ray's processes in it) is then this process's to stop as it exits."""
    return _channel is not None and not watched() and os.getpgrp() == os.getpid()


def tell(event: str, **fields: Any) -> None:
    """One event for the supervisor (nothing without one); a supervisor gone is no error."""
    if _channel is None:
        return
    line = json.dumps({"event": event, **fields}) + "\n"
    try:
        os.write(_channel[0], line.encode())  # one write under PIPE_BUF: never interleaved
    except OSError:
        pass
