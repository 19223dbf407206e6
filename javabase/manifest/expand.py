"""Pure: the raw manifest (after YAML and schema) -> one Image per image, with
defaults merged, versions expanded and every semantic problem collected.

Every access is guarded, so a structurally broken entry (already reported by
the schema) is skipped rather than crashing the checks of the others."""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import Problem
from . import references as refs
from . import runtime
from .declared_tests import image_tests
from .model import Artifact, Image, redacted
from .values import refusal
from .yamlsource import Located, Path_, format_key

DEFAULT_VERSION_DEST = "/usr/java/"
DEFAULT_FILE_DEST = "/tmp/javabase/"

_PLACEHOLDER_RE = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*(?:[=<>~]{1,2}[A-Za-z0-9+._:~-]+)?$")
_USER_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+)(?::(?:[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+))?$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")
_SECRET_RE = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|CREDENTIAL", re.IGNORECASE)
# Labels javabase writes itself, recording the build: a manifest may not set them.
RESERVED_LABELS = frozenset({"org.opencontainers.image.created", "org.opencontainers.image.revision",
                             "org.opencontainers.image.base.name", "org.opencontainers.image.base.digest"})
RESERVED_LABEL_PREFIX = "io.javabase."
# Names the build context needs for itself.
RESERVED_FILENAMES = frozenset({"Dockerfile", ".dockerignore"})


def one_file_for_several(item: Mapping[str, Any], platforms: tuple[str, ...]) -> str:
    """The problem of one file (url/path + sha256) for an image built for several
    platforms: every platform's image would get it, an x64 tarball in the arm64
    image. Names the platforms and shows the per-platform form to write."""
    source = "url" if "url" in item else "path"
    form = ", ".join(f"{p}: {{{source}: ..., sha256: ...}}" for p in platforms)
    return (f"one file ({source} + sha256) for {', '.join(platforms)}: every platform's image would get the same "
            f"file; give one per platform, `platforms: {{{form}}}`, or say `platform_independent: true` when the file "
            "is the same for every platform")


def derive_major(version: str) -> str:
    """8u412b08 -> 8, 1.8.0_412 -> 8, 17.0.11_9 -> 17."""
    old_style = re.match(r"1\.(\d+)", version)
    if old_style:
        return old_style.group(1)
    match = re.match(r"\d+", version)
    return match.group(0) if match else version


@dataclass(frozen=True)
class _Where:
    """An image being expanded: its entry, its path in the YAML and its variables."""

    entry: str
    name: str
    raw: dict[str, Any]
    item: dict[str, Any] | None
    path: Path_
    variables: dict[str, str]

    @property
    def base(self) -> Path_:
        return ("images", self.entry)

    def own(self, key: str) -> tuple[Any, Path_]:
        """A key the version item may override: its value and where it is."""
        if self.item is not None and key in self.item:
            return self.item[key], (*self.path, key)
        return self.raw.get(key), (*self.base, key)


class Expander:
    """Walks the raw manifest and collects problems in `problems`."""

    def __init__(self, doc: Located, base_dir: Path, templates: set[str]) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.templates = templates
        self.problems: list[Problem] = []
        # Every image name the manifest declares, valid or not: a broken parent is
        # reported once, not again as "not an image" by each of its children.
        self.declared: set[str] = set()
        self.font_keys: dict[str, Path_] = {}  # where each image's `fonts` comes from

    def problem(self, path: Path_, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    # -- values ------------------------------------------------------------------
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

    def safe(self, value: str, path: Path_, what: str, position: str) -> bool:
        """Whether `value` can be written at its position in a Dockerfile
        (javabase.manifest.values); if not, the problem is reported."""
        reason = refusal(position, value)
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
            if kind == "labels" and (key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIX)):
                self.problem(child, f"label {key!r} is set by javabase (it records the build); remove it")
            elif self.safe(value, child, "value", "quoted"):
                out[key] = value
        return out

    def build_args(self, raw: Any, path: Path_, variables: Mapping[str, str]) -> dict[str, str]:
        out = self.string_map(raw, path, variables, "env")
        for name in list(out):
            if _SECRET_RE.search(name):
                self.problem((*path, name), f"build arg {name!r} looks like a secret; its value would be written "
                                            "into builds/, the build output, the image history and the pushed "
                                            "config. Remove it (docs/registries.md: Secrets)")
                del out[name]
        return out

    def text(self, raw: Any, path: Path_, what: str) -> str | None:
        """A free-text value (description): any text that stays on its line."""
        if not isinstance(raw, str) or not self.safe(raw, path, what, "quoted"):
            return None
        return raw

    def path_value(self, raw: Any, path: Path_, variables: Mapping[str, str], what: str) -> str | None:
        if not isinstance(raw, str):
            return None
        value = self.substitute(raw, variables, path)
        if not self.safe(value, path, what, "word"):
            return None
        if not value.startswith("/"):
            self.problem(path, f"{what} {value!r} is not an absolute path; start it with /")
            return None
        return value

    # -- the whole manifest --------------------------------------------------------
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
        if not self.problems:
            runtime.check_fonts_line(self, resolved, self.font_keys)
        return resolved

    def expand_entry(self, entry: str, raw: dict[str, Any], defaults: dict[str, Any]) -> list[tuple[Image, Path_]]:
        versions = raw.get("versions")
        if not (isinstance(versions, list) and versions):
            self.declared.add(entry)
            where = _Where(entry, entry, raw, None, ("images", entry), {"entry": entry, "name": entry})
            image = self.image(where, defaults)
            return [(image, where.path)] if image else []
        out: list[tuple[Image, Path_]] = []
        for index, item in enumerate(versions):
            if not (isinstance(item, dict) and isinstance(item.get("version"), str)):
                continue
            version = self.version(entry, raw, item, ("images", entry, "versions", index))
            image = self.image(version, defaults) if version else None
            if image and version:
                out.append((image, version.path))
        return out

    def version(self, entry: str, raw: dict[str, Any], item: dict[str, Any], path: Path_) -> _Where | None:
        """One item of `versions`: its variables and its image name."""
        version = item["version"]
        variables = {"entry": entry, "version": version, "major": str(item.get("major") or derive_major(version))}
        if isinstance(item.get("home"), str):
            variables["home"] = item["home"]
        pattern = item.get("name") if isinstance(item.get("name"), str) else raw.get("name", "{entry}{major}")
        name_path = (*path, "name") if "name" in item else ("images", entry, "name") if "name" in raw else path
        name = self.substitute(str(pattern), variables, name_path)
        if not refs.NAME_RE.match(name):
            self.problem(name_path, f"image name {name!r} is not a valid Docker repository name; "
                                    "use lower-case letters and digits, separated by '.', '_' or '-'")
            return None
        variables["name"] = name
        self.declared.add(name)
        return _Where(entry, name, raw, item, path, variables)

    # -- one image -------------------------------------------------------------------
    def image(self, where: _Where, defaults: dict[str, Any]) -> Image | None:
        raw, base, variables = where.raw, where.base, where.variables
        before = len(self.problems)
        template = raw.get("template")
        self.check_template(template, (*base, "template"))
        env = self.string_map(defaults.get("env"), ("defaults", "env"), variables, "env")
        env.update(self.string_map(raw.get("env"), (*base, "env"), variables, "env"))
        labels = self.string_map(defaults.get("labels"), ("defaults", "labels"), variables, "labels")
        labels.update(self.string_map(raw.get("labels"), (*base, "labels"), variables, "labels"))
        build_args = self.build_args(raw.get("build_args"), (*base, "build_args"), variables)
        packages = self.packages(raw.get("packages"), (*base, "packages"))
        artifacts = self.image_artifacts(where, defaults)
        workdir = self.path_value(raw.get("workdir"), (*base, "workdir"), variables, "workdir")
        user, account = runtime.user(self, *runtime.own_or_default(raw, defaults, base, "user"))
        fonts_value, fonts_path = runtime.own_or_default(raw, defaults, base, "fonts")
        fonts, font_packages = runtime.fonts(self, fonts_value, fonts_path, template)
        runtime.jvm_options(self, *runtime.own_or_default(raw, defaults, base, "jvm_options"), variables, env)
        tests = image_tests(self, self.doc.line, raw, defaults, base, variables)
        run = self.run_commands(raw.get("run"), (*base, "run"))
        description = self.text(raw.get("description"), (*base, "description"), "description")
        tags = self.tags(where)
        immutable = self.immutable_tags(where, tags)
        from_ref = raw.get("from")
        if not isinstance(from_ref, str) or not isinstance(template, str) or not where.own("tags")[0]:
            return None
        from_ref = self.substitute(from_ref, variables, (*base, "from"))
        if len(self.problems) > before:
            return None
        if fonts:
            self.font_keys[where.name] = fonts_path
        entrypoint, cmd = raw.get("entrypoint"), raw.get("cmd")
        network = "host" if raw.get("network") == "host" else bool(raw.get("network", False))
        return Image(
            name=where.name, entry=where.entry, key=format_key(where.path), line=self.doc.line(where.path),
            from_ref=from_ref, parent=None, template=template, description=description,
            version=variables.get("version"), packages=tuple(packages), artifacts=tuple(artifacts),
            env=tuple(env.items()), labels=tuple(labels.items()), workdir=workdir, user=user,
            entrypoint=tuple(entrypoint) if isinstance(entrypoint, list) else None,
            cmd=tuple(cmd) if isinstance(cmd, list) else None, run=tuple(run),
            build_args=tuple(build_args.items()), network=network,
            tags=tuple(tags), immutable_tags=tuple(immutable), platforms=self.platforms(where), account=account,
            fonts=fonts, font_packages=font_packages, tests=tests, from_line=self.doc.line((*base, "from")),
        )

    def check_template(self, template: Any, path: Path_) -> None:
        if isinstance(template, str) and template not in self.templates:
            hint = difflib.get_close_matches(template, sorted(self.templates), n=1)
            tip = f"did you mean '{hint[0]}'?" if hint else f"available: {', '.join(sorted(self.templates))}"
            self.problem(path, f"unknown template {template!r}; {tip}")

    def user(self, user: Any, path: Path_) -> str | None:
        if not isinstance(user, str):
            return None
        if self.safe(user, path, "user", "word") and not _USER_RE.match(user):
            self.problem(path, f"user {user!r} is not NAME, UID, NAME:GROUP or UID:GID")
        return user

    def run_commands(self, raw: Any, path: Path_) -> list[str]:
        out = []
        for index, command in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(command, str):
                # Quotes and $ inside a shell command are the shell's business; what
                # would leave the RUN instruction is not.
                reason = refusal("command", command)
                if reason:
                    self.problem((*path, index), f"command {reason}; write one command per list item")
                out.append(command)
        return out

    def tags(self, where: _Where) -> list[str]:
        raw, tags_path = where.own("tags")
        tags: list[str] = []
        for index, tag in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(tag, str):
                continue
            value = self.substitute(tag, where.variables, (*tags_path, index))
            if _PLACEHOLDER_RE.search(value):
                continue  # the unknown placeholder is already reported
            if not refs.TAG_RE.match(value):
                self.problem((*tags_path, index), f"tag {value!r} is not a valid Docker tag; use up to 128 "
                                                  "letters, digits, '_', '.' and '-', not starting with '.' or '-'")
            elif value in tags:
                self.problem((*tags_path, index), f"tag {value!r} is listed twice for image {where.name!r}")
            else:
                tags.append(value)
        return tags

    def immutable_tags(self, where: _Where, tags: list[str]) -> list[str]:
        raw, path = where.own("immutable_tags")
        out = []
        for index, tag in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(tag, str):
                continue
            value = self.substitute(tag, where.variables, (*path, index))
            if value not in tags:
                self.problem((*path, index), f"immutable tag {value!r} is not one of the tags of "
                                             f"{where.name!r} ({', '.join(tags)}); list it under tags too")
            else:
                out.append(value)
        return out

    def packages(self, raw: Any, path: Path_) -> list[str]:
        out: list[str] = []
        for index, package in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(package, str):
                continue
            child = (*path, index)
            if not self.safe(package, child, "package", "shell"):
                continue
            if not _PACKAGE_RE.match(package):
                self.problem(child, f"package {package!r} is not a package name (optionally =version)")
                continue
            out.append(package)
        return out

    # -- artifacts -------------------------------------------------------------------
    def image_artifacts(self, where: _Where, defaults: dict[str, Any]) -> list[Artifact]:
        """The entry's `artifacts`, then the version item's own tarball, then its certificates."""
        path = (*where.base, "artifacts")
        raw = where.raw.get("artifacts")
        out: list[Artifact] = []
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(item, dict):
                out += self.variants(item, (*path, index), DEFAULT_FILE_DEST, bool(item.get("unpack", False)), True,
                                     where)
        item = where.item
        if item is not None and ("url" in item or "path" in item or "sha256" in item or "platforms" in item):
            out += self.variants(item, where.path, DEFAULT_VERSION_DEST, True, False, where)
        out += runtime.certificates(self, where.raw, defaults, where.base)
        # Variants of one artifact share its key and file name: count each artifact once.
        names = [filename for _, filename in dict.fromkeys((a.key, a.filename) for a in out)]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            self.problem(path, f"two artifacts are both named {duplicate!r} in the build context; give one a `name`")
        return out

    def variants(self, item: dict[str, Any], path: Path_, default_dest: str, unpack: bool, named: bool,
                 where: _Where) -> list[Artifact]:
        """One artifact, or with `platforms:` one per platform, all under one file
        name; every platform the image is built for needs its own."""
        files = item.get("platforms")
        platforms = self.platforms(where)
        if not isinstance(files, dict):
            if len(platforms) > 1 and item.get("platform_independent") is not True:
                self.problem(path, one_file_for_several(item, platforms))
                return []
            artifact = self.artifact(item, path, default_dest, unpack, named)
            return [artifact] if artifact else []
        if "url" in item or "path" in item or "sha256" in item:
            self.problem(path, "give either `platforms` or url/path and sha256, not both")
            return []
        if item.get("platform_independent") is True:
            self.problem(path, "has a file per platform and says `platform_independent: true`; keep one of the two")
            return []
        if not platforms:
            self.problem((*path, "platforms"), "has files per platform, but the image names no `platforms:`; "
                                               "list the platforms it is built for")
            return []
        missing = [p for p in platforms if p not in files]
        if missing:
            self.problem((*path, "platforms"), f"has no file for {', '.join(missing)}, which the image is built "
                                               f"for ({', '.join(platforms)}); add one")
            return []
        out = []
        for platform in platforms:
            if isinstance(files[platform], dict):
                artifact = self.artifact({**files[platform], **{k: item[k] for k in ("name", "dest") if k in item}},
                                         (*path, "platforms", platform), default_dest, unpack, named, path)
                if artifact:
                    out.append(replace(artifact, platform=platform))
        if out and not named:  # a version's tarball: every platform's goes in under the first one's name
            out = [replace(a, filename=out[0].filename) for a in out]
        if len({a.filename for a in out}) > 1:
            names = ", ".join(sorted({a.filename for a in out}))
            self.problem(path, f"the platforms' files have different names ({names}); give the artifact a `name` "
                               "for the build context")
            return []
        return out

    def platforms(self, where: _Where) -> tuple[str, ...]:
        raw = where.raw.get("platforms", self.doc.data.get("defaults", {}).get("platforms")
                            if isinstance(self.doc.data.get("defaults"), dict) else None)
        return tuple(p for p in raw if isinstance(p, str)) if isinstance(raw, list) else ()

    def artifact(self, item: dict[str, Any], path: Path_, default_dest: str, unpack: bool,
                 named: bool = True, key_path: Path_ | None = None) -> Artifact | None:
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
        source = self.source(url, local, path)
        if source is None:
            return None
        resolved, source_name = source
        filename = item["name"] if named and isinstance(item.get("name"), str) else source_name
        if not self.filename_ok(filename, path):
            return None
        dest = item.get("dest", default_dest)
        if not isinstance(dest, str) or not self.safe(dest, (*path, "dest"), "dest", "word"):
            return None
        if not dest.startswith("/"):
            self.problem((*path, "dest"), f"dest {dest!r} is not an absolute path; start it with /")
            return None
        key = key_path or path
        return Artifact(url=url if isinstance(url, str) else None, path=resolved, sha256=sha.lower(),
                        filename=filename, dest=dest, unpack=unpack, key=format_key(key), line=self.doc.line(path))

    def source(self, url: Any, local: Any, path: Path_) -> tuple[Path | None, str] | None:
        """(resolved local path or None, file name) of an artifact's url or path."""
        if isinstance(local, str):
            if not self.safe(local, (*path, "path"), "path", "quoted"):
                return None
            resolved = self.inside(local, (*path, "path"))
            return (resolved, resolved.name) if resolved else None
        if isinstance(url, str) and self.safe(url, (*path, "url"), "url", "quoted"):
            parts = urlsplit(url)
            if parts.username is not None or parts.password is not None:
                self.problem((*path, "url"), f"{redacted(url)!r} carries a user name or password; it would be "
                                             "shown in labels, logs and reports. Serve the file without "
                                             "credentials, or download it next to the manifest and use `path:`")
                return None
            return None, posixpath.basename(unquote(parts.path))
        return None

    def inside(self, local: str, path: Path_) -> Path | None:
        """A `path:` resolved (symlinks too) inside the manifest's directory tree, or None."""
        resolved = (self.base_dir / local).resolve()
        if not resolved.is_relative_to(self.base_dir.resolve()):
            self.problem(path, f"path {local!r} leaves the manifest's directory; put the file next to the "
                               "manifest (or below it) and name it relative to the manifest")
            return None
        return resolved

    def filename_ok(self, filename: Any, path: Path_) -> bool:
        if not isinstance(filename, str) or not filename or not _FILENAME_RE.match(filename) \
                or filename in RESERVED_FILENAMES:
            self.problem(path, f"cannot use {filename!r} as a file name in the build context; add `name: FILE` "
                               "(letters, digits, '.', '_', '+', '-'; not starting with '.'; not Dockerfile)")
            return False
        return True

    # -- whole-manifest checks ---------------------------------------------------------
    def resolve_parents(self, images: dict[str, Image], entries_with_versions: Mapping[str, list[str]]
                        ) -> dict[str, Image]:
        return {name: replace(image, parent=self.parent_of(image, images, entries_with_versions))
                for name, image in images.items()}

    def parent_of(self, image: Image, images: Mapping[str, Image],
                  entries_with_versions: Mapping[str, list[str]]) -> str | None:
        from_path: Path_ = ("images", image.entry, "from")
        ref = image.from_ref
        if ref == "scratch":
            return None
        if ref in images:
            if ref == image.name:
                self.problem(from_path, f"image {image.name!r} is built FROM itself")
            lacking = [p for p in image.platforms if p not in images[ref].platforms]
            if lacking or (images[ref].platforms and not image.platforms):
                native = "the engine's own platform only"
                needed = ", ".join(image.platforms) or native
                has = ", ".join(images[ref].platforms) or native
                self.problem(from_path, f"{ref!r} is built for {has}, and {image.name!r} needs {needed}; give both "
                                        "the same `platforms:`")
            return ref
        if ref in entries_with_versions:
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
        return None

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
            if frozenset(cycle) in reported or len(cycle) < 2:
                continue
            reported.add(frozenset(cycle))
            first = min(cycle)
            rotated = cycle[cycle.index(first):] + cycle[: cycle.index(first)]
            chain = " -> ".join([*rotated, rotated[0]])
            self.problem(("images", images[first].entry, "from"), f"dependency cycle: {chain} "
                                                                  "(each is built FROM the next); break it")
