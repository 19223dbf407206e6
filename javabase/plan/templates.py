"""The Jinja2 environment that renders a manifest's templates (looked up along
its search path: javabase.manifest.template_dirs), and the hash of a template
with every template it includes or imports, so that a change to any partial
changes the lock and the inputs."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import jinja2
import jinja2.meta
from jinja2 import nodes

from ..errors import RenderError
from ..manifest.template_dirs import file_name, locate
from ..manifest.values import FILTERS, POSITIONS


def environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    """Templates and partials resolve along `search_path`, first match wins.
    Undefined variables are errors; nothing is HTML-escaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    env.tests["apk_file"] = lambda filename: str(filename).endswith(".apk")
    env.tests["prefixed"] = lambda value, prefix: str(value).startswith(prefix)
    return env


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> nodes.Template:
    """A template's syntax tree (parsing does not depend on the loader); a
    partial that several templates include is parsed once per process."""
    return jinja2.Environment().parse(text)


def referenced(name: str, search_path: tuple[Path, ...]) -> list[str]:
    """`name` and every template it includes, imports or extends, transitively,
    in a stable order. A reference that is not a literal string (computed at
    render time) cannot be followed, so it is refused (ValueError)."""
    seen: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        path = locate(current, search_path)
        if path is None:
            continue
        for child in jinja2.meta.find_referenced_templates(_parsed(path.read_text(encoding="utf-8"))):
            if child is None:
                raise ValueError(f"templates/{current} includes a template whose name is computed; "
                                 "name it literally so that its hash can be locked")
            stack.append(child)
    return [seen[0], *sorted(seen[1:])]


def template_hash(template: str, search_path: tuple[Path, ...]) -> str:
    """sha256 over the template and everything it includes, by name and content."""
    digest = hashlib.sha256()
    for name in referenced(file_name(template), search_path):
        path = locate(name, search_path)
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path is not None else b"")
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def check_positions(name: str, search_path: tuple[Path, ...]) -> None:
    """Every `{{ ... }}` of template `name` (and of what it includes) writes its
    value through a position filter (javabase.manifest.values) or is a macro
    call; else RenderError naming the file, line and expression. So no value of
    the manifest reaches a Dockerfile unchecked, whichever key a template uses."""
    for current in referenced(name, search_path):
        path = locate(current, search_path)
        if path is None:
            continue
        tree = _parsed(path.read_text(encoding="utf-8"))
        macros = {macro.name for macro in tree.find_all(nodes.Macro)}
        for output in tree.find_all(nodes.Output):
            for node in output.nodes:
                if not (isinstance(node, nodes.TemplateData) or _positioned(node, macros)):
                    raise RenderError(f"templates/{current}:{node.lineno}: writes `{_shown(node)}` without a position "
                                      f"filter ({', '.join(POSITIONS)}); pass it through the filter of its place "
                                      "in the Dockerfile")


def _positioned(node: nodes.Node, macros: set[str]) -> bool:
    if isinstance(node, nodes.Filter):
        return node.name in POSITIONS
    if isinstance(node, nodes.Call):  # a macro: its own outputs are checked where it is defined
        target = node.node
        return (isinstance(target, nodes.Getattr) and isinstance(target.node, nodes.Name)) or (
            isinstance(target, nodes.Name) and (target.name in macros or target.name == "caller"))
    return False


def _shown(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_shown(node.node)}.{node.attr}"
    if isinstance(node, nodes.Filter):
        return f"{_shown(node.node) if node.node else '...'} | {node.name}"
    return type(node).__name__.lower()
