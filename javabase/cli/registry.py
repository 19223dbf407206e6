"""doctor: check a registry the way a push will use it."""

from __future__ import annotations

import sys
from typing import TextIO

from ..errors import Exit, RegistryError, UsageError
from ..manifest.load import load_manifest
from ..publish.registry import Registry, open_registry
from ..settings import Environment
from .common import insecure, registry_override, resolve_manifest


def doctor(manifest_path: str | None, registry: str | None = None, out: TextIO = sys.stdout) -> int:
    """Check one registry the way a push will use it, one line per finding. The
    first thing to run when a push fails. Exit 6 when any check fails."""
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
    return int(Exit.REGISTRY) if _rights(client, name, out) else 0


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
