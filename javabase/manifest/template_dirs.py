"""Where a manifest's templates come from: a `templates/` directory next to
the manifest first (a team's own templates, or its own version of one of
javabase's), then the templates javabase ships as package data. Pure file
lookups; rendering them is javabase.plan.templates."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SUFFIX = ".Dockerfile.j2"
PACKAGE_TEMPLATES = Path(str(files("javabase").joinpath("templates")))


def file_name(template: str) -> str:
    """alpine-glibc -> alpine-glibc.Dockerfile.j2"""
    return f"{template}{SUFFIX}"


def search_path(manifest_dir: Path) -> tuple[Path, ...]:
    """The directories a manifest's templates are looked up in, first match wins."""
    own = manifest_dir / "templates"
    if own.is_dir() and own.resolve() != PACKAGE_TEMPLATES.resolve():
        return (own, PACKAGE_TEMPLATES)
    return (PACKAGE_TEMPLATES,)


def available(directories: tuple[Path, ...]) -> set[str]:
    """The template names a manifest may use (files named NAME.Dockerfile.j2)."""
    return {p.name[: -len(SUFFIX)] for directory in directories for p in directory.glob(f"*{SUFFIX}")}


def locate(name: str, directories: tuple[Path, ...]) -> Path | None:
    """The file a template (or partial) name resolves to, or None."""
    for directory in directories:
        if (directory / name).is_file():
            return directory / name
    return None
