"""The bad-input corpus: every file in ``tests/data/bad_specs`` is rejected cleanly.

Each corpus file is a small, realistic spec with one mistake. Its leading comment
lines say what the rejection must look like:

``# expect: TEXT``
    TEXT must appear in stderr (usually ``dotted.path: message fragment``); repeatable.
``# set: KEY=VALUE``
    passed as ``--set KEY=VALUE``; repeatable.
``# xfail: REASON``
    a known tune-app defect: the test documents the correct behaviour and is expected
    to fail until the defect is fixed (strict, so a fix turns it into a reminder to
    drop the line).
``# run: subprocess``
    run in a child process with a time limit instead of in-process (for inputs that
    can hang the interpreter).

Rejected means: exit code 2, every expected fragment in stderr, one ``error:``
paragraph, nothing on stdout, no traceback, and nothing written to the working
directory. Most files run in-process through ``tune_app.cli.main`` (each child
process pays seconds of imports); a representative handful also run as
``python -m tune_app`` subprocesses with ``validate``, ``search --dry-run`` and ``train``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tune_app.cli import main

from ..conftest import TINY_SPEC, write_spec

CORPUS = Path(__file__).parent / "data" / "bad_specs"
HEADER_KEYS = ("expect", "set", "xfail", "run")
SUBPROCESS_TIMEOUT_S = 120  # a normal rejection takes a few seconds of imports
HANG_TIMEOUT_S = 20  # for `# run: subprocess` files: a fixed tune-app answers in a few seconds


@dataclass
class BadSpec:
    path: Path
    expect: list[str] = field(default_factory=list)
    set: list[str] = field(default_factory=list)
    xfail: list[str] = field(default_factory=list)
    run: list[str] = field(default_factory=list)

    @property
    def in_subprocess(self) -> bool:
        return "subprocess" in self.run


def read_header(path: Path) -> BadSpec:
    """The leading ``# key: value`` lines (read as bytes: some files are not UTF-8 past the header)."""
    case = BadSpec(path)
    for raw in path.read_bytes().split(b"\n"):
        if not raw.startswith(b"# "):
            break
        key, sep, value = raw[2:].decode("ascii").partition(": ")
        if not sep or key not in HEADER_KEYS:
            break
        getattr(case, key).append(value)
    return case


CASES = [read_header(p) for p in sorted(CORPUS.glob("*.yaml"))]


def _param(case: BadSpec) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail[0])] if case.xfail else []
    return pytest.param(case, id=case.path.name, marks=marks)


def _argv(command: str, case: BadSpec, *extra: str) -> list[str]:
    sets = [arg for item in case.set for arg in ("--set", item)]
    return [command, str(case.path), *sets, *extra]


