"""The report layer reads files only: no Ray, no torch, nothing of tune_app outside tune_app.report
but the dependency-free trial-result contract (tune_app.trial_result)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tune_app.report

REPORT = Path(tune_app.report.__file__).parent


def test_report_modules_import_nothing_from_the_layers_above():
    for path in sorted(REPORT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                contract = node.level == 2 and node.module == "trial_result"
                assert node.level <= 1 or contract, f"{path.name}: from {'.' * node.level}{node.module}"
                assert not (node.level == 0 and (node.module or "").startswith("tune_app")), path.name
                assert (node.module or "").split(".")[0] not in ("ray", "torch"), path.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("ray", "torch", "tune_app"), (path.name, alias.name)


@pytest.mark.slow
def test_the_report_layer_loads_neither_ray_nor_torch(tmp_path):
    # Every module imported (plots, importance's optuna included), the cheap reports written.
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from pathlib import Path\n"
        "import optuna.importance\n"
        "from tests.report.synthetic import known\n"
        "from tune_app.report import compare, html, plots, summary_text, write_reports\n"
        f"exp = known(Path({str(tmp_path)!r}) / 'k')\n"
        "write_reports(exp, by=('loss', 'scheduler'), final=False)\n"
        "summary_text(exp)\n"
        "print(sorted(m for m in ('ray', 'torch', 'tune_app.spec', 'tune_app.sweep.runner') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
