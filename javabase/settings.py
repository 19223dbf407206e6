"""Shared by every stage: everything a run is configured by outside the
manifest. This is the only module that reads the process environment: it is
read once into an `Environment`, and the flags and the manifest are combined
with it into one frozen `Settings` at the command line's edge (javabase.cli)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError

PUSH_JOBS = 4
DEFAULT_CACHE_MAX = 5 * 1000**3
DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_UNITS = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


@dataclass(frozen=True)
class Environment:
    """The environment variables javabase reads, each once, here."""

    registry: str | None = None  # JAVABASE_REGISTRY: HOST[:PORT] to tag and push for
    registry_user: str | None = None  # JAVABASE_REGISTRY_USER (CI's secret variables)
    registry_password: str | None = field(default=None, repr=False)  # JAVABASE_REGISTRY_PASSWORD
    registry_password_file: str | None = None  # JAVABASE_REGISTRY_PASSWORD_FILE
    registry_hosts: frozenset[str] = frozenset()  # JAVABASE_REGISTRY_HOST: more hosts the user and password are for
    insecure: frozenset[str] = frozenset()  # JAVABASE_INSECURE_REGISTRIES: comma-separated HOST[:PORT]
    cache_dir: Path = Path(".cache/javabase")  # JAVABASE_CACHE, else ~/.cache/javabase
    cache_max_text: str = ""  # JAVABASE_CACHE_MAX: bytes, or a number with k, m, g or t
    lock_dir: Path = Path(".cache/javabase/locks")  # JAVABASE_LOCK_DIR, else a directory of the user's own
    certs_dir: Path = DEFAULT_CERTS_DIR  # JAVABASE_CERTS_DIR, else /etc/docker/certs.d
    ssl_cert_file: str | None = None  # SSL_CERT_FILE: a CA bundle instead of the system's
    docker_config: Path = Path(".docker/config.json")  # $DOCKER_CONFIG/config.json, else ~/.docker/config.json
    docker_host: str = DEFAULT_DOCKER_HOST  # DOCKER_HOST
    engine_stall: float = 900.0  # JAVABASE_ENGINE_TIMEOUT: seconds a build or pull may send nothing
    source_date_epoch: int | None = None  # SOURCE_DATE_EPOCH, seconds
    signing_key: str | None = field(default=None, repr=False)  # JAVABASE_SIGNING_KEY: a PEM private key (CI secret)
    signing_key_file: str | None = None  # JAVABASE_SIGNING_KEY_FILE: where one is
    signing_key_password: str | None = field(default=None, repr=False)  # JAVABASE_SIGNING_KEY_PASSWORD
    proxies: Mapping[str, str] = field(default_factory=dict)  # http_proxy, https_proxy, no_proxy (either case)
    process: Mapping[str, str] = field(default_factory=dict, repr=False)  # the whole of it, for child processes

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """The environment of this process (or `environ`), read now."""
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("HOME") or Path.home())
        epoch = env.get("SOURCE_DATE_EPOCH", "")
        return cls(
            registry=env.get("JAVABASE_REGISTRY") or None,
            registry_user=env.get("JAVABASE_REGISTRY_USER") or None,
            registry_password=env.get("JAVABASE_REGISTRY_PASSWORD") or None,
            registry_password_file=env.get("JAVABASE_REGISTRY_PASSWORD_FILE") or None,
            registry_hosts=_hosts(env.get("JAVABASE_REGISTRY_HOST", "")),
            insecure=_hosts(env.get("JAVABASE_INSECURE_REGISTRIES", "")),
            cache_dir=Path(env["JAVABASE_CACHE"]) if env.get("JAVABASE_CACHE") else home / ".cache" / "javabase",
            cache_max_text=env.get("JAVABASE_CACHE_MAX", ""),
            lock_dir=(Path(env["JAVABASE_LOCK_DIR"]) if env.get("JAVABASE_LOCK_DIR")
                      else Path(env["XDG_RUNTIME_DIR"]) / "javabase-locks" if env.get("XDG_RUNTIME_DIR")
                      else home / ".cache" / "javabase" / "locks"),
            certs_dir=Path(env["JAVABASE_CERTS_DIR"]) if env.get("JAVABASE_CERTS_DIR") else DEFAULT_CERTS_DIR,
            ssl_cert_file=env.get("SSL_CERT_FILE") or None,
            docker_config=(Path(env["DOCKER_CONFIG"]) / "config.json" if env.get("DOCKER_CONFIG")
                           else home / ".docker" / "config.json"),
            docker_host=env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST,
            engine_stall=float(stall) if (stall := env.get("JAVABASE_ENGINE_TIMEOUT", "")).isdigit() else 900.0,
            source_date_epoch=int(epoch) if epoch.isdigit() else None,
            signing_key=env.get("JAVABASE_SIGNING_KEY") or None,
            signing_key_file=env.get("JAVABASE_SIGNING_KEY_FILE") or None,
            signing_key_password=env.get("JAVABASE_SIGNING_KEY_PASSWORD") or None,
            proxies=_proxies(env),
            process=env,
        )

    @property
    def cache_max(self) -> int:
        """JAVABASE_CACHE_MAX in bytes (default 5 GB). Raises UsageError when it is not a size."""
        value = self.cache_max_text
        try:
            if value and value[-1].lower() in _UNITS:
                return int(float(value[:-1]) * _UNITS[value[-1].lower()])
            return int(value) if value else DEFAULT_CACHE_MAX
        except ValueError:
            raise UsageError(f"JAVABASE_CACHE_MAX={value!r} is not a size (bytes, or a number with k, m, g or "
                             "t)") from None


def _proxies(env: Mapping[str, str]) -> dict[str, str]:
    """{"http": URL, "https": URL, "no": "host,host"} from the usual variables, lower case first (as curl)."""
    out = {}
    for scheme in ("http", "https", "no"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if value:
            out[scheme] = value
    return out


@dataclass(frozen=True)
class Settings:
    """One run's settings: flags, then the environment, then the manifest."""

    registry: str  # HOST[:PORT] that images are tagged for and pushed to
    jobs: int  # images built at the same time, >= 1
    push_jobs: int  # images pushed at the same time, >= 1
    cache_dir: Path  # the artifact cache
    log_dir: Path  # where a failed image's full log is kept
    insecure: frozenset[str] = frozenset()  # registries that may be plain HTTP (loopback always may)
    backend: str = "docker"
    env: Environment = field(default_factory=Environment, repr=False)
    # Hosts the environment's registry user and password are for: the run's registry
    # (when the run named it) and JAVABASE_REGISTRY_HOST's.
    credential_hosts: frozenset[str] = frozenset()


def _hosts(text: str) -> frozenset[str]:
    """Comma-separated HOST[:PORT] values."""
    return frozenset(h.strip() for h in text.split(",") if h.strip())


def default_jobs() -> int:
    """Builds wait on the engine (container create, commit) more than on the CPU:
    two per core keep it busy. Measured with 40 small images on 2 cores (cold
    build + push): 2 jobs 15.7 s, 4 jobs 14.0 s, 8 jobs 15.2 s (docs/benchmarks.md)."""
    return max(1, min(8, 2 * (os.cpu_count() or 1)))


def push_jobs(jobs: int) -> int:
    return max(1, min(PUSH_JOBS, jobs))
