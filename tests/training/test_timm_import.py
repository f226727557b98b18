"""A process's import of timm leaves the W&B client out; W&B itself still imports afterwards."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_timm_imported_after_tune_app_training_leaves_wandb_out_and_wandb_still_imports():
    # on its own, timm pulls in wandb when it is installed (the dev extras install it)
    assert _run("import sys, timm; print('wandb' in sys.modules)") == "True"
    out = _run("import sys, tune_app.training, timm, timm.utils\n"
               "print('wandb' in sys.modules)\n"
               "import wandb\n"
               "print(wandb.__name__, 'timm' in sys.modules)")
    assert out.splitlines() == ["False", "wandb True"]
