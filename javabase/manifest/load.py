"""images.yaml -> validated, frozen description of every image.

Loading reports every problem at once (schema and semantic), each as one line
naming file, line and key. Nothing here touches the engine or the network:
yamlsource parses with line numbers, schema checks the JSON Schema,
expand merges defaults and expands versions, model holds the result."""

from __future__ import annotations

from pathlib import Path

from ..errors import ManifestError, Problem
from . import template_dirs
from .expand import Expander
from .model import Manifest
from .schema import schema_problems
from .values import refusal
from .yamlsource import Located, load

SCHEMA_VERSION = 1


def load_manifest(path: Path | str) -> Manifest:
    """Read, validate and expand a manifest, or raise ManifestError with every problem."""
    path = Path(path)
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([Problem(shown, 0, "", "no such file; pass --manifest PATH")]) from None
    except IsADirectoryError:
        raise ManifestError([Problem(shown, 0, "", "is a directory; pass --manifest PATH/images.yaml")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem(shown, 0, "", f"cannot read: {exc}")]) from None
    return parse_manifest(text, shown, path)


def parse_manifest(text: str, shown: str, path: Path) -> Manifest:
    """A manifest's text, read from `path` and shown as `shown`, validated and expanded.
    Its templates are looked up next to it, then in javabase's (template_dirs)."""
    doc = load(text, shown)
    check_top_level(doc)
    problems = list(schema_problems(doc))
    templates = template_dirs.search_path(path.resolve().parent)
    expander = Expander(doc, path.resolve().parent, template_dirs.available(templates))
    images = expander.expand()
    signing = doc.data.get("signing") if isinstance(doc.data.get("signing"), dict) else {}
    key = signing.get("public_key")
    signing_key = expander.inside(key, ("signing", "public_key")) if isinstance(key, str) else None
    problems.extend(expander.problems)
    data = doc.data
    source = data.get("source")
    reason = refusal("quoted", source) if isinstance(source, str) else None
    if reason:
        problems.append(doc.problem(("source",), f"{source!r} {reason}; remove it"))
    if problems:
        raise ManifestError(problems)
    return Manifest(
        path=path,
        shown=shown,
        registry=data["registry"],
        namespace=data.get("namespace"),
        source=source,
        mirrors=dict(data.get("mirrors", {})),
        images=images,
        insecure_registries=tuple(data.get("insecure_registries", ())),
        templates=templates,
        signing_key=signing_key,
        ci_runners={ci: dict(labels) for ci, labels in ((data.get("ci") or {}).get("runners") or {}).items()},
    )


def check_top_level(doc: Located) -> None:
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__ if doc.data is not None else "null"
        raise ManifestError([doc.problem((), f"the top level is a {_yaml_kind(kind)}, not a mapping; "
                                             "start with `schema: 1`, `registry:` and `images:`")])
    version = doc.data.get("schema")
    if version is not None and version != SCHEMA_VERSION:
        raise ManifestError([doc.problem(("schema",), f"unsupported schema version {version!r}; "
                                                      f"this javabase reads schema {SCHEMA_VERSION}")])


def display_path(path: Path) -> str:
    """A path as a person would type it: relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _yaml_kind(python_kind: str) -> str:
    return {"list": "list", "str": "string", "int": "number", "float": "number", "bool": "boolean"}.get(
        python_kind, python_kind
    )
