"""The package's layers import only downward: core <- exchange, storage <- orchestration <-
definitions <- platform (README, "Project layout"). A new import against that order fails here."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "acts_pipeline"
#: Each layer, and the layers (of acts_pipeline) it may import; `settings` (configuration) and
#: `dagster_private` (the one adapter of Dagster's private names) are below all.
MAY_IMPORT = {
    "dagster_private": set(),
    "core": {"core"},
    "exchange": {"core", "exchange", "settings"},
    "storage": {"core", "storage", "settings", "dagster_private"},
    "orchestration": {"core", "exchange", "storage", "orchestration", "settings"},
    "recorder": {"core", "exchange", "storage", "recorder", "settings"},
    "definitions": {"core", "exchange", "storage", "orchestration", "settings"},
    # the researchers' read API: the stored data (MongoDB and the archive), no Dagster
    "read": {"core", "storage", "settings"},
    "platform": {"core", "exchange", "storage", "orchestration", "recorder", "platform", "settings", "dagster_private"},
    "settings": {"core"},
}


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("acts_pipeline"):
            parts = node.module.split(".")
            layers |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            layers |= {a.name.split(".")[1] for a in node.names if a.name.startswith("acts_pipeline.")}
    return layers


def test_every_module_imports_only_its_own_layer_and_those_below():
    wrong = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        layer = layer_of(path)
        assert layer in MAY_IMPORT, f"{path}: a module outside the layers of the README's layout"
        upward = imported_layers(path) - MAY_IMPORT[layer]
        if upward:
            wrong[str(path.relative_to(PACKAGE))] = sorted(upward)
    assert wrong == {}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, by its absolute name."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


def imported_packages(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


def test_the_runtime_package_imports_the_simulator_only_to_run_it_and_never_the_devkit():
    importers = {str(p.relative_to(PACKAGE)): imported_packages(p) for p in PACKAGE.rglob("*.py")}
    assert [name for name, packages in importers.items() if "acts_devkit" in packages] == []
    # `acts-pipeline simulate-exchange` runs it; `dev --simulated` starts it as a process
    assert [name for name, packages in importers.items() if "acts_simulator" in packages] == ["platform/cli.py"]


def test_only_the_adapter_imports_dagsters_private_modules():
    importers = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if any(module.startswith("dagster._") for module in imported_modules(p))]
    assert importers == ["dagster_private.py"]
