"""Read side of the Distribution registry HTTP API (v2): catalog, tag lists and
manifest digests. Writes (pushes) go through the backend. The opener is a
parameter so tests can inject faults."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from functools import cache
from typing import Any

from .decide import Remote
from .errors import RegistryError

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])

Opener = Callable[[urllib.request.Request, float], Any]


@cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~15 ms: once per process, and only for https.
    return ssl.create_default_context()


def _default_opener(request: urllib.request.Request, timeout: float) -> Any:
    context = _tls() if request.full_url.startswith("https:") else None
    return urllib.request.urlopen(request, timeout=timeout, context=context)


def is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")


def _bearer_challenge(header: str) -> dict[str, str] | None:
    if not header.lower().startswith("bearer "):
        return None
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


class Registry:
    def __init__(self, host: str, opener: Opener = _default_opener, timeout: float = 30.0) -> None:
        self.host = host
        self.base = f"{'http' if is_local(host) else 'https'}://{host}/v2"
        self.opener = opener
        self.timeout = timeout
        self.token: str | None = None

    def _request(self, method: str, path: str, accept: str | None = None,
                 retry_auth: bool = True) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, method=method)
        if accept:
            request.add_header("Accept", accept)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self.opener(request, self.timeout) as response:
                body = response.read() if method != "HEAD" else b""
                return int(response.status), {k.lower(): v for k, v in response.headers.items()}, body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 404, {}, b""
            challenge = _bearer_challenge(exc.headers.get("WWW-Authenticate", "")) if exc.code == 401 else None
            if challenge and retry_auth and "realm" in challenge:
                self.token = self._anonymous_token(challenge)
                return self._request(method, path, accept, retry_auth=False)
            if exc.code in (401, 403):
                raise RegistryError(f"registry {self.host} refused {method} /v2{path} (HTTP {exc.code} {exc.reason}); "
                                    f"nothing was pushed: give javabase credentials that may read and push on "
                                    f"{self.host}") from None
            raise RegistryError(f"registry {self.host}: {method} /v2{path} answered HTTP {exc.code} {exc.reason}; "
                                "nothing was pushed: check the registry's health and address, then run again") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"cannot reach the registry {self.host} ({reason}); is it running? "
                                "`scripts/services.sh start` starts one on 127.0.0.1:5000") from None

    def _anonymous_token(self, challenge: dict[str, str]) -> str:
        """The token dance of registries such as Docker Hub, for public pulls."""
        query = urllib.parse.urlencode({k: v for k, v in challenge.items() if k in ("service", "scope")})
        request = urllib.request.Request(f"{challenge['realm']}?{query}")
        try:
            with self.opener(request, self.timeout) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryError(f"registry {self.host}: cannot get a pull token from {challenge['realm']} "
                                f"({exc}); configure mirrors.registry") from None
        return str(data.get("token") or data.get("access_token") or "")

    def manifest(self, name: str, reference: str) -> Remote | None:
        """name:reference's manifest digest and config digest (the image ID), or None."""
        status, headers, body = self._request("GET", f"/{name}/manifests/{reference}", accept=MANIFEST_TYPES)
        if status == 404:
            return None
        digest = headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        config = (json.loads(body).get("config") or {}).get("digest")
        return Remote(digest, str(config) if config else None)

    def catalog(self) -> list[str]:
        """Every repository, following the registry's pagination (Link: rel="next")."""
        found: list[str] = []
        path: str | None = "/_catalog?n=1000"
        while path:
            status, headers, body = self._request("GET", path)
            if status == 404:
                break
            found.extend(json.loads(body).get("repositories") or [])
            link = headers.get("link", "")
            path = link.split(";")[0].strip(" <>").removeprefix("/v2") if 'rel="next"' in link else None
        return sorted(found)

    def tags(self, name: str) -> list[str]:
        status, _, body = self._request("GET", f"/{name}/tags/list")
        if status == 404:
            return []
        return sorted(json.loads(body).get("tags") or [])

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """The Docker-Content-Digest of name:reference, or None when it does not exist."""
        status, headers, _ = self._request("HEAD", f"/{name}/manifests/{reference}", accept=MANIFEST_TYPES)
        if status == 404:
            return None
        return headers.get("docker-content-digest")
