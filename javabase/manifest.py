"""images.yaml -> validated, frozen description of every image.

Loading reports every problem at once (schema and semantic), each as one line
naming file, line and key. Nothing here touches the engine or the network."""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from . import references as refs
from .errors import ManifestError, Problem
from .yamlsource import Located, Path_, format_key, load

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = PROJECT_ROOT / "schema" / "images.schema.json"
TEMPLATES_DIR = PROJECT_ROOT / "templates"
SCHEMA_VERSION = 1
DEFAULT_VERSION_DEST = "/usr/java/"
DEFAULT_FILE_DEST = "/tmp/javabase/"

_PLACEHOLDER_RE = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*(?:[=<>~]{1,2}[A-Za-z0-9+._:~-]+)?$")
_USER_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+)(?::(?:[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+))?$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class Artifact:
    """A file verified by sha256 that goes into an image's build context."""

    url: str | None
    path: Path | None
    sha256: str
    filename: str
    dest: str
    unpack: bool
    key: str
    line: int

    @property
    def origin(self) -> str:
        return self.url if self.url is not None else str(self.path)


@dataclass(frozen=True)
class Image:
    """One image to build, after defaults are merged and versions expanded."""

    name: str
    entry: str
    key: str
    line: int
    from_ref: str
    parent: str | None
    template: str
    description: str | None
    version: str | None
    packages: tuple[str, ...]
    artifacts: tuple[Artifact, ...]
    env: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    workdir: str | None
    user: str | None
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    run: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...]
    network: bool
    tags: tuple[str, ...]
    immutable_tags: tuple[str, ...] = ()

    @property
    def needs_network(self) -> bool:
        """Builds get no network unless they install packages or ask for it."""
        return self.network or bool(self.packages)


@dataclass(frozen=True)
class Manifest:
    """The whole manifest: where it came from and every image, in file order."""

    path: Path
    shown: str
    registry: str
    namespace: str | None
    source: str | None
    mirrors: Mapping[str, str]
    images: Mapping[str, Image]

    @property
    def directory(self) -> Path:
        return self.path.parent

    def repository(self, image: Image | str, registry: str | None = None) -> str:
        name = image if isinstance(image, str) else image.name
        parts = [registry or self.registry]
        if self.namespace:
            parts.append(self.namespace)
        parts.append(name)
        return "/".join(parts)

    def references(self, image: Image, registry: str | None = None) -> list[str]:
        repo = self.repository(image, registry)
        return [f"{repo}:{tag}" for tag in image.tags]


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def available_templates(templates_dir: Path = TEMPLATES_DIR) -> set[str]:
    suffix = ".Dockerfile.j2"
    return {p.name[: -len(suffix)] for p in templates_dir.glob(f"*{suffix}")}


def load_manifest(path: Path | str, templates_dir: Path = TEMPLATES_DIR) -> Manifest:
    """Read, validate and expand a manifest, or raise ManifestError with every problem."""
    path = Path(path)
    shown = _display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([Problem(shown, 0, "", "no such file; pass --manifest PATH")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem(shown, 0, "", f"cannot read: {exc}")]) from None
    return parse_manifest(text, shown, path, templates_dir)


def parse_manifest(text: str, shown: str, path: Path, templates_dir: Path = TEMPLATES_DIR) -> Manifest:
    doc = load(text, shown)
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__ if doc.data is not None else "null"
        raise ManifestError([doc.problem((), f"the top level is a {_yaml_kind(kind)}, not a mapping; "
                                             "start with `schema: 1`, `registry:` and `images:`")])
    version = doc.data.get("schema")
    if version is not None and version != SCHEMA_VERSION:
        raise ManifestError([doc.problem(("schema",), f"unsupported schema version {version!r}; "
                                                      f"this javabase reads schema {SCHEMA_VERSION}")])
    problems = list(_schema_problems(doc))
    builder = _Expander(doc, path.resolve().parent, available_templates(templates_dir))
    images = builder.expand()
    problems.extend(builder.problems)
    if problems:
        raise ManifestError(problems)
    data = doc.data
    return Manifest(
        path=path,
        shown=shown,
        registry=data["registry"],
        namespace=data.get("namespace"),
        source=data.get("source"),
        mirrors=dict(data.get("mirrors", {})),
        images=images,
    )


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _yaml_kind(python_kind: str) -> str:
    return {"list": "list", "str": "string", "int": "number", "float": "number", "bool": "boolean"}.get(
        python_kind, python_kind
    )


