"""The package's shape: no import cycle, a catalogue that imports nothing of the package, no
instrument looked up by name, modules of a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chenu_otel.catalogue import CATALOGUE
from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "chenu_otel"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def package_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported chenu_otel module, imported inside a function?) for every import in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
                # `from chenu_otel import pipeline` imports the module chenu_otel.pipeline
                names += [f"{child.module}.{alias.name}" for alias in child.names]
            for name in names:
                if name in MODULES:
                    found.append((name, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (at any level), parent packages included, since
    importing ``a.b`` runs ``a/__init__`` first."""
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {target for target, _ in package_imports(path)}
        for target in list(targets):
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(2, len(parts)))
        targets.discard(name)
        edges[name] = {t for t in targets if t != "chenu_otel" and not name.startswith(t + ".")}
    return edges


def test_the_import_graph_has_no_cycle() -> None:
    """Following every import between package modules never leads back to where it started."""
    edges = graph()
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_package_module_is_imported_inside_a_function() -> None:
    """Dependencies between modules are visible at the top of each file, never hidden."""
    hidden = [
        f"{name} imports {target} inside a function"
        for name, path in MODULES.items()
        for target, in_function in package_imports(path)
        if in_function
    ]
    assert not hidden, "\n".join(hidden)


def test_the_package_never_imports_the_tests() -> None:
    """Tests import the package (the stack, the testing helpers), never the reverse."""
    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            imported = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module]
            offenders += [f"{name} imports {i}" for i in imported if i.split(".")[0] == "tests"]
    assert not offenders, offenders


def test_the_catalogue_imports_nothing_from_the_package() -> None:
    """chenu_otel.catalogue is the root of the package: everything may import it."""
    assert package_imports(MODULES["chenu_otel.catalogue"]) == []


def _import_alone(module: str) -> tuple[str, int, str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    return module, result.returncode, result.stderr[-2000:]


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    """Each module can be the first thing a program imports (no order-dependent cycle).
    ``__main__`` modules are programs, not imports: they are left out."""
    modules = sorted(m for m in MODULES if not m.endswith(".__main__"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_import_alone, modules))
    failures = [f"{module}:\n{stderr}" for module, code, stderr in results if code != 0]
    assert not failures, "\n\n".join(failures)


def test_no_catalogue_metric_is_looked_up_by_name_outside_the_catalogue() -> None:
    """Instruments are held by the recorders: no call anywhere passes a catalogue metric name
    (a typo there would only fail at run time)."""
    names = {spec.name for spec in CATALOGUE}
    lookups: list[str] = []
    for name, path in MODULES.items():
        if name == "chenu_otel.catalogue":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                arguments = [*node.args, *(k.value for k in node.keywords)]
                lookups += [
                    f"{path.relative_to(REPO_ROOT)}:{node.lineno} {arg.value!r}"
                    for arg in arguments
                    if isinstance(arg, ast.Constant) and arg.value in names
                ]
    assert not lookups, "\n".join(lookups)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_stays_readable(module: str) -> None:
    """No module grows past about 500 lines: a module that does is doing two jobs."""
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"
