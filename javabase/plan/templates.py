"""The Jinja2 environment that renders a manifest's templates (looked up along
its search path: javabase.manifest.template_dirs), and the hash of a template
with every template it includes or imports, so that a change to any partial
changes the lock and the inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
import jinja2.meta

from ..manifest.template_dirs import file_name, locate
from ..manifest.values import dq, exec_form


def environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    """Templates and partials resolve along `search_path`, first match wins.
    Undefined variables are errors; nothing is HTML-escaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["dq"] = dq
    env.filters["exec_form"] = exec_form
    env.tests["apk_file"] = lambda filename: str(filename).endswith(".apk")
    env.tests["prefixed"] = lambda value, prefix: str(value).startswith(prefix)
    return env


def referenced(name: str, search_path: tuple[Path, ...]) -> list[str]:
    """`name` and every template it includes, imports or extends, transitively,
    in a stable order. A reference that is not a literal string (computed at
    render time) cannot be followed, so it is refused (ValueError)."""
    seen: list[str] = []
    stack = [name]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(p) for p in search_path]))
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        path = locate(current, search_path)
        if path is None:
            continue
        for child in jinja2.meta.find_referenced_templates(env.parse(path.read_text(encoding="utf-8"))):
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
