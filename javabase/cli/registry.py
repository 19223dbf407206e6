"""doctor: check a registry the way a push will use it, and that the engine
can build every platform the manifest names."""

from __future__ import annotations

import sys
from typing import TextIO

from ..build.emulation import BINFMT, emulation_problem
from ..errors import EngineError, Exit, RegistryError, UsageError
from ..manifest.load import load_manifest
from ..manifest.model import Manifest
from ..publish.registry import Registry, open_registry
from ..settings import Environment
from .common import insecure, open_engine, registry_override, resolve_manifest


def doctor(manifest_path: str | None, registry: str | None = None, out: TextIO = sys.stdout) -> int:
    """Check one registry the way a push will use it, one line per finding, and
    with a manifest whether the engine can build each of its platforms. The
    first thing to run when a push fails. Exit 6 when a registry check fails,
    else 5 when a platform cannot be built here."""
    env = Environment.read()
    try:
        manifest = load_manifest(resolve_manifest(manifest_path))
    except UsageError:
        if manifest_path:
            raise
        manifest = None
    host = registry_override(registry, env) or (manifest.registry if manifest else None)
    if host is None:
        raise UsageError("doctor needs --registry HOST (or a manifest that names one)")
    first = next(iter(manifest.images), None) if manifest else None
    name = manifest.repository(first, host).split("/", 1)[1] if manifest and first else "javabase/doctor"
    try:
        client = open_registry(host, env, insecure(manifest, env), frozenset({host}))
        status = client.ping()
        print(f"registry {host}: answers over {client.transport.described} (GET /v2/: HTTP {status})", file=out)
        who = client.credential
        print(f"credentials: {f'{who.username} from {who.source}' if who else 'none found (anonymous)'}", file=out)
        print(f"auth: {client.auth.described}", file=out)
    except RegistryError as exc:
        print(f"error: {exc}", file=out)
        return int(exc.exit_code)
    refused = _rights(client, name, out)
    cannot_build = _platforms(manifest, out) if manifest is not None else False
    return int(Exit.REGISTRY) if refused else int(Exit.ENGINE) if cannot_build else 0


def _platforms(manifest: Manifest, out: TextIO) -> bool:
    """Print whether the engine can build every platform the manifest names;
    return whether it cannot build one (or cannot be reached)."""
    platforms = sorted({p for image in manifest.images.values() for p in image.platforms})
    if not platforms:
        return False
    try:
        backend = open_engine(timeout=10)
        native = backend.native
        local = backend.where.startswith("unix://")
        found = {p: emulation_problem(backend, p, BINFMT if local else None) for p in platforms}
    except EngineError as exc:
        print(f"platforms: not checked: {exc}", file=out)
        return True
    for platform, problem in found.items():
        how = "the engine's own" if platform.split("/")[1] == native.split("/")[1] else "emulated; a probe ran"
        print(f"platform {platform}: " + (f"cannot be built here: {problem}" if problem else f"builds ({how})"),
              file=out)
    return any(problem is not None for problem in found.values())


def _rights(client: Registry, name: str, out: TextIO) -> bool:
    """Print whether pull and push are allowed on `name`; return whether either is refused."""
    failed = False
    for what in ("pull", "push"):
        try:
            allowed = client.can_push(name) if what == "push" else client.tags(name) is not None
        except RegistryError as exc:
            allowed, why = False, str(exc)
        else:
            why = "" if allowed else "the registry did not start an upload"
        failed = failed or not allowed
        print(f"{what} on {name}: {'authorised' if allowed else 'refused: ' + why}", file=out)
    return failed