_JSON_KINDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
               "boolean": "true or false", "number": "a number"}


def _schema_problems(doc: Located) -> Iterable[Problem]:
    validator = Draft202012Validator(_schema())
    for error in validator.iter_errors(doc.data):
        yield from _describe(doc, error)


def _describe(doc: Located, error: ValidationError) -> Iterable[Problem]:
    path: Path_ = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in instance:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                tip = f"did you mean '{hint[0]}'?" if hint else f"allowed keys: {', '.join(allowed)}"
                yield doc.problem((*path, key), f"unknown key; {tip}")
        return
    if error.validator == "required" and isinstance(instance, dict):
        required: list[str] = list(error.schema.get("required", [])) if isinstance(error.schema, dict) else []
        for key in required:
            if key not in instance:
                yield doc.problem(path, f"missing required key '{key}'")
        return
    if "propertyNames" in error.relative_schema_path:
        bad = error.instance
        yield doc.problem((*path, str(bad)), f"{bad!r} is not a valid image name; use lower-case letters and digits, "
                                             "separated by '.', '_' or '-'")
        return
    if "x-error" in schema and error.validator in ("pattern", "format"):
        yield doc.problem(path, f"{instance!r} {schema['x-error']}")
        return
    if error.validator == "type":
        expected = _JSON_KINDS.get(str(error.validator_value), str(error.validator_value))
        yield doc.problem(path, f"expected {expected}, got {_describe_value(instance)}")
        return
    if error.validator == "minItems":
        yield doc.problem(path, f"needs at least {error.validator_value} item(s)")
        return
    if error.validator == "minProperties":
        yield doc.problem(path, "must not be empty")
        return
    if error.validator == "const":
        yield doc.problem(path, f"must be {error.validator_value!r}")
        return
    yield doc.problem(path, error.message)


def _describe_value(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number); quote it to make it a string"
    return repr(value)


def breakout_reason(value: str) -> str | None:
    """Why a value would escape its Dockerfile instruction, or None if it is safe."""
    if "\x00" in value:
        return "contains a NUL byte"
    if "\n" in value or "\r" in value:
        return "contains a line break, which would start a new Dockerfile instruction"
    if value.count('"') % 2:
        return "has an unbalanced double quote"
    if value.count("'") % 2:
        return "has an unbalanced single quote"
    return None


def derive_major(version: str) -> str:
    """8u412b08 -> 8, 1.8.0_412 -> 8, 17.0.11_9 -> 17."""
    if version.startswith("1.") and version[2:3].isdigit():
        return re.match(r"1\.(\d+)", version).group(1)  # type: ignore[union-attr]
    match = re.match(r"\d+", version)
    return match.group(0) if match else version


