"""The lock file (images.lock.json next to the manifest): per image the
resolved digest of its outside base, the sha256 of every artifact and the hash
of its template, so that a release can be rebuilt from the same inputs.

Computing, comparing and applying a lock is pure; resolving a tag to a digest
goes through the registry client passed in."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import LockError, RegistryError
from ..files import write_atomically
from ..manifest import references as refs
from ..manifest.model import Artifact, Image, Manifest
from ..plan.templates import template_hash
from ..publish.registry import Registry

LOCK_NAME = "images.lock.json"
LOCK_VERSION = 1
DOCKER_HUB = "registry-1.docker.io"

Resolver = Callable[[str], str]
PlatformResolver = Callable[[str, str], dict[str, str]]


def lock_path(manifest: Manifest) -> Path:
    return manifest.directory / LOCK_NAME


def _strip_digest(ref: str) -> str:
    return ref.split("@", 1)[0]


def _entry(image: Image, base_digest: str | None, templates: tuple[Path, ...],
           base_platforms: Mapping[str, str] | None = None) -> dict[str, Any]:
    entry = {
        "from": image.from_ref,
        "base_digest": base_digest,
        "artifacts": {_artifact_key(a): a.sha256 for a in sorted(image.artifacts, key=_artifact_key)},
        "template": {"name": image.template, "sha256": template_hash(image.template, templates)},
    }
    if base_platforms:
        entry["base_platforms"] = dict(sorted(base_platforms.items()))
    return entry


def _artifact_key(artifact: Artifact) -> str:
    return f"{artifact.filename} ({artifact.platform})" if artifact.platform else artifact.filename


def compute_lock(manifest: Manifest, resolve: Resolver, per_platform: PlatformResolver | None = None,
                 warn: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """The lock for a manifest; `resolve` turns an outside reference into a digest;
    `per_platform` (for images built for several platforms) an index digest into
    each platform's manifest digest."""
    images: dict[str, Any] = {}
    for name in sorted(manifest.images):
        image = manifest.images[name]
        outside = image.parent is None and image.from_ref != "scratch"
        digest = resolve(image.from_ref) if outside else None
        platforms = None
        if digest and len(image.platforms) > 1 and per_platform is not None:
            try:
                platforms = per_platform(image.from_ref, digest)
            except RegistryError as exc:
                warn(f"{name}: the base's digest per platform is not recorded, nor checked to be a "
                     f"multi-platform index: {exc}")
                images[name] = _entry(image, digest, manifest.templates, None)
                continue
            missing = [p for p in image.platforms if p not in platforms]
            if missing:
                found = ", ".join(platforms) or "one platform only (not an index)"
                raise LockError(f"{name}: {_strip_digest(image.from_ref)}@{digest} has {found}, and {name} is built "
                                f"for {', '.join(image.platforms)}; pin a multi-platform index that has "
                                f"{', '.join(missing)}")
        images[name] = _entry(image, digest, manifest.templates, platforms)
    return {"lock_version": LOCK_VERSION, "manifest": manifest.path.name, "images": images}


def render_lock(lock: Mapping[str, Any]) -> str:
    return json.dumps(lock, indent=2, sort_keys=True) + "\n"


def write_lock(path: Path, lock: Mapping[str, Any]) -> bool:
    """Write atomically; return whether the file changed."""
    text = render_lock(lock)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomically(path, text, "the lock file")
    return True


