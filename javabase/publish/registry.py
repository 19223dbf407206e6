"""The Distribution registry HTTP API (OCI distribution spec v1.1), as `docker`
talks to it: reads (catalog, tags, manifests, config blobs) and writes (blobs
uploaded or mounted, manifests), over javabase.publish.transport (HTTPS first,
certs.d) with javabase.publish.auth (Basic, or Bearer tokens per scope).

A 429 or 503 is retried after the wait its Retry-After asks for (or a doubling
wait without one), at most MAX_WAITS times and MAX_WAITED seconds in all, one
line per wait; then the call fails saying the registry rate-limits. Any other
4xx or 5xx is one line with the registry's own error code and message. No
secret is ever part of a message."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import retry_after
from ..decide.labels import INPUT_LABEL
from ..engine import LocalImage, last_step
from ..errors import RegistryError
from ..settings import Environment
from . import tls
from .auth import Auth, challenge
from .credentials import Credential, resolve, searched
from .transport import Answer, Transport, is_local

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
MAX_WAITS = 5
MAX_WAITED = 120.0

__all__ = ["MANIFEST_TYPES", "Registry", "RegistryAnswer", "Remote", "is_local", "open_registry"]


@dataclass(frozen=True)
class Remote:
    """What a tag (or digest) holds in the registry: manifest digest, config
    digest (the image ID; None for an index), the javabase input digest it was
    built from (when known), and the manifest itself with its media type."""

    digest: str
    config_digest: str | None
    input_digest: str | None = None
    body: bytes = field(default=b"", repr=False, compare=False)
    media_type: str = ""
    image: LocalImage | None = field(default=None, compare=False)  # its config, when read (image_config)


class RegistryAnswer(RegistryError):
    """The registry answered a call with an error: its HTTP status and what it said."""

    def __init__(self, message: str, status: int, says: str) -> None:
        super().__init__(message)
        self.status = status
        self.says = says


class UntrustedAnswer(RegistryError):
    """The registry answered a manifest that is not what was asked for: bytes
    that do not hash to its digest, or not a manifest at all. What refers to an
    image can be pushed by anyone who can push, so a reader of referrers passes
    over such an artifact rather than stop."""


def registry_says(body: bytes) -> str:
    """The registry's own error codes and messages (`{"errors": [{"code", "message"}]}`,
    the distribution spec's error format), or "" when the body has none."""
    try:
        errors = json.loads(body).get("errors") or []
    except (ValueError, AttributeError):
        return ""
    return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ") for e in errors
                     if isinstance(e, dict))


def _field(data: Any, key: str, default: Any) -> Any:
    """data[key] when `data` is a JSON object that has it, else `default`."""
    return data.get(key, default) if isinstance(data, dict) else default


