"""HTTP to one registry host, the way `docker` reaches it: HTTPS first; plain
HTTP only for a loopback host or one listed as insecure, and only when it does
not speak TLS; the registry's CA from certs.d (javabase.publish.tls); one
kept-alive connection per thread (a push makes a few hundred requests: a TCP
and TLS handshake each would dominate). Every answer, 4xx and 5xx included,
comes back as an Answer; only not reaching the host is an error."""

from __future__ import annotations

import http.client
import ipaddress
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import RegistryError
from . import tls

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


@dataclass
class Answer:
    """One response, read in full: status, headers (names lower-case), body."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Transport:
    def __init__(self, host: str, config: tls.TLSConfig, *, plain_allowed: bool, timeout: float) -> None:
        """HTTP to `host` (HOST[:PORT]); `timeout` in seconds per request."""
        self.host = host
        self.tls = config
        self.plain_allowed = plain_allowed
        self.timeout = timeout
        self.scheme: str | None = None  # decided by the first request
        self._local = threading.local()

    @property
    def described(self) -> str:
        """How the registry was reached, for people."""
        if self.scheme == "https":
            return f"HTTPS (verified by {self.tls.ca})"
        why = "loopback" if is_local(self.host) else "listed as insecure"
        return f"plain HTTP ({why}; it does not speak TLS)"

    def send(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        """One exchange for /v2`path`; decides HTTPS or HTTP on the first one.
        Raises RegistryError when the host cannot be reached or its TLS does not verify."""
        schemes = [self.scheme] if self.scheme else ["https", *(["http"] if self.plain_allowed else [])]
        for scheme in schemes:
            try:
                answer = self._exchange(scheme, method, path, headers, body)
            except ssl.SSLCertVerificationError as exc:
                raise tls.verify_failure(self.host, exc, self.tls) from None
            except ssl.SSLError as exc:
                if scheme == "https" and len(schemes) > 1 and any(h in str(exc) for h in _PLAIN_HTTP_HINTS):
                    continue  # a plain-HTTP registry, allowed here
                raise self.unreachable(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                raise self.unreachable(exc) from None
            self.scheme = scheme
            return answer
        raise self.unreachable("it speaks neither HTTPS nor HTTP")

    def unreachable(self, reason: object) -> RegistryError:
        hint = ("is it running? `scripts/services.sh start` starts one on $JAVABASE_REGISTRY_ADDR (default "
                "127.0.0.1:5000)" if is_local(self.host) else "check the address and the network")
        return RegistryError(f"cannot reach the registry {self.host} ({reason}); {hint}")

    def _connection(self, scheme: str, fresh: bool) -> http.client.HTTPConnection:
        """This thread's kept-alive connection to the registry."""
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
                  body: bytes | None) -> Answer:
        """One request on a kept-alive connection; a connection the server closed
        meanwhile is opened again once."""
        for fresh in (False, True):
            connection = self._connection(scheme, fresh)
            try:
                connection.request(method, f"/v2{path}", body=body, headers=dict(headers))
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError,
                    ConnectionResetError):
                connection.close()
                if fresh:
                    raise
                continue
            except (OSError, http.client.HTTPException):
                connection.close()
                raise
            return Answer(response.status, response.reason, {k.lower(): v for k, v in response.headers.items()},
                          data)
        raise RegistryError(f"registry {self.host}: no answer")  # not reached: the second try raises