def _run_subprocess(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "tune_app", *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tune-app {' '.join(argv[:1])} did not answer within {timeout:.0f}s")
    return proc.returncode, proc.stdout, proc.stderr


def assert_rejected(rc: int, out: str, err: str, expect: list[str], cwd: Path) -> None:
    everything = out + err
    assert "Traceback" not in everything, everything
    assert rc == 2, f"exit code {rc}\nstdout: {out}\nstderr: {err}"
    for fragment in expect:
        assert fragment in err, f"expected {fragment!r} in stderr:\n{err}"
    assert err.startswith("error: "), err
    assert "\n\n" not in err.strip(), f"more than one paragraph:\n{err}"
    assert out == "", f"a rejected spec printed to stdout:\n{out}"
    assert sorted(p.name for p in cwd.iterdir()) == [], "something was written to the working directory"


# ------------------------------------------------------------------- corpus
def test_the_corpus_is_large_and_well_formed():
    assert len(CASES) >= 40
    for case in CASES:
        assert case.expect, f"{case.path.name}: no '# expect:' line"
        assert case.path.read_bytes().startswith(b"# expect: "), f"{case.path.name}: the first line must be # expect:"
        assert case.path.stat().st_size < 4096, f"{case.path.name}: keep corpus files small"
        assert set(case.run) <= {"subprocess"}, case.run


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_validate_rejects_the_file(case, tmp_path, monkeypatch, capsys):
    if case.in_subprocess:
        rc, out, err = _run_subprocess(_argv("validate", case, "--no-build"), tmp_path, HANG_TIMEOUT_S)
    else:
        monkeypatch.chdir(tmp_path)
        rc = main(_argv("validate", case, "--no-build"))
        out, err = capsys.readouterr()
    assert_rejected(rc, out, err, case.expect, tmp_path)


def _case(name: str) -> BadSpec:
    return next(c for c in CASES if c.path.name == name)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "name", "extra"),
    [
        pytest.param(command, name, extra, id=f"{command}-{name.removesuffix('.yaml')}")
        for command, name, extra in [
            ("validate", "yaml_python_object_apply.yaml", ["--no-build"]),
            ("search", "yaml_python_object_new.yaml", ["--dry-run"]),
            ("search", "reversed_loguniform.yaml", ["--dry-run"]),
            ("train", "unknown_key_train.yaml", []),
            ("validate", "not_utf8.yaml", ["--no-build"]),
        ]
    ],
)
def test_tune_app_command_rejects_the_file(command, name, extra, tmp_path):
    case = _case(name)
    rc, out, err = _run_subprocess(_argv(command, case, *extra), tmp_path, SUBPROCESS_TIMEOUT_S)
    assert_rejected(rc, out, err, case.expect, tmp_path)
    assert not (tmp_path / "PWNED").exists()  # the python-tag payloads would create it


# ------------------------------------------------------- generated inputs
@pytest.mark.slow
def test_a_file_over_a_megabyte_is_refused_before_parsing(tmp_path):
    huge = tmp_path / "in" / "huge.yaml"
    huge.parent.mkdir()
    spec = dict(TINY_SPEC, tune={**TINY_SPEC["tune"], "num_samples": 40_000})
    write_spec(huge, spec)
    point = "  - {lr: 0.005, loss: ce, scheduler: cosine}\n"
    with huge.open("a") as f:
        f.write("points_to_evaluate_draft:\n" + point * 30_000)
    assert huge.stat().st_size > 1_000_000
    work = tmp_path / "work"
    work.mkdir()
    rc, out, err = _run_subprocess(["validate", str(huge), "--no-build"], work, SUBPROCESS_TIMEOUT_S)
    assert_rejected(rc, out, err, ["bytes; a spec may be at most 1000000"], work)


@pytest.mark.parametrize("text", ["", "\n\n   \n"], ids=["zero-bytes", "whitespace"])
def test_an_empty_file_says_it_is_empty(text, tmp_path, monkeypatch, capsys):
    path = tmp_path / "in" / "empty.yaml"
    path.parent.mkdir()
    path.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc = main(["validate", str(path), "--no-build"])
    out, err = capsys.readouterr()
    assert_rejected(rc, out, err, ["the file is empty"], work)


def test_a_missing_file_is_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["validate", str(tmp_path / "absent.yaml"), "--no-build"])
    out, err = capsys.readouterr()
    assert_rejected(rc, out, err, ["no such file"], tmp_path)


def test_an_exponent_without_a_dot_is_understood(tmp_path, monkeypatch, capsys):
    # Either accept it as 0.001 or say how to write it (1.0e-3); a bare "must be a number" puzzles.
    path = write_spec(tmp_path / "in.yaml", TINY_SPEC)
    path.write_text(path.read_text().replace("loguniform:\n    - 0.001\n    - 0.01", "loguniform: [1e-3, 1e-2]"))
    assert "1e-3" in path.read_text()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc = main(["validate", str(path), "--no-build", "--samples", "0"])
    _out, err = capsys.readouterr()
    assert rc == 0 or (rc == 2 and "1.0e-3" in err), err


def test_an_unknown_task_is_reported_once(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    rc = main(["validate", str(CORPUS / "unknown_task.yaml"), "--no-build"])
    _out, err = capsys.readouterr()
    assert rc == 2 and "problems" not in err, err