class Registry:
    def __init__(self, host: str, credential: Credential | None = None, *, insecure: Collection[str] = (),
                 timeout: float = 30.0, env: Environment | None = None, searched: str = "",
                 say: Callable[[str], None] = lambda _line: None) -> None:
        """A client for `host` (HOST[:PORT]); plain HTTP is allowed for loopback
        and for the hosts in `insecure`. `env` gives the TLS settings (certs.d,
        SSL_CERT_FILE); `searched` says where a credential was looked for; `say`
        is told of every wait a rate limit makes."""
        self.host = host
        self.env = env or Environment()
        self.insecure = frozenset(insecure)
        self.transport = Transport(host, tls.for_host(host, self.env),
                                   plain_allowed=is_local(host) or host in self.insecure, timeout=timeout)
        self.auth = Auth(host, credential, searched=searched, insecure=self.insecure, env=self.env,
                         timeout=timeout)
        self.say = say

    @property
    def credential(self) -> Credential | None:
        return self.auth.credential

    def request(self, method: str, path: str, *, scope: str, accept: str | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        """status, headers (lower-case) and body of /v2`path`; 404 is an answer,
        not an error. Raises RegistryError (RegistryAnswer when the registry said
        no): refused, rate-limited past patience, or an error of its own."""
        waits: list[float] = []
        challenges = 0
        while True:
            sent = {**(headers or {}), **({"Accept": accept} if accept else {}), **self.auth.header(scope)}
            answer = self.transport.send(method, path, sent, body)
            if answer.status < 400 or answer.status == 404:
                return answer.status, answer.headers, answer.body if method != "HEAD" else b""
            if answer.status in (429, 503):
                self._wait(answer, method, path, waits)
            elif answer.status == 401 and challenges < 2 and self.auth.answer_challenge(answer, scope, sent):
                challenges += 1
            elif answer.status in (401, 403):
                raise self.refused(method, path, answer, scope)
            else:
                says = registry_says(answer.body)
                raise RegistryAnswer(f"registry {self.host}: {method} /v2{path} answered HTTP {answer.status} "
                                     f"{answer.reason}" + (f" ({says})" if says else "") + "; nothing was pushed: "
                                     "check the registry's health and address, then run again", answer.status, says)

    def _wait(self, answer: Answer, method: str, path: str, waits: list[float]) -> None:
        """Wait as a 429 or 503 asks, or raise when patience is spent."""
        asked = retry_after(answer.headers.get("retry-after"))
        wait = asked if asked is not None else float(2 ** len(waits))
        if len(waits) >= MAX_WAITS or sum(waits) + wait > MAX_WAITED:
            says = registry_says(answer.body)
            raise RegistryAnswer(
                f"registry {self.host} rate-limited javabase (HTTP {answer.status} on {method} /v2{path}"
                + (f": {says}" if says else "") + f") {len(waits) + 1} times over {sum(waits):.0f} s; nothing was "
                "pushed: wait and run again, spread the jobs out, or use credentials (anonymous access is "
                "limited harder)", answer.status, says)
        self.say(f"registry {self.host}: HTTP {answer.status} {answer.reason} on {method} /v2{path}; waiting "
                 f"{wait:.0f} s ({'Retry-After' if asked is not None else 'no Retry-After'}), then trying again "
                 f"({len(waits) + 1} of {MAX_WAITS})")
        waits.append(wait)
        time.sleep(wait)

    def refused(self, method: str, path: str, answer: Answer, scope: str) -> RegistryError:
        """The one line for a 401 or 403 that no token or Basic auth got past."""
        says = registry_says(answer.body)
        name = next((item.split(":")[1] for item in scope.split()
                     if item.startswith("repository:") and "push" in item.rpartition(":")[2]), None)
        credential = self.auth.credential
        if name is not None and credential is not None and self._may_pull(name):
            return RegistryAnswer(f"registry {self.host}: {credential.username} may pull but not push on {name} "
                                  f"(HTTP {answer.status} on {method} /v2{path}; credentials from "
                                  f"{credential.source}); nothing was pushed: ask the registry's admins for push "
                                  "rights, or use an account that has them", answer.status, says)
        hint = ("check them, or run `invoke doctor --registry " + self.host + "`" if credential else
                "set JAVABASE_REGISTRY_USER and JAVABASE_REGISTRY_PASSWORD (CI) or log in with `docker login "
                f"{self.host}`")
        what = "access" if method in ("GET", "HEAD") else "the upload"
        return RegistryAnswer(f"registry {self.host} refused {what} with {self.auth.who()} (HTTP {answer.status} on "
                              f"{method} /v2{path}); nothing was pushed: {hint}", answer.status, says)

    def _may_pull(self, name: str) -> bool:
        """Whether this client may read `name` (its tags, or that there are none)."""
        try:
            status, _, _ = self.request("GET", f"/{name}/tags/list", scope=_pull(name))
        except RegistryError:
            return False
        return status in (200, 404)

    # -- reads -----------------------------------------------------------------------
    def ping(self) -> int:
        """GET /v2/: the status (200, or 401 when it wants credentials)."""
        answer = self.transport.send("GET", "/", {}, None)
        if answer.status == 401:
            kind, params = challenge(answer.headers.get("www-authenticate", ""))
            self.auth.described = f"bearer (tokens from {params.get('realm')})" if kind == "bearer" else kind
        return answer.status

    def manifest(self, name: str, reference: str) -> Remote | None:
        """name:reference's manifest digest and config digest (the image ID), or None.
        The digest is the sha256 of the bytes answered; RegistryError when the
        registry names them otherwise (Docker-Content-Digest) or `reference` is
        a digest they do not hash to."""
        status, headers, body = self.request("GET", f"/{name}/manifests/{reference}", scope=_pull(name),
                                             accept=MANIFEST_TYPES)
        if status == 404:
            return None
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        named = headers.get("docker-content-digest")
        claimed = f"{named} (its Docker-Content-Digest)" if named and named != digest \
            else reference if reference.startswith("sha256:") and reference != digest else None
        if claimed is not None:
            raise UntrustedAnswer(f"registry {self.host}: {name}:{reference} answered a manifest whose bytes hash to "
                                f"{digest}, not {claimed}; the registry (or a proxy before it) changed it: do not use "
                                "what it serves")
        data = self._json_object(body, f"{name}:{reference}")
        config = _field(_field(data, "config", {}), "digest", None)
        inputs = _field(_field(data, "annotations", {}), INPUT_LABEL, None)
        if config and inputs is None:
            inputs = self._config_label(name, str(config), INPUT_LABEL)
        return Remote(digest, str(config) if config else None, inputs, body,
                      str(data.get("mediaType") or headers.get("content-type") or ""))

    def _json_object(self, body: bytes, what: str) -> dict[str, Any]:
        """A manifest's JSON object. Raises RegistryError when it is not one."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise UntrustedAnswer(f"registry {self.host}: {what} is not a manifest (a JSON object); the registry holds "
                                "something else under it: push the image again")
        return data

    def image_config(self, name: str, config_digest: str) -> LocalImage | None:
        """An image's config blob as the engine would show the image: its ID (the
        config digest, checked), labels, layers (diff IDs) and the instruction of
        its last history entry. None when the blob is missing or not a config."""
        status, _, body = self.request("GET", f"/{name}/blobs/{config_digest}", scope=_pull(name))
        if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != config_digest:
            return None
        try:
            config = json.loads(body)
            history = [h for h in config.get("history") or [] if isinstance(h, dict)]
            return LocalImage(id=config_digest, labels=dict((config.get("config") or {}).get("Labels") or {}),
                              layers=tuple(str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []),
                              last_step=last_step(str(history[-1].get("created_by") or ""),
                                                  str(history[-1].get("comment") or "")) if history else "",
                              platform="/".join(str(config[k]) for k in ("os", "architecture", "variant")
                                                if config.get(k)))
        except (ValueError, AttributeError, TypeError):
            return None

    def _config_label(self, name: str, config: str, label: str) -> str | None:
        """A label of an image's config blob (for manifests javabase did not write)."""
        status, _, body = self.request("GET", f"/{name}/blobs/{config}", scope=_pull(name))
        if status != 200:
            return None
        try:
            value = ((json.loads(body).get("config") or {}).get("Labels") or {}).get(label)
        except ValueError:
            return None
        return str(value) if value else None

    def catalog(self) -> list[str]:
        """Every repository, following the registry's pagination (Link: rel="next")."""
        found: list[str] = []
        path: str | None = "/_catalog?n=1000"
        while path:
            status, headers, body = self.request("GET", path, scope="registry:catalog:*")
            if status == 404:
                break
            found.extend(json.loads(body).get("repositories") or [])
            link = headers.get("link", "")
            path = link.split(";")[0].strip(" <>").removeprefix("/v2") if 'rel="next"' in link else None
        return sorted(found)

    def tags(self, name: str) -> list[str]:
        status, _, body = self.request("GET", f"/{name}/tags/list", scope=_pull(name))
        if status == 404:
            return []
        return sorted(json.loads(body).get("tags") or [])

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """The Docker-Content-Digest of name:reference, or None when it does not exist."""
        status, headers, _ = self.request("HEAD", f"/{name}/manifests/{reference}", scope=_pull(name),
                                          accept=MANIFEST_TYPES)
        if status == 404:
            return None
        return headers.get("docker-content-digest")

    def can_push(self, name: str) -> bool:
        """Whether this client may push to `name`: start a blob upload and cancel it."""
        status, headers, _ = self.request("POST", f"/{name}/blobs/uploads/", scope=_push(name), body=b"")
        location = headers.get("location")
        if status == 202 and location:
            # Cancel the empty upload; a registry that wants `delete` rights for that
            # (token auth) purges abandoned uploads itself.
            path = urllib.parse.urlsplit(location).path.removeprefix("/v2")
            query = urllib.parse.urlsplit(location).query
            with contextlib.suppress(RegistryError):
                self.request("DELETE", path + (f"?{query}" if query else ""), scope=f"repository:{name}:delete")
        return status == 202


    # -- writes --------------------------------------------------------------------
    def has_blob(self, name: str, digest: str) -> bool:
        status, _, _ = self.request("HEAD", f"/{name}/blobs/{digest}", scope=_push(name))
        return status in (200, 307)  # 307: it is there, served from elsewhere

    def upload_blob(self, name: str, digest: str, body: Callable[[], bytes], mount_from: str | None = None) -> str:
        """Put one blob into `name`: mounted from another repository of this
        registry when it has it, else uploaded in one PUT (`body` is read only
        then). Returns how."""
        query = f"?mount={digest}&from={urllib.parse.quote(mount_from)}" if mount_from else ""
        scope = _push(name) + (f" repository:{mount_from}:pull" if mount_from else "")
        status, headers, _ = self.request("POST", f"/{name}/blobs/uploads/{query}", scope=scope, body=b"")
        if status == 201:
            return f"mounted from {mount_from}"
        location = headers.get("location")
        if status != 202 or not location:
            raise RegistryError(f"registry {self.host}: starting an upload to {name} answered HTTP {status} "
                                "without a Location; nothing was published")
        parts = urllib.parse.urlsplit(location)
        separator = "&" if parts.query else "?"
        path = parts.path.removeprefix("/v2") + (f"?{parts.query}" if parts.query else "")
        self.request("PUT", f"{path}{separator}digest={digest}", scope=_push(name), body=body(),
                     headers={"Content-Type": "application/octet-stream"})
        return "uploaded"

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag (or digest); returns the digest the registry
        gives it. Raises RegistryError; when the registry keeps its tags immutable
        (ECR's immutable repositories, Harbor's immutability rules), it says so."""
        return self.put(name, reference, body, media_type)[0]

    def put(self, name: str, reference: str, body: bytes, media_type: str) -> tuple[str, dict[str, str]]:
        """put_manifest, with the answer's headers (OCI-Subject: the registry has the referrers API)."""
        try:
            _, headers, _ = self.request("PUT", f"/{name}/manifests/{reference}", scope=_push(name), body=body,
                                         headers={"Content-Type": media_type})
        except RegistryAnswer as exc:
            if exc.status in (400, 409, 412) and "immutable" in exc.says.lower():
                raise RegistryError(f"registry {self.host}: the repository {name} has immutable tags: {reference} "
                                    f"already exists there and cannot be overwritten (the registry says "
                                    f"{exc.says}); publish under a new tag, or change the repository's "
                                    "immutability rule") from None
            raise
        return headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest(), headers


def _pull(name: str) -> str:
    return f"repository:{name}:pull"


def _push(name: str) -> str:
    return f"repository:{name}:pull,push"


def open_registry(host: str, env: Environment, insecure: Collection[str] = (),
                  env_hosts: frozenset[str] = frozenset(), say: Callable[[str], None] = lambda _line: None
                  ) -> Registry:
    """A client for `host` with the credentials docker would use for it (the
    environment's only when `host` is one of `env_hosts`: the run's registry);
    plain HTTP allowed for the hosts in `insecure` and JAVABASE_INSECURE_REGISTRIES;
    `say` is told of rate-limit waits."""
    return Registry(host, resolve(host, env, env_hosts), insecure=frozenset(insecure) | env.insecure, env=env,
                    searched=searched(host, env, env_hosts), say=say)
