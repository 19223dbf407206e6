"""Pure: image -> Dockerfile text, plus the two ways of putting the result
on disk: an atomic write of the whole builds/ directory, and a check that
reports every file that differs from what would be written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ..errors import CannotWrite, RenderError
from ..manifest.model import Image, Manifest
from ..manifest.template_dirs import file_name
from ..manifest.values import Unrepresentable, quoted, word
from . import templates

DOCKERFILE = "Dockerfile"


def dockerfile_path(image: Image | str) -> str:
    name = image if isinstance(image, str) else image.name
    return f"{name}/{DOCKERFILE}"


ROOT_USERS = ("root", "0", "0:0", "root:root")


def render_image(env: jinja2.Environment, manifest: Manifest, image: Image) -> str:
    """One Dockerfile. The template sees `image`, `manifest`, `mirrors`, and of the
    parent image (when it is in the manifest) `parent`, `parent_ref` (its first
    reference), `parent_user` (the USER it runs as, its own or an ancestor's, when
    not root: the template's own steps then run as root and USER is set again at
    the end) and `parent_account` (the account behind it); `trusted`: every
    certificate of the image and its ancestors."""
    template_name = file_name(image.template)
    parent = manifest.images[image.parent] if image.parent is not None else None
    parent_ref = manifest.references(parent)[0] if parent is not None else None
    runs_as = next((i for i in reversed(manifest.lineage(parent)) if i.user), None) if parent is not None else None
    parent_user = runs_as.user if runs_as is not None and runs_as.user not in ROOT_USERS else None
    try:
        text = env.get_template(template_name).render(
            image=image,
            manifest=manifest,
            manifest_name=manifest.path.name,
            mirrors={"apk": None, "apt": None, **manifest.mirrors},
            parent=parent,
            parent_ref=parent_ref,
            parent_user=parent_user,
            parent_account=runs_as.account if runs_as is not None else None,
            trusted=manifest.trusted(image),
        )
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"templates/{exc.name or template_name}:{exc.lineno}: {exc.message}; "
                          f"fix the template (rendering {image.name})") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"templates/{template_name}: {exc.message} while rendering {image.name} "
                          f"({manifest.path.name}:{image.line}); fix the template or the manifest") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"templates/{exc.name}: template not found (rendering {image.name})") from None
    except Unrepresentable as exc:
        raise RenderError(f"templates/{template_name}: rendering {image.name} ({manifest.path.name}:{image.line}): "
                          f"{exc}; fix the manifest") from None
    # Normalise: no trailing spaces, exactly one newline at the end.
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def render_all(manifest: Manifest) -> dict[str, str]:
    """Every Dockerfile of the manifest, by path relative to builds/, in sorted order.
    Raises RenderError (one line naming the template and the image)."""
    env = templates.environment(manifest.templates)
    for template in sorted({image.template for image in manifest.images.values()}):
        templates.check_positions(file_name(template), manifest.templates)
    return {dockerfile_path(image): render_image(env, manifest, image)
            for image in sorted(manifest.images.values(), key=lambda i: i.name)}


def label_instruction(labels: Mapping[str, str]) -> str:
    body = " \\\n      ".join(f"{word(key)}={quoted(value)}" for key, value in sorted(labels.items()))
    return f"# Added by javabase at build time\nLABEL {body}\n"


def with_labels(dockerfile: str, image: Image, labels: Mapping[str, str]) -> str:
    """The rendered Dockerfile with one LABEL instruction holding the manifest's
    labels and `labels` (the build-time ones): the template's own LABEL (written
    from image.labels and description) is taken out, so the build has one label step."""
    own = dict(image.labels)
    if image.description:
        own["org.opencontainers.image.description"] = image.description
    lines = dockerfile.splitlines(keepends=True)
    out: list[str] = []
    continuing = False
    for line in lines:
        if continuing or (own and line.startswith("LABEL ")):
            continuing = line.rstrip("\n").endswith("\\")
            continue
        out.append(line)
    return "".join(out) + label_instruction({**own, **labels})


def read_tree(out_dir: Path) -> dict[str, str]:
    """What builds/ holds now, by relative path (unreadable files read as None-marker)."""
    found: dict[str, str] = {}
    if not out_dir.is_dir():
        return found
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            rel = path.relative_to(out_dir).as_posix()
            try:
                found[rel] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                found[rel] = "\x00unreadable"
    return found


@dataclass(frozen=True)
class Changes:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def diff_tree(rendered: Mapping[str, str], current: Mapping[str, str]) -> Changes:
    return Changes(
        added=tuple(sorted(p for p in rendered if p not in current)),
        changed=tuple(sorted(p for p in rendered if p in current and current[p] != rendered[p])),
        removed=tuple(sorted(p for p in current if p not in rendered)),
    )


def check_builds(rendered: Mapping[str, str], out_dir: Path) -> list[str]:
    """One line per file that differs between builds/ and the rendering."""
    changes = diff_tree(rendered, read_tree(out_dir))
    shown = out_dir.name
    return ([f"{shown}/{p}: missing (the manifest renders it)" for p in changes.added]
            + [f"{shown}/{p}: differs from what the manifest renders" for p in changes.changed]
            + [f"{shown}/{p}: not rendered by the manifest (stale; delete it)" for p in changes.removed])


def write_builds(rendered: Mapping[str, str], out_dir: Path) -> Changes:
    """Replace out_dir with exactly the rendered files, or leave it as it was.

    The new tree is written beside out_dir and swapped in with two renames, so a
    failure at any point leaves the old builds/ in place."""
    changes = diff_tree(rendered, read_tree(out_dir))
    if not changes.any:
        return changes
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out_dir.name}.new-{os.getpid()}"
    old = parent / f".{out_dir.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        made: set[Path] = set()
        for rel, text in rendered.items():
            target = tmp / rel
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            target.write_bytes(text.encode("utf-8"))
        moved = False
        if out_dir.exists():
            os.rename(out_dir, old)
            moved = True
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if moved:
                os.rename(old, out_dir)
            raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CannotWrite(f"{out_dir}: cannot write the rendered Dockerfiles ({exc.strerror or exc}); "
                          "builds/ was left as it was") from None
    shutil.rmtree(old, ignore_errors=True)
    return changes


def builds_dir(manifest: Manifest) -> Path:
    """builds/ next to the manifest: javabase's, rewritten as a whole by write_builds."""
    return manifest.directory.resolve() / "builds"
