"""Read side of the Distribution registry HTTP API (v2): catalog, tag lists and
manifest digests. Writes (pushes) go through the engine. The opener is a
parameter so tests can inject faults."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import cache
from typing import Any

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


class Registry:
    def __init__(self, host: str, opener: Opener = _default_opener, timeout: float = 30.0) -> None:
        self.host = host
        self.base = f"{'http' if is_local(host) else 'https'}://{host}/v2"
        self.opener = opener
        self.timeout = timeout

    def _request(self, method: str, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, method=method)
        if accept:
            request.add_header("Accept", accept)
        try:
            with self.opener(request, self.timeout) as response:
                body = response.read() if method != "HEAD" else b""
                return int(response.status), {k.lower(): v for k, v in response.headers.items()}, body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 404, {}, b""
            raise RegistryError(f"registry {self.host}: {method} {path} answered HTTP {exc.code} {exc.reason}; "
                                "check the registry address and credentials") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"cannot reach the registry {self.host} ({reason}); is it running? "
                                "`scripts/services.sh start` starts one on 127.0.0.1:5000") from None

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
