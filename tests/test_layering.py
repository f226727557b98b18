"""The package's layers: no import cycles anywhere, each package imports only the layers below it, Ray only
in sweep/, and validating a spec or writing reports never loads Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tune_app

PACKAGE = Path(tune_app.__file__).parent
ROOT = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports: anywhere in the file, TYPE_CHECKING and functions included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from . import plots` imports the module plots; `from .x import y` the module x
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            targets = submodules + ([base] if len(submodules) < len(node.names) else [])
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_walker_sees_type_checking_and_lazy_imports():
    graph = {name: imports_of(name, path, package_modules()) for name, path in package_modules().items()}
    assert "tune_app.spec" in graph["tune_app.sweep.runner"]  # under TYPE_CHECKING
    assert "tune_app.sweep.callbacks" in graph["tune_app.sweep.runner"]  # inside a function
    assert "tune_app.trial_result" in graph["tune_app.report.results"]  # relative, two levels up


def test_no_module_of_the_package_imports_itself_back():
    modules = package_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


@pytest.mark.slow
def test_validating_a_spec_imports_no_ray():
    code = (
        "import sys\n"
        "import tune_app.spec\n"
        "assert 'ray' not in sys.modules, 'import tune_app.spec loaded ray'\n"
        "from tune_app.cli import main\n"
        "assert main(['validate', 'search_spaces/resnet.yaml', '--no-build', '--samples', '1']) == 0\n"
    )
    assert ray_modules_after(code) == "[]"


def ray_modules_after(code: str) -> str:
    """Run ``code`` in a fresh interpreter; the Ray modules it loaded (its last line of output)."""
    code += "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


# What each package of tune_app may import from the others (lazy and TYPE_CHECKING imports included).
# cli is on top and imports anything. The one exception to "downward only": the spec layer checks
# tune.search_alg / tune.scheduler against sweep.strategies' registries (a module that loads no Ray and
# imports no other sweep module), as it checks the losses against training's.
BASE = {"tune_app", "tune_app.caches", "tune_app.errors", "tune_app.schema", "tune_app.supervision",
        "tune_app.trial_result"}
LAYERS = {
    "tune_app.sweep": {"tune_app.sweep", "tune_app.experiment", "tune_app.spec", "tune_app.training",
                       "tune_app.report"},
    "tune_app.experiment": {"tune_app.experiment", "tune_app.spec", "tune_app.training", "tune_app.report"},
    "tune_app.spec": {"tune_app.spec", "tune_app.training", "tune_app.sweep.strategies"},
    "tune_app.training": {"tune_app.training"},
    "tune_app.report": {"tune_app.report"},
    "tune_app.schema": set(),
    "tune_app.caches": set(),
    "tune_app.supervision": set(),
    "tune_app.errors": set(),
    "tune_app.trial_result": set(),
}


def layer_of(module: str) -> str | None:
    return next((layer for layer in sorted(LAYERS, key=len, reverse=True)
                 if module == layer or module.startswith(layer + ".")), None)


def test_each_package_imports_only_the_layers_below_it():
    modules = package_modules()
    wrong = []
    for name, path in modules.items():
        layer = layer_of(name)
        if layer is None:  # cli, supervisor, __main__, the package itself
            continue
        allowed = LAYERS[layer] | BASE
        for target in imports_of(name, path, modules):
            if not any(target == a or target.startswith(a + ".") for a in allowed - {"tune_app"}) \
                    and target != "tune_app":
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import():
    # training importing the spec layer would be reported: the rule is not vacuous
    layer = layer_of("tune_app.training.engine")
    assert layer == "tune_app.training" and "tune_app.spec" not in LAYERS[layer]
    assert layer_of("tune_app.sweep.strategies") == "tune_app.sweep" and layer_of("tune_app.cli") is None


def ray_imports(path: Path) -> list[str]:
    """Every import of Ray in a file, anywhere in it (functions and TYPE_CHECKING blocks included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        found += [n for n in names if n == "ray" or n.startswith("ray.")]
    return found


def test_only_the_sweep_package_imports_ray():
    outside = {str(p.relative_to(ROOT)): ray_imports(p) for p in sorted(PACKAGE.rglob("*.py"))
               if "sweep" not in p.relative_to(PACKAGE).parts[:1]}
    assert {path: names for path, names in outside.items() if names} == {}
    assert ray_imports(PACKAGE / "sweep" / "runner.py")  # the walker finds Ray where it is imported


@pytest.mark.slow
def test_writing_the_reports_of_an_experiment_imports_no_ray(tmp_path):
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from pathlib import Path\n"
        "import yaml\n"
        "from tests.report.synthetic import known\n"
        f"exp = known(Path({str(tmp_path)!r}) / 'k')\n"
        "(exp / 'spec.yaml').write_text(yaml.safe_dump({'name': 'k', 'train': {'metric': 'val_acc'}}))\n"
        "from tune_app.cli import main\n"
        "assert main(['report', str(exp), '--format', 'csv', 'md']) == 0\n"
        "assert (exp / 'results.csv').is_file()\n"
    )
    assert ray_modules_after(code) == "[]"
