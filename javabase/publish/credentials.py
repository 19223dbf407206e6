"""Registry credentials, found the way `docker` finds them, per registry host:

1. JAVABASE_REGISTRY_USER with JAVABASE_REGISTRY_PASSWORD or
   JAVABASE_REGISTRY_PASSWORD_FILE (CI's secret variables), for the run's
   registry and the hosts JAVABASE_REGISTRY_HOST names, never another host
   (a base image's registry, a token service the registry names);
2. $DOCKER_CONFIG/config.json (default ~/.docker/config.json):
   `credHelpers.<host>`, then `credsStore`, through the credential-helper
   protocol (`docker-credential-<name> get`, host on stdin, JSON out), then
   `auths.<host>` (`auth`: base64 user:password, or `identitytoken`).
Docker Hub's alias keys (https://index.docker.io/v1/) count for its hosts.

A Credential never shows its secret: not in repr, not in messages; only
`source` (where it came from) and the user name are ever printed."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RegistryError
from ..settings import Environment

HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credential:
    username: str
    secret: str = field(repr=False)
    source: str
    identity_token: bool = False  # secret is an OAuth2 refresh token, not a password


def _keys(host: str) -> list[str]:
    """The keys config.json may use for `host`."""
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    return [*keys, *HUB_KEYS] if host in HUB_HOSTS else keys


def resolve(host: str, env: Environment, env_hosts: frozenset[str] = frozenset()) -> Credential | None:
    """The credential for `host`, or None (anonymous): the environment's when
    `host` is one of `env_hosts` (the run's registry and JAVABASE_REGISTRY_HOST),
    else config.json's. Raises RegistryError when config.json or a credential
    helper cannot be read."""
    from_env = _from_env(env) if host in env_hosts | env.registry_hosts else None
    if from_env is not None:
        return from_env
    path = env.docker_config
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read {path} ({exc}); fix it or set DOCKER_CONFIG to another directory") from None
    if not isinstance(config, dict):
        raise RegistryError(f"{path} is not a JSON object; fix it or set DOCKER_CONFIG to another directory")
    helpers = _section(config, "credHelpers")
    for key in _keys(host):
        helper = helpers.get(key)
        if isinstance(helper, str):
            return _from_helper(helper, key, host)
    if isinstance(config.get("credsStore"), str) and config["credsStore"]:
        found = _from_helper(config["credsStore"], host, host, missing_ok=True)
        if found is not None:
            return found
    auths = _section(config, "auths")
    for key in _keys(host):
        entry = auths.get(key)
        if isinstance(entry, dict):
            found = _from_auths(entry, f"{path} auths.{key}")
            if found is not None:
                return found
    return None


def _section(config: Mapping[str, object], key: str) -> dict[str, object]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _from_env(env: Environment) -> Credential | None:
    user = env.registry_user
    if not user:
        return None
    if env.registry_password:
        return Credential(user, env.registry_password, "JAVABASE_REGISTRY_PASSWORD")
    file = env.registry_password_file
    if file:
        try:
            return Credential(user, Path(file).read_text(encoding="utf-8").rstrip("\r\n"),
                              f"JAVABASE_REGISTRY_PASSWORD_FILE ({file})")
        except OSError as exc:
            raise RegistryError(f"cannot read JAVABASE_REGISTRY_PASSWORD_FILE {file} "
                                f"({exc.strerror or exc}); fix the path") from None
    raise RegistryError("JAVABASE_REGISTRY_USER is set without JAVABASE_REGISTRY_PASSWORD or "
                        "JAVABASE_REGISTRY_PASSWORD_FILE; set one of them")


def _from_auths(entry: Mapping[str, object], source: str) -> Credential | None:
    token = entry.get("identitytoken")
    auth = entry.get("auth")
    user = ""
    if isinstance(auth, str) and auth:
        try:
            user, _, password = base64.b64decode(auth).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"{source}: `auth` is not base64 of user:password; log in again") from None
        if not isinstance(token, str) or not token:
            return Credential(user, password, source)
    if isinstance(token, str) and token:
        return Credential(user or "<token>", token, f"{source} (identity token)", identity_token=True)
    return None


def _from_helper(name: str, key: str, host: str, missing_ok: bool = False) -> Credential | None:
    program = f"docker-credential-{name}"
    source = f"credential helper {program}"
    try:
        done = subprocess.run([program, "get"], input=key, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise RegistryError(f"{source} (named in config.json for {host}) is not on PATH; install it or remove "
                            "it from config.json") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise RegistryError(f"{source} failed for {host} ({type(exc).__name__}); run `{program} get` by hand "
                            "to see why") from None
    if done.returncode != 0:
        if missing_ok and "credentials not found" in done.stdout + done.stderr:
            return None
        # Its output may hold a secret: say only that it failed.
        raise RegistryError(f"{source} exited {done.returncode} for {host}; run `echo {key} | {program} get` "
                            "by hand to see why")
    try:
        data = json.loads(done.stdout)
        user, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"{source} answered for {host} with something that is not "
                            '{"Username": ..., "Secret": ...}; check the helper') from None
    if user == "<token>":
        return Credential(user, secret, f"{source} (identity token)", identity_token=True)
    return Credential(user, secret, source)


def searched(host: str, env: Environment, env_hosts: frozenset[str] = frozenset()) -> str:
    """Where resolve() looked for `host`'s credential, for a message that says none was found."""
    places = [f"{env.docker_config} (auths, credHelpers, credsStore)"]
    if env.registry_user:
        owners = sorted(env_hosts | env.registry_hosts)
        places.append(f"JAVABASE_REGISTRY_USER (which is for {', '.join(owners) or 'no host'}, not {host}; "
                      "JAVABASE_REGISTRY_HOST names more hosts)" if host not in owners else "JAVABASE_REGISTRY_USER")
    else:
        places.append("JAVABASE_REGISTRY_USER (not set)")
    return " and ".join(places)