def read_lock(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LockError(f"{path.name}: cannot read the lock ({exc}); run `invoke lock` to write it again") from None
    if not isinstance(data, dict) or data.get("lock_version") != LOCK_VERSION or not isinstance(
            data.get("images"), dict):
        raise LockError(f"{path.name}: not a javabase lock of version {LOCK_VERSION}; run `invoke lock`")
    return data


def differences(manifest: Manifest, lock: Mapping[str, Any]) -> list[str]:
    """Where manifest and lock disagree, one line each, without resolving anything."""
    locked: Mapping[str, Any] = lock["images"]
    out = []
    for name in sorted(set(manifest.images) | set(locked)):
        if name not in locked:
            out.append(f"{name}: in the manifest, not in the lock")
            continue
        if name not in manifest.images:
            out.append(f"{name}: in the lock, not in the manifest")
            continue
        image, entry = manifest.images[name], locked[name]
        expected = _entry(image, entry.get("base_digest"), manifest.templates)
        if entry.get("from") != image.from_ref:
            out.append(f"{name}: from: lock has {entry.get('from')!r}, manifest has {image.from_ref!r}")
        old_artifacts, new_artifacts = entry.get("artifacts") or {}, expected["artifacts"]
        for filename in sorted(set(old_artifacts) | set(new_artifacts)):
            old, new = old_artifacts.get(filename), new_artifacts.get(filename)
            if old != new:
                out.append(f"{name}: artifact {filename}: lock has {old or 'nothing'}, manifest has {new or 'nothing'}")
        if entry.get("template") != expected["template"]:
            old_t = entry.get("template") or {}
            out.append(f"{name}: template {image.template}: lock has {old_t.get('name')} "
                       f"{str(old_t.get('sha256'))[:19]}, templates/ now {expected['template']['sha256'][:19]}")
    return out


def apply_lock(manifest: Manifest, lock: Mapping[str, Any]) -> Manifest:
    """FROM lines pinned to the locked digests, for every image whose lock entry
    still matches its `from`."""
    locked: Mapping[str, Any] = lock["images"]
    images = {}
    for name, image in manifest.images.items():
        entry = locked.get(name) or {}
        digest = entry.get("base_digest")
        if image.parent is None and digest and entry.get("from") == image.from_ref:
            image = replace(image, from_ref=f"{_strip_digest(image.from_ref)}@{digest}")
        images[name] = image
    return replace(manifest, images=images)


def registry_resolver(mirror: str | None, make_registry: Callable[[str], Registry]) -> Resolver:
    """Resolve NAME:TAG to a digest through its registry's HTTP API; Docker Hub
    images go through the registry mirror when the manifest names one. A pinned
    reference resolves to its own digest without asking anybody."""

    def resolve(ref: str) -> str:
        parsed = refs.parse_outside(ref)
        if isinstance(parsed, str):
            raise LockError(f"{ref}: {parsed}")
        if parsed.digest:
            return parsed.digest
        host = parsed.registry or mirror or DOCKER_HUB
        path = parsed.path
        if parsed.registry is None and "/" not in path:
            path = f"library/{path}"
        remote = make_registry(host).manifest(path, parsed.tag or "latest")
        if remote is None:
            raise LockError(f"{ref}: {host} has no {path}:{parsed.tag}; fix `from` or push the base image")
        return str(remote.digest)

    return resolve


def platform_resolver(mirror: str | None, make_registry: Callable[[str], Registry]) -> PlatformResolver:
    """(reference, index digest) -> {platform: manifest digest}, read from the
    registry; empty when the digest is one platform's manifest, not an index."""

    def resolve(ref: str, digest: str) -> dict[str, str]:
        parsed = refs.parse_outside(ref)
        if isinstance(parsed, str):
            raise LockError(f"{ref}: {parsed}")
        host = parsed.registry or mirror or DOCKER_HUB
        path = parsed.path if parsed.registry is not None or "/" in parsed.path else f"library/{parsed.path}"
        remote = make_registry(host).manifest(path, digest)
        if remote is None:
            raise LockError(f"{ref}: {host} has no {path}@{digest}; fix `from`")
        try:
            listed = json.loads(remote.body).get("manifests") or []
        except ValueError:
            return {}
        return {"/".join(str(m["platform"][k]) for k in ("os", "architecture", "variant") if m["platform"].get(k)):
                str(m["digest"]) for m in listed if isinstance(m, dict) and isinstance(m.get("platform"), dict)}

    return resolve
