"""The shape the code promises: stages import one way (cli -> build -> release
-> publish -> decide -> plan -> manifest, each also using the small shared
modules), every import counted (lazy and TYPE_CHECKING ones too), no cycle, one
module imports docker, no function over 50 lines, no assert or default-less
next() on a path a user can reach, and the README's exit codes are errors.py's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from javabase.errors import EXIT_CODES
from paths import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "javabase"
STAGES = ("manifest", "plan", "decide", "publish", "release", "build", "cli")
SHARED = ("javabase", "javabase.errors", "javabase.files", "javabase.settings", "javabase.report",
          "javabase.engine", "javabase.clock")


def module_name(path: Path, root: Path = PROJECT_ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path, root: Path = PROJECT_ROOT) -> set[str]:
    """Every module `path` imports (absolute names), wherever the import stands."""
    tree = ast.parse(path.read_text())
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
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


def ours(name: str) -> set[str]:
    """The javabase modules `name` imports (a name imported from a module counts as the module)."""
    return {i for i in imports(MODULES[name]) if i in MODULES and i != name}


def rank(name: str) -> int:
    """-1 for a shared module, else the stage's position, bottom first."""
    if name in SHARED:
        return -1
    return STAGES.index(name.split(".")[1])


def test_every_module_is_shared_or_in_a_stage() -> None:
    strays = [name for name in MODULES if name not in SHARED and name.split(".")[1] not in STAGES]
    assert strays == []


def test_imports_go_down_the_stages_only() -> None:
    wrong = [f"{name} ({STAGES[rank(name)] if rank(name) >= 0 else 'shared'}) imports {target}"
             for name in sorted(MODULES) for target in sorted(ours(name))
             if rank(target) > rank(name) or (rank(name) == -1 and rank(target) != -1)]
    assert wrong == []


def test_there_is_no_import_cycle() -> None:
    graph = {name: ours(name) for name in MODULES}
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


def test_lazy_and_type_checking_imports_count(tmp_path: Path) -> None:
    module = tmp_path / "javabase" / "plan" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..publish import pusher\n"
                      "def f() -> None:\n    from ..build import run\n")
    assert {"javabase.build.run", "javabase.publish.pusher"} <= imports(module, tmp_path)


def test_docker_is_imported_by_exactly_one_module() -> None:
    importers = sorted(name for name, path in MODULES.items()
                       if any(i == "docker" or i.startswith("docker.") for i in imports(path)))
    assert importers == ["javabase.build.backends.docker_sdk"]


def test_importing_the_run_and_the_commands_does_not_load_docker() -> None:
    code = "import sys, javabase.build.run, javabase.cli.tasks; print('docker' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "False\n"


def test_no_function_is_longer_than_fifty_lines() -> None:
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 50:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_no_assert_and_no_next_without_a_default_in_the_package() -> None:
    """An assert vanishes under -O and a bare next() raises StopIteration: on a
    path a user can reach, either is an 'internal error' instead of a message."""
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert):
                found.append(f"{name}:{node.lineno}: assert")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "next"
                  and len(node.args) < 2):
                found.append(f"{name}:{node.lineno}: next() without a default")
    assert found == []


def test_the_readme_exit_code_table_is_errors_py() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme, re.MULTILINE))
    assert table == {str(int(code)): meaning for code, meaning in EXIT_CODES.items()}
