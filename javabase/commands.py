"""What each task does, as plain functions that return an exit code and print
for people. tasks.py only parses flags and calls these through `run`."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from . import plan as plans
from .errors import DriftError, JavabaseError
from .manifest import PROJECT_ROOT, Manifest, load_manifest
from .render import check_builds, render_all, write_builds

DEFAULT_MANIFEST = "images.yaml"


def run(action: Callable[[], int], debug: bool = False, err: TextIO | None = None) -> int:
    """Run a command; a JavabaseError becomes its one-line message(s) and exit code.
    Anything else is a bug: one line too, and the traceback only with --debug."""
    err = err or sys.stderr
    try:
        return action()
    except JavabaseError as exc:
        if debug:
            traceback.print_exc(file=err)
        for line in exc.lines():
            print(f"error: {line}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence for people
        if debug:
            traceback.print_exc(file=err)
        print(f"error: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
              file=err)
        return 70


def resolve_manifest(manifest: str | None) -> Path:
    """--manifest as given; by default images.yaml of the current directory, or of the project."""
    if manifest:
        return Path(manifest)
    local = Path(DEFAULT_MANIFEST)
    return local if local.exists() else PROJECT_ROOT / DEFAULT_MANIFEST


def builds_dir(manifest: Manifest) -> Path:
    return manifest.path.resolve().parent / "builds"


def validate(manifest_path: str | None, out: TextIO = sys.stdout) -> int:
    manifest = load_manifest(resolve_manifest(manifest_path))
    print(f"{manifest.shown}: ok, {len(manifest.images)} images", file=out)
    return 0


def render(manifest_path: str | None, check: bool = False, out: TextIO = sys.stdout) -> int:
    manifest = load_manifest(resolve_manifest(manifest_path))
    rendered = render_all(manifest)
    target = builds_dir(manifest)
    if check:
        differences = check_builds(rendered, target)
        if differences:
            raise DriftError(differences)
        print(f"{_shown(target)}: up to date with {manifest.shown} ({len(rendered)} Dockerfiles)", file=out)
        return 0
    changes = write_builds(rendered, target)
    for rel in changes.added:
        print(f"added    {_shown(target / rel)}", file=out)
    for rel in changes.changed:
        print(f"changed  {_shown(target / rel)}", file=out)
    for rel in changes.removed:
        print(f"removed  {_shown(target / rel)}", file=out)
    if not changes.any:
        print(f"{_shown(target)}: already up to date ({len(rendered)} Dockerfiles)", file=out)
    return 0


def plan(
    manifest_path: str | None,
    images: Sequence[str] = (),
    dependents: bool = False,
    fmt: str = "text",
    registry: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    if fmt not in plans.render_formats():
        raise JavabaseError(f"--format {fmt!r} is not one of: {', '.join(plans.render_formats())}")
    manifest = load_manifest(resolve_manifest(manifest_path))
    the_plan = plans.make_plan(manifest, images, dependents, effective_registry(registry))
    if fmt == "json":
        out.write(plans.as_json(the_plan))
    elif fmt == "mermaid":
        out.write(plans.as_mermaid(the_plan))
    else:
        out.write(plans.as_text(the_plan))
    return 0


def effective_registry(flag: str | None) -> str | None:
    """--registry wins, then JAVABASE_REGISTRY, then the manifest's own."""
    value = flag or os.environ.get("JAVABASE_REGISTRY") or None
    if value is not None:
        from .references import REGISTRY_RE

        if not REGISTRY_RE.match(value):
            raise JavabaseError(f"registry {value!r} (from {'--registry' if flag else 'JAVABASE_REGISTRY'}) "
                                "is not HOST or HOST:PORT")
    return value


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