class _Expander:
    """Walks the raw manifest, expands versions and collects semantic problems.

    Every access is guarded, so a structurally broken entry (already reported by
    the schema) is skipped rather than crashing the checks of the others."""

    def __init__(self, doc: Located, base_dir: Path, templates: set[str]) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.templates = templates
        self.problems: list[Problem] = []
        # Every image name the manifest declares, valid or not: a broken parent is
        # reported once, not again as "not an image" by each of its children.
        self.declared: set[str] = set()

    def problem(self, path: Path_, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    # -- helpers -----------------------------------------------------------------
    def substitute(self, text: str, variables: Mapping[str, str], path: Path_) -> str:
        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return variables[name]
            known = ", ".join("{" + k + "}" for k in sorted(variables))
            self.problem(path, f"unknown placeholder {{{name}}}; available here: {known}"
                               " (write ${" + name + "} for a Docker variable)")
            return match.group(0)

        return _PLACEHOLDER_RE.sub(repl, text)

    def safe(self, value: str, path: Path_, what: str) -> bool:
        reason = breakout_reason(value)
        if reason:
            self.problem(path, f"{what} {value!r} {reason}; remove it")
            return False
        return True

    def string_map(self, raw: Any, path: Path_, variables: Mapping[str, str], kind: str) -> dict[str, str]:
        out: dict[str, str] = {}
        if not isinstance(raw, dict):
            return out
        key_re = _ENV_KEY_RE if kind == "env" else _LABEL_KEY_RE
        for key, value in raw.items():
            if not isinstance(value, str):
                continue
            child = (*path, key)
            if not key_re.match(key):
                self.problem(child, f"{'variable' if kind == 'env' else 'label'} name {key!r} is not valid; "
                                    f"use {'letters, digits and _' if kind == 'env' else 'letters, digits, . _ / -'}")
                continue
            value = self.substitute(value, variables, child)
            if self.safe(value, child, "value"):
                out[key] = value
        return out

    # -- expansion -----------------------------------------------------------------
    def expand(self) -> dict[str, Image]:
        data = self.doc.data
        raw_images = data.get("images")
        if not isinstance(raw_images, dict):
            return {}
        defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
        produced: dict[str, tuple[Image, Path_]] = {}
        entries_with_versions: dict[str, list[str]] = {}
        for entry, raw in raw_images.items():
            if not isinstance(raw, dict) or not refs.NAME_RE.match(entry):
                self.declared.add(entry)
                continue
            for image, path in self.expand_entry(entry, raw, defaults):
                if raw.get("versions"):
                    entries_with_versions.setdefault(entry, []).append(image.name)
                if image.name in produced:
                    first = produced[image.name][1]
                    self.problem(path, f"image name {image.name!r} is produced twice, also by "
                                       f"{format_key(first)} (line {self.doc.line(first)}); "
                                       "two images would push the same repository:tag; rename one")
                    continue
                produced[image.name] = (image, path)
        # Repositories are <registry>/<namespace>/<name>: two images push the same
        # repository:tag only when their names are equal, which is reported above.
        images = {name: image for name, (image, _) in produced.items()}
        resolved = self.resolve_parents(images, entries_with_versions)
        self.check_cycles(resolved)
        return resolved

    def expand_entry(self, entry: str, raw: dict[str, Any], defaults: dict[str, Any]) -> list[tuple[Image, Path_]]:
        base: Path_ = ("images", entry)
        versions = raw.get("versions")
        out: list[tuple[Image, Path_]] = []
        if isinstance(versions, list) and versions:
            for index, item in enumerate(versions):
                if not isinstance(item, dict) or not isinstance(item.get("version"), str):
                    continue
                path = (*base, "versions", index)
                version = item["version"]
                major = str(item.get("major") or derive_major(version))
                variables = {"entry": entry, "version": version, "major": major}
                if isinstance(item.get("home"), str):
                    variables["home"] = item["home"]
                pattern = item.get("name") if isinstance(item.get("name"), str) else raw.get("name", "{entry}{major}")
                name_path = (*path, "name") if "name" in item else (*base, "name") if "name" in raw else path
                name = self.substitute(str(pattern), variables, name_path)
                if not refs.NAME_RE.match(name):
                    self.problem(name_path, f"image name {name!r} is not a valid Docker repository name; "
                                            "use lower-case letters and digits, separated by '.', '_' or '-'")
                    continue
                variables["name"] = name
                self.declared.add(name)
                image = self.build_image(entry, name, raw, item, path, variables, defaults)
                if image:
                    out.append((image, path))
        else:
            variables = {"entry": entry, "name": entry}
            self.declared.add(entry)
            image = self.build_image(entry, entry, raw, None, base, variables, defaults)
            if image:
                out.append((image, base))
        return out

    def build_image(
        self,
        entry: str,
        name: str,
        raw: dict[str, Any],
        item: dict[str, Any] | None,
        path: Path_,
        variables: dict[str, str],
        defaults: dict[str, Any],
    ) -> Image | None:
        base: Path_ = ("images", entry)
        before = len(self.problems)
        template = raw.get("template")
        if isinstance(template, str) and template not in self.templates:
            hint = difflib.get_close_matches(template, sorted(self.templates), n=1)
            tip = f"did you mean '{hint[0]}'?" if hint else f"available: {', '.join(sorted(self.templates))}"
            self.problem((*base, "template"), f"unknown template {template!r}; {tip}")
        env = self.string_map(defaults.get("env"), ("defaults", "env"), variables, "env")
        env.update(self.string_map(raw.get("env"), (*base, "env"), variables, "env"))
        labels = self.string_map(defaults.get("labels"), ("defaults", "labels"), variables, "labels")
        labels.update(self.string_map(raw.get("labels"), (*base, "labels"), variables, "labels"))
        build_args = self.string_map(raw.get("build_args"), (*base, "build_args"), variables, "env")
        packages = self.packages(raw.get("packages"), (*base, "packages"))
        artifacts = self.artifacts(raw.get("artifacts"), (*base, "artifacts"))
        if item is not None and ("url" in item or "path" in item or "sha256" in item):
            version_artifact = self.artifact(item, path, DEFAULT_VERSION_DEST, unpack=True, named=False)
            if version_artifact:
                artifacts.append(version_artifact)
        names = [a.filename for a in artifacts]
        for artifact in artifacts:
            if names.count(artifact.filename) > 1:
                self.problem((*base, "artifacts"), f"two artifacts are both named {artifact.filename!r} in the "
                                                   "build context; give one a `name`")
                break
        workdir = self.path_value(raw.get("workdir"), (*base, "workdir"), variables, "workdir")
        user = raw.get("user")
        if isinstance(user, str) and self.safe(user, (*base, "user"), "user") and not _USER_RE.match(user):
            self.problem((*base, "user"), f"user {user!r} is not NAME, UID, NAME:GROUP or UID:GID")
        run = []
        for index, command in enumerate(raw.get("run") or []):
            if isinstance(command, str):
                reason = breakout_reason(command) if ("\n" in command or "\x00" in command) else None
                if reason:
                    self.problem((*base, "run", index), f"command {reason}; write one command per list item")
                run.append(command)
        tags_raw = item.get("tags") if item and isinstance(item.get("tags"), list) else raw.get("tags")
        tags_path: Path_ = (*path, "tags") if item and "tags" in item else (*base, "tags")
        tags = []
        for index, tag in enumerate(tags_raw if isinstance(tags_raw, list) else []):
            if not isinstance(tag, str):
                continue
            value = self.substitute(tag, variables, (*tags_path, index))
            if _PLACEHOLDER_RE.search(value):
                continue  # the unknown placeholder is already reported
            if not refs.TAG_RE.match(value):
                self.problem((*tags_path, index), f"tag {value!r} is not a valid Docker tag; use up to 128 "
                                                  "letters, digits, '_', '.' and '-', not starting with '.' or '-'")
            elif value in tags:
                self.problem((*tags_path, index), f"tag {value!r} is listed twice for image {name!r}")
            else:
                tags.append(value)
        immutable_raw = (item.get("immutable_tags") if item and isinstance(item.get("immutable_tags"), list)
                         else raw.get("immutable_tags"))
        immutable_path: Path_ = ((*path, "immutable_tags") if item and "immutable_tags" in item
                                 else (*base, "immutable_tags"))
        immutable = []
        for index, tag in enumerate(immutable_raw if isinstance(immutable_raw, list) else []):
            if not isinstance(tag, str):
                continue
            value = self.substitute(tag, variables, (*immutable_path, index))
            if value not in tags:
                self.problem((*immutable_path, index), f"immutable tag {value!r} is not one of the tags of "
                                                       f"{name!r} ({', '.join(tags)}); list it under tags too")
            else:
                immutable.append(value)
        from_ref = raw.get("from")
        if not isinstance(from_ref, str) or not isinstance(template, str) or not tags_raw:
            return None
        from_ref = self.substitute(from_ref, variables, (*base, "from"))
        if len(self.problems) > before:
            return None
        entrypoint = raw.get("entrypoint")
        cmd = raw.get("cmd")
        description = raw.get("description")
        return Image(
            name=name,
            entry=entry,
            key=format_key(path),
            line=self.doc.line(path),
            from_ref=from_ref,
            parent=None,
            template=template,
            description=description if isinstance(description, str) else None,
            version=variables.get("version"),
            packages=tuple(packages),
            artifacts=tuple(artifacts),
            env=tuple(env.items()),
            labels=tuple(labels.items()),
            workdir=workdir,
            user=user if isinstance(user, str) else None,
            entrypoint=tuple(entrypoint) if isinstance(entrypoint, list) else None,
            cmd=tuple(cmd) if isinstance(cmd, list) else None,
            run=tuple(run),
            build_args=tuple(build_args.items()),
            network=bool(raw.get("network", False)),
            tags=tuple(tags),
            immutable_tags=tuple(immutable),
        )

    def path_value(self, raw: Any, path: Path_, variables: Mapping[str, str], what: str) -> str | None:
        if not isinstance(raw, str):
            return None
        value = self.substitute(raw, variables, path)
        if not self.safe(value, path, what):
            return None
        if not value.startswith("/"):
            self.problem(path, f"{what} {value!r} is not an absolute path; start it with /")
            return None
        return value

    def packages(self, raw: Any, path: Path_) -> list[str]:
        out: list[str] = []
        for index, package in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(package, str):
                continue
            child = (*path, index)
            if not self.safe(package, child, "package"):
                continue
            if not _PACKAGE_RE.match(package):
                self.problem(child, f"package {package!r} is not a package name (optionally =version)")
                continue
            out.append(package)
        return out

    def artifacts(self, raw: Any, path: Path_) -> list[Artifact]:
        out = []
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(item, dict):
                artifact = self.artifact(item, (*path, index), DEFAULT_FILE_DEST, bool(item.get("unpack", False)))
                if artifact:
                    out.append(artifact)
        return out

    def artifact(self, item: dict[str, Any], path: Path_, default_dest: str, unpack: bool,
                 named: bool = True) -> Artifact | None:
        """named: the item's `name` is the file name (in a version item it is the image name)."""
        url, local, sha = item.get("url"), item.get("path"), item.get("sha256")
        if (url is None) == (local is None):
            self.problem(path, "give exactly one of `url` and `path`")
            return None
        if not isinstance(sha, str):
            if "sha256" not in item:
                self.problem(path, "missing required key 'sha256'; copy the sha256 published with the file")
            return None
        if not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            return None  # reported by the schema
        resolved: Path | None = None
        if isinstance(local, str):
            if not self.safe(local, (*path, "path"), "path"):
                return None
            resolved = (self.base_dir / local).resolve()
            source_name = resolved.name
        elif isinstance(url, str):
            if not self.safe(url, (*path, "url"), "url"):
                return None
            source_name = posixpath.basename(unquote(urlsplit(url).path))
        else:
            return None
        filename = item["name"] if named and isinstance(item.get("name"), str) else source_name
        if not filename or not re.fullmatch(r"[A-Za-z0-9._+-]+", filename):
            self.problem(path, f"cannot use {filename!r} as a file name in the build context; add `name: FILE`")
            return None
        dest = item.get("dest", default_dest)
        if not isinstance(dest, str) or not self.safe(dest, (*path, "dest"), "dest"):
            return None
        if not dest.startswith("/"):
            self.problem((*path, "dest"), f"dest {dest!r} is not an absolute path; start it with /")
            return None
        return Artifact(
            url=url if isinstance(url, str) else None,
            path=resolved,
            sha256=sha.lower(),
            filename=filename,
            dest=dest,
            unpack=unpack,
            key=format_key(path),
            line=self.doc.line(path),
        )

    # -- whole-manifest checks ---------------------------------------------------------
    def resolve_parents(
        self,
        images: dict[str, Image],
        entries_with_versions: Mapping[str, list[str]],
    ) -> dict[str, Image]:
        out: dict[str, Image] = {}
        for name, image in images.items():
            from_path: Path_ = ("images", image.entry, "from")
            ref = image.from_ref
            parent: str | None = None
            if ref == "scratch":
                pass
            elif ref in images:
                parent = ref
                if ref == name:
                    self.problem(from_path, f"image {name!r} is built FROM itself")
            elif ref in entries_with_versions:
                choices = ", ".join(entries_with_versions[ref])
                self.problem(from_path, f"{ref!r} expands into several images ({choices}); name one of them")
            elif ref in self.declared:
                pass  # the parent itself is invalid and already reported
            elif refs.looks_outside(ref):
                parsed = refs.parse_outside(ref)
                if isinstance(parsed, str):
                    self.problem(from_path, f"{ref!r} {parsed}")
            else:
                hint = difflib.get_close_matches(ref, sorted(images), n=1)
                tip = f"did you mean '{hint[0]}'? " if hint else ""
                self.problem(from_path, f"{ref!r} is not an image of this manifest; {tip}"
                                        "(an outside image needs a tag or digest, e.g. alpine:3.20)")
            out[name] = replace(image, parent=parent)
        return out

    def check_cycles(self, images: Mapping[str, Image]) -> None:
        reported: set[frozenset[str]] = set()
        for start in images:
            seen: list[str] = []
            current: str | None = start
            while current is not None and current not in seen:
                seen.append(current)
                current = images[current].parent if current in images else None
            if current is None:
                continue
            cycle = seen[seen.index(current):]
            members = frozenset(cycle)
            if members in reported or len(cycle) < 2:
                continue
            reported.add(members)
            first = min(cycle)
            rotated = cycle[cycle.index(first):] + cycle[: cycle.index(first)]
            chain = " -> ".join([*rotated, rotated[0]])
            entry = images[first].entry
            self.problem(("images", entry, "from"), f"dependency cycle: {chain} "
                                                    "(each is built FROM the next); break it")
