"""timm without the W&B client it imports for its own train script.

timm's ``timm.utils.summary`` imports ``wandb`` whenever it is installed, to log timm's
own ``train.py``; tune-app never calls that code. The import costs about 1.2 s of CPU
(of timm's 8.5 here) in every process that imports timm: each trial's, the driver's,
each ``tune-app validate``'s. :func:`install` makes that one import see W&B as absent,
which timm handles (``except ImportError``), for the first import of timm only; W&B
tracking (``tune.loggers: [wandb]``) imports it afterwards as usual. Importing this module
installs it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any


class _TimmWithoutWandb(importlib.abc.MetaPathFinder):
    """Finds timm as usual, and runs its package's import with ``wandb`` unimportable."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "timm":
            return None
        sys.meta_path.remove(self)  # once: timm is imported once per process
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or "wandb" in sys.modules:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            sys.modules["wandb"] = None  # type: ignore[assignment]  # `import wandb` raises ImportError
            try:
                run(module)
            finally:
                if "wandb" in sys.modules and sys.modules["wandb"] is None:
                    del sys.modules["wandb"]

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's own loader
        return spec


def install() -> None:
    """Have this process's first import of timm leave W&B out (a no-op once timm is imported)."""
    if "timm" not in sys.modules and not any(isinstance(f, _TimmWithoutWandb) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmWithoutWandb())


install()
