"""Everything a run is configured by outside the manifest (flags and the
environment), resolved once, at the edge, into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .model import Manifest
from .references import REGISTRY_RE


def insecure_from_env(env: Mapping[str, str] = os.environ) -> frozenset[str]:
    """JAVABASE_INSECURE_REGISTRIES: comma-separated HOST[:PORT]."""
    return frozenset(h.strip() for h in env.get("JAVABASE_INSECURE_REGISTRIES", "").split(",") if h.strip())

PUSH_JOBS = 4


@dataclass(frozen=True)
class Settings:
    registry: str  # HOST[:PORT] that images are tagged for and pushed to
    jobs: int  # images built at the same time, >= 1
    push_jobs: int  # images pushed at the same time, >= 1
    cache_dir: Path  # the artifact cache
    log_dir: Path  # where a failed image's full log is kept
    insecure: frozenset[str] = frozenset()  # registries that may be plain HTTP (loopback always may)
    backend: str = "docker"


def registry_override(flag: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """--registry wins, then JAVABASE_REGISTRY; None when neither is set."""
    value = flag or env.get("JAVABASE_REGISTRY") or None
    if value is not None and not REGISTRY_RE.match(value):
        raise UsageError(f"registry {value!r} (from {'--registry' if flag else 'JAVABASE_REGISTRY'}) "
                         "is not HOST or HOST:PORT")
    return value


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """$JAVABASE_CACHE, or ~/.cache/javabase."""
    configured = env.get("JAVABASE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "javabase"


def default_jobs() -> int:
    """Builds wait on the engine (container create, commit) more than on the CPU:
    two per core keep it busy. Measured with 40 small images on 2 cores (cold
    build + push): 2 jobs 15.7 s, 4 jobs 14.0 s, 8 jobs 15.2 s (docs/benchmarks.md)."""
    return max(1, min(8, 2 * (os.cpu_count() or 1)))


def resolve(manifest: Manifest, *, registry: str | None = None, jobs: int | None = None,
            env: Mapping[str, str] = os.environ) -> Settings:
    """The settings of one run: flags, then the environment, then the manifest."""
    count = max(1, jobs) if jobs else default_jobs()
    return Settings(
        registry=registry_override(registry, env) or manifest.registry,
        jobs=count,
        push_jobs=max(1, min(PUSH_JOBS, count)),
        cache_dir=cache_dir(env),
        log_dir=manifest.path.resolve().parent / ".javabase" / "logs",
        insecure=frozenset(manifest.insecure_registries) | insecure_from_env(env),
    )


def for_registry(host: str, env: Mapping[str, str] = os.environ) -> Settings:
    """Settings without a manifest (`load`): the registry, the environment's cache."""
    count = default_jobs()
    return Settings(registry=host, jobs=count, push_jobs=max(1, min(PUSH_JOBS, count)), cache_dir=cache_dir(env),
                    log_dir=Path(".javabase") / "logs", insecure=insecure_from_env(env))
