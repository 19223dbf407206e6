"""The templates directory: which templates exist, the Jinja2 environment that
renders them, and the hash of a template with every template it includes or
imports (so a change to any partial changes the lock and the inputs)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jinja2
import jinja2.meta

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
SUFFIX = ".Dockerfile.j2"


def file_name(template: str) -> str:
    """alpine-glibc -> alpine-glibc.Dockerfile.j2"""
    return f"{template}{SUFFIX}"


def available(templates_dir: Path = TEMPLATES_DIR) -> set[str]:
    """The template names a manifest may use (files named NAME.Dockerfile.j2)."""
    return {p.name[: -len(SUFFIX)] for p in templates_dir.glob(f"*{SUFFIX}")}


def dq(value: str) -> str:
    """Double-quote a value for ENV, LABEL and ARG; $VAR still expands."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_form(argv: tuple[str, ...]) -> str:
    return json.dumps(list(argv))


def environment(templates_dir: Path = TEMPLATES_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["dq"] = dq
    env.filters["exec_form"] = exec_form
    env.tests["apk_file"] = lambda filename: str(filename).endswith(".apk")
    env.tests["prefixed"] = lambda value, prefix: str(value).startswith(prefix)
    return env


def referenced(name: str, templates_dir: Path = TEMPLATES_DIR) -> list[str]:
    """`name` and every template it includes, imports or extends, transitively,
    in a stable order. A reference that is not a literal string (computed at
    render time) cannot be followed, so it is refused."""
    seen: list[str] = []
    stack = [name]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)))
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        path = templates_dir / current
        if not path.is_file():
            continue
        for child in jinja2.meta.find_referenced_templates(env.parse(path.read_text(encoding="utf-8"))):
            if child is None:
                raise ValueError(f"templates/{current} includes a template whose name is computed; "
                                 "name it literally so that its hash can be locked")
            stack.append(child)
    return [seen[0], *sorted(seen[1:])]


def template_hash(template: str, templates_dir: Path = TEMPLATES_DIR) -> str:
    """sha256 over the template and everything it includes, by name and content."""
    digest = hashlib.sha256()
    for name in referenced(file_name(template), templates_dir):
        path = templates_dir / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()
