"""The shape the code promises: one module imports docker, the core imports no
edge, there is no import cycle, and the README's exit codes are errors.py's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from javabase.errors import EXIT_CODES
from javabase.templates import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "javabase"
CORE = ("manifest", "model", "expand", "schema_messages", "yamlsource", "references", "dockerfile_values",
        "templates", "render", "plan", "inputs", "labels", "decide", "lock", "schedule", "errors", "settings")


def module_name(path: Path) -> str:
    rel = path.relative_to(PROJECT_ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules `path` imports (absolute names); top_level_only skips imports inside functions."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_docker_is_imported_by_exactly_one_module() -> None:
    importers = sorted(name for name, path in MODULES.items()
                       if any(i == "docker" or i.startswith("docker.") for i in imports(path, False)))
    assert importers == ["javabase.backends.docker_sdk"]


def test_importing_the_builder_does_not_load_docker() -> None:
    code = "import sys, javabase.builder, javabase.commands; print('docker' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "False\n"


def test_there_is_no_import_cycle() -> None:
    graph = {name: {i for i in imports(path, True) if i in MODULES and i != name} for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> None:
        state[name] = 1
        for child in sorted(graph[name]):
            assert state.get(child) != 1, f"import cycle: {' -> '.join([*chain, name, child])}"
            if child not in state:
                visit(child, [*chain, name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_the_core_never_imports_an_edge() -> None:
    edges = {"javabase.backends.docker_sdk", "javabase.registry", "javabase.artifacts", "javabase.builder",
             "javabase.pusher", "javabase.commands", "javabase.reproducible"}
    for name in CORE:
        assert imports(MODULES[f"javabase.{name}"], False) & edges == set(), name


def test_no_function_is_longer_than_about_fifty_lines() -> None:
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_the_readme_exit_code_table_is_errors_py() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme, re.MULTILINE))
    assert table == {str(int(code)): meaning for code, meaning in EXIT_CODES.items()}
