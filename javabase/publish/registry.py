"""The Distribution registry HTTP API (v2), as `docker` talks to it:

- HTTPS first, for every registry; plain HTTP only for a loopback registry or
  one listed as insecure (manifest `insecure_registries:`,
  JAVABASE_INSECURE_REGISTRIES), and only when it does not speak TLS;
- the registry's CA from certs.d (javabase.tls);
- Basic auth, or Bearer tokens fetched from the realm the registry names, for
  the scope a call needs, cached per scope until they expire, fetched again on
  a 401; credentials from javabase.credentials.

Reads: catalog, tags, manifests. Writes: blobs (uploaded or mounted) and
manifests. No secret is ever part of a message."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import ipaddress
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..decide.labels import INPUT_LABEL
from ..errors import RegistryError
from ..settings import Environment
from . import tls
from .credentials import Credential, resolve, searched

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
_PLAIN_HTTP_HINTS = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure", "HTTP_REQUEST",
                     "http request", "UNEXPECTED_EOF", "EOF occurred")


def is_local(host: str) -> bool:
    """Whether HOST[:PORT] is this machine's loopback: localhost, an address in
    127.0.0.0/8 or ::1 (a name that merely starts with "127." is not)."""
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a token service's redirect, but the credential stays behind when
    it leads to another host or from HTTPS to HTTP."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        old, target = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if new is not None and (old.netloc != target.netloc or (old.scheme, target.scheme) == ("https", "http")):
            for name in ("Authorization", "Cookie"):
                new.remove_header(name)
                new.unredirected_hdrs.pop(name, None)
        return new


@dataclass
class _Answer:
    """A response read in full, usable like urllib's."""

    status: int
    headers: Any
    body: bytes

    def read(self) -> bytes:
        return self.body

    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *_: object) -> None:
        pass


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


@dataclass
class _Token:
    value: str
    expires: float


