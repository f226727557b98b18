"""Errors that the command line turns into exit codes and one-paragraph messages."""

from __future__ import annotations


class TuneAppError(Exception):
    """Base class; ``exit_code`` is what ``tune-app`` exits with."""

    exit_code = 1


class SpecError(TuneAppError):
    """Bad input: a spec file, an override or a command-line value. Exit code 2.

    Holds every problem found, each as ``(dotted path, message)``.
    """

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str]] | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{path}: {message}" if path else message for path, message in self.problems]
        where = f"{self.source}: " if self.source else ""
        if len(lines) == 1:
            return where + lines[0]
        return f"{where}{len(lines)} problems:\n" + "\n".join(f"  - {line}" for line in lines)


class RunError(TuneAppError):
    """The run itself failed (e.g. every trial errored). Exit code 1."""

    exit_code = 1


class UntestedVersionError(TuneAppError):
    """Ray or Optuna outside the versions tune-app was tested with (see ``tune_app.sweep.compat``). Exit code 1."""

    exit_code = 1