class Registry:
    def __init__(self, host: str, credential: Credential | None = None, *, insecure: Collection[str] = (),
                 timeout: float = 30.0, env: Environment | None = None, searched: str = "") -> None:
        """A client for `host` (HOST[:PORT]); plain HTTP is allowed for loopback
        and for the hosts in `insecure`. `env` gives the TLS settings (certs.d,
        SSL_CERT_FILE); `searched` says where a credential was looked for."""
        self.host = host
        self.credential = credential
        self.searched = searched
        self.insecure = frozenset(insecure)
        self.plain_allowed = is_local(host) or host in insecure
        self.timeout = timeout
        self.env = env or Environment()
        self.tls = tls.for_host(host, self.env)
        self.scheme: str | None = None  # decided by the first request
        self.auth: str = "none"  # none, basic or bearer (realm), for `doctor`
        self._basic = False
        self._tokens: dict[str, _Token] = {}
        self._local = threading.local()

    # -- transport -----------------------------------------------------------------
    @property
    def transport(self) -> str:
        """How the registry was reached, for people."""
        if self.scheme == "https":
            return f"HTTPS (verified by {self.tls.ca})"
        why = "loopback" if is_local(self.host) else "listed as insecure"
        return f"plain HTTP ({why}; it does not speak TLS)"

    def _connection(self, scheme: str, fresh: bool) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to the registry (a push makes a few
        hundred requests: one TCP and TLS handshake each would dominate)."""
        connections: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("connections", {})
        known = connections.get(scheme)
        if known is not None and not fresh:
            return known
        if known is not None:
            known.close()
        made = (http.client.HTTPSConnection(self.host, timeout=self.timeout, context=self.tls.context)
                if scheme == "https" else http.client.HTTPConnection(self.host, timeout=self.timeout))
        connections[scheme] = made
        return made

    def _exchange(self, scheme: str, method: str, path: str, headers: Mapping[str, str],
                  body: bytes | None) -> _Answer:
        """One request on a kept-alive connection; a connection the server closed
        meanwhile is opened again once. 4xx and 5xx raise HTTPError, as urllib does."""
        for fresh in (False, True):
            connection = self._connection(scheme, fresh)
            try:
                connection.request(method, f"/v2{path}", body=body, headers=dict(headers))
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError,
                    ConnectionResetError) as exc:
                connection.close()
                if fresh:
                    raise urllib.error.URLError(exc) from None
                continue
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise urllib.error.URLError(exc) from None
            if response.status >= 400:
                raise urllib.error.HTTPError(f"{scheme}://{self.host}/v2{path}", response.status, response.reason,
                                             response.headers, io.BytesIO(data))
            return _Answer(response.status, response.headers, data)
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> _Answer:
        """One HTTP exchange; decides HTTPS or HTTP on the first one."""
        schemes = [self.scheme] if self.scheme else ["https", *(["http"] if self.plain_allowed else [])]
        for scheme in schemes:
            try:
                response = self._exchange(scheme, method, path, headers, body)
            except urllib.error.HTTPError:
                self.scheme = scheme
                raise
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, ssl.SSLCertVerificationError):
                    raise tls.verify_failure(self.host, reason, self.tls) from None
                if (isinstance(reason, ssl.SSLError) and scheme == "https" and len(schemes) > 1
                        and any(h in str(reason) for h in _PLAIN_HTTP_HINTS)):
                    continue  # a plain-HTTP registry, allowed here
                raise self._unreachable(reason) from None
            self.scheme = scheme
            return response
        raise self._unreachable("it speaks neither HTTPS nor HTTP")

    def _unreachable(self, reason: object) -> RegistryError:
        return RegistryError(f"cannot reach the registry {self.host} ({reason}); is it running? "
                             "`scripts/services.sh start` starts one on 127.0.0.1:5000")

    # -- auth ----------------------------------------------------------------------
    def _who(self) -> str:
        return (f"the credentials of {self.credential.username} from {self.credential.source}"
                if self.credential else "anonymous access (no credentials for it in "
                                        f"{self.searched or 'the docker config'})")

    def _authorization(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token is not None and token.expires > time.monotonic():
            return {"Authorization": f"Bearer {token.value}"}
        if self._basic and self.credential is not None:
            pair = f"{self.credential.username}:{self.credential.secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def _refused(self, method: str, path: str, code: int, what: str) -> RegistryError:
        hint = ("check them, or run `invoke doctor --registry " + self.host + "`" if self.credential else
                "set JAVABASE_REGISTRY_USER and JAVABASE_REGISTRY_PASSWORD (CI) or log in with `docker login "
                f"{self.host}`")
        return RegistryError(f"registry {self.host} refused {what} with {self._who()} (HTTP {code} on {method} "
                             f"/v2{path}); nothing was pushed: {hint}")

    def _fetch_token(self, params: dict[str, str], scope: str) -> None:
        """A Bearer token for `scope` from the realm the registry named (Docker's
        token authentication spec). The credential goes only to that realm, only
        over TLS (or to loopback or an insecure-listed host), never across a
        redirect to another host."""
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.host} asks for a Bearer token but names no realm")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RegistryError(f"registry {self.host} names the token service {realm!r}, which is not an http(s) "
                                "URL; check the registry's auth settings")
        cred = self.credential
        if cred is not None and parts.scheme != "https" and not (is_local(parts.netloc) or parts.netloc
                                                                    in self.insecure):
            raise RegistryError(f"registry {self.host} names a token service over plain HTTP ({realm}); javabase "
                                "sends credentials only over TLS. Fix the registry's token realm (or list "
                                f"{parts.netloc} in insecure_registries if it is truly a trusted local service)")
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", one) for one in scope.split()]
        headers: dict[str, str] = {}
        data: bytes | None = None
        if cred is not None and cred.identity_token:
            data = urllib.parse.urlencode([*query, ("grant_type", "refresh_token"), ("refresh_token", cred.secret),
                                           ("client_id", "javabase")]).encode()
        elif cred is not None:
            pair = f"{cred.username}:{cred.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        url = realm if data is not None else f"{realm}{'&' if parts.query else '?'}{urllib.parse.urlencode(query)}"
        answer = self._token_answer(urllib.request.Request(url, data=data, headers=headers,
                                                           method="POST" if data else "GET"), realm)
        value = str(answer.get("token") or answer.get("access_token") or "")
        lifetime = float(answer.get("expires_in") or 60)
        self._tokens[scope] = _Token(value, time.monotonic() + max(5.0, lifetime - 5))
        self.auth = f"bearer (tokens from {realm})"

    def _token_answer(self, request: urllib.request.Request, realm: str) -> dict[str, Any]:
        realm_host = urllib.parse.urlsplit(realm).netloc
        context = tls.for_host(realm_host, self.env).context if realm.startswith("https:") else None
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _SameHostRedirects())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"the token service {realm} of registry {self.host} refused {self._who()} "
                                f"(HTTP {exc.code}); nothing was pushed: check the credentials") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryError(f"registry {self.host}: cannot get a token from {realm} "
                                f"({getattr(exc, 'reason', exc)}); is the token service up?") from None
        if not isinstance(answer, dict):
            raise RegistryError(f"registry {self.host}: the token service {realm} answered with something that is "
                                "not a token; check the registry's auth settings")
        return answer

    def request(self, method: str, path: str, *, scope: str, accept: str | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        """status, headers (lower-case) and body; 404 is an answer, not an error."""
        for attempt in (1, 2):
            sent = {**(headers or {}), **({"Accept": accept} if accept else {}), **self._authorization(scope)}
            try:
                with self._send(method, path, sent, body) as response:
                    data = response.read() if method != "HEAD" else b""
                    return int(response.status), {k.lower(): v for k, v in response.headers.items()}, data
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return 404, {k.lower(): v for k, v in exc.headers.items()}, b""
                if exc.code == 401 and attempt == 1:
                    kind, params = _challenge(exc.headers.get("WWW-Authenticate", ""))
                    if kind == "basic" and self.credential is not None and "Authorization" not in sent:
                        # (another thread may have found this out already: retry with it)
                        self._basic, self.auth = True, "basic"
                        continue
                    if kind == "bearer":
                        self._tokens.pop(scope, None)
                        self._fetch_token(params, scope)
                        continue
                if exc.code in (401, 403):
                    raise self._refused(method, path, exc.code, "access" if method in ("GET", "HEAD")
                                        else "the upload") from None
                raise RegistryError(f"registry {self.host}: {method} /v2{path} answered HTTP {exc.code} "
                                    f"{exc.reason}; nothing was pushed: check the registry's health and address, "
                                    "then run again") from None
        raise AssertionError("unreachable")

    # -- reads -----------------------------------------------------------------------
    def ping(self) -> int:
        """GET /v2/: the status (200, or 401 when it wants credentials)."""
        try:
            with self._send("GET", "/", {}, None) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            kind, params = _challenge(exc.headers.get("WWW-Authenticate", ""))
            if exc.code == 401:
                self.auth = f"bearer (tokens from {params.get('realm')})" if kind == "bearer" else kind
            return int(exc.code)

    def manifest(self, name: str, reference: str) -> Remote | None:
        """name:reference's manifest digest and config digest (the image ID), or None."""
        status, headers, body = self.request("GET", f"/{name}/manifests/{reference}", scope=_pull(name),
                                             accept=MANIFEST_TYPES)
        if status == 404:
            return None
        digest = headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        data = json.loads(body)
        config = (data.get("config") or {}).get("digest")
        inputs = (data.get("annotations") or {}).get(INPUT_LABEL)
        if config and inputs is None:
            inputs = self._config_label(name, str(config), INPUT_LABEL)
        return Remote(digest, str(config) if config else None, inputs, body,
                      str(data.get("mediaType") or headers.get("content-type") or ""))

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
        """PUT a manifest under a tag (or digest); returns the digest the registry gives it."""
        _, headers, _ = self.request("PUT", f"/{name}/manifests/{reference}", scope=_push(name), body=body,
                                     headers={"Content-Type": media_type})
        return headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()


def _pull(name: str) -> str:
    return f"repository:{name}:pull"


def _push(name: str) -> str:
    return f"repository:{name}:pull,push"


def open_registry(host: str, env: Environment, insecure: Collection[str] = (),
                  env_hosts: frozenset[str] = frozenset()) -> Registry:
    """A client for `host` with the credentials docker would use for it (the
    environment's only when `host` is one of `env_hosts`: the run's registry);
    plain HTTP allowed for the hosts in `insecure` and JAVABASE_INSECURE_REGISTRIES."""
    return Registry(host, resolve(host, env, env_hosts), insecure=frozenset(insecure) | env.insecure, env=env,
                    searched=searched(host, env, env_hosts))
