"""Authentication to one registry (Docker's token authentication spec, and Basic):
which Authorization header a call sends for the scope it needs, and what to do
when the registry answers 401.

- A Bearer challenge: a token is fetched from the realm the registry named for
  the scope the call needs merged with the scope the challenge names (Harbor
  challenges an anonymous blob HEAD for `pull` only), and cached under the
  call's scope until it expires.
- A Basic challenge after a Bearer token was sent (Harbor answers a token that
  lacks an action so): one retry with a token fetched afresh for the full scope.
- A Basic challenge otherwise: the credential is sent as Basic auth.

Where a credential may go: only to its registry and to the realm the registry
named, only over TLS (or to loopback or an insecure-listed host), never across
a redirect to another host (javabase.publish.credentials says which credential
is the registry's). No secret is ever part of a message."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import RegistryError
from ..settings import Environment
from . import tls
from .credentials import Credential
from .transport import Answer, is_local


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """A WWW-Authenticate header: (scheme in lower case, its parameters)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


def merge_scopes(*scopes: str) -> str:
    """Resource scopes (`repository:NAME:pull,push`, space-separated) merged: one
    entry per resource, the union of its actions, in a stable order."""
    actions: dict[str, list[str]] = {}
    for scope in scopes:
        for item in scope.split():
            resource, _, wanted = item.rpartition(":")
            known = actions.setdefault(resource, [])
            known += [a for a in wanted.split(",") if a and a not in known]
    return " ".join(f"{resource}:{','.join(sorted(acts))}" for resource, acts in actions.items())


@dataclass
class _Token:
    value: str
    expires: float


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


class Auth:
    def __init__(self, host: str, credential: Credential | None, *, searched: str = "",
                 insecure: frozenset[str] = frozenset(), env: Environment | None = None, timeout: float = 30.0) -> None:
        """The auth of `host` with `credential` (None: anonymous); `searched` says
        where a credential was looked for; realms in `insecure` (or loopback) may
        be plain HTTP."""
        self.host = host
        self.credential = credential
        self.searched = searched
        self.insecure = insecure
        self.env = env or Environment()
        self.timeout = timeout
        self.described = "none"  # none, basic or bearer (realm), for `doctor`
        self._basic = False
        self._bearer: dict[str, str] | None = None  # the last Bearer challenge's parameters
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()

    def who(self) -> str:
        return (f"the credentials of {self.credential.username} from {self.credential.source}"
                if self.credential else "anonymous access (no credentials for it in "
                                        f"{self.searched or 'the docker config'})")

    def header(self, scope: str) -> dict[str, str]:
        """The Authorization header a call for `scope` sends now (maybe none)."""
        with self._lock:
            token = self._tokens.get(scope)
        if token is not None and token.expires > time.monotonic():
            return {"Authorization": f"Bearer {token.value}"}
        if self._basic and self.credential is not None:
            pair = f"{self.credential.username}:{self.credential.secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def answer_challenge(self, answer: Answer, scope: str, sent: Mapping[str, str]) -> bool:
        """After a 401: get what a retry needs (a token, or Basic). Whether a retry
        can succeed where this call failed."""
        kind, params = challenge(answer.headers.get("www-authenticate", ""))
        authorization = sent.get("Authorization", "")
        if kind == "bearer":
            with self._lock:
                self._bearer = params
                self._tokens.pop(scope, None)
            self.fetch_token(params, merge_scopes(scope, params.get("scope", "")), key=scope)
            return True
        if kind == "basic" and authorization.startswith("Bearer ") and self._bearer is not None:
            # A token that lacks an action (Harbor): a fresh one for everything the call needs.
            with self._lock:
                self._tokens.pop(scope, None)
            self.fetch_token(self._bearer, scope, key=scope)
            return True
        if kind == "basic" and self.credential is not None and not authorization.startswith("Basic "):
            self._basic, self.described = True, "basic"
            return True
        return False

    def fetch_token(self, params: Mapping[str, str], scope: str, key: str) -> None:
        """A Bearer token for `scope` from the realm the registry named, cached
        under `key`. Raises RegistryError (the realm refused, is unreachable, or
        would get the credential in clear text)."""
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.host} asks for a Bearer token but names no realm")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise RegistryError(f"registry {self.host} names the token service {realm!r}, which is not an http(s) "
                                "URL; check the registry's auth settings")
        if self.credential is not None and parts.scheme != "https" and not (is_local(parts.netloc)
                                                                           or parts.netloc in self.insecure):
            raise RegistryError(f"registry {self.host} names a token service over plain HTTP ({realm}); javabase "
                                "sends credentials only over TLS. Fix the registry's token realm (or list "
                                f"{parts.netloc} in insecure_registries if it is truly a trusted local service)")
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", one) for one in scope.split()]
        answer = self._token_answer(self._token_request(realm, query), realm)
        value = str(answer.get("token") or answer.get("access_token") or "")
        lifetime = float(answer.get("expires_in") or 60)
        with self._lock:
            self._tokens[key] = _Token(value, time.monotonic() + max(5.0, lifetime - 5))
        self.described = f"bearer (tokens from {realm})"

    def _token_request(self, realm: str, query: list[tuple[str, str]]) -> urllib.request.Request:
        cred = self.credential
        if cred is not None and cred.identity_token:
            data = urllib.parse.urlencode([*query, ("grant_type", "refresh_token"), ("refresh_token", cred.secret),
                                           ("client_id", "javabase")]).encode()
            return urllib.request.Request(realm, data=data, method="POST")
        headers = {}
        if cred is not None:
            pair = f"{cred.username}:{cred.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        separator = "&" if urllib.parse.urlsplit(realm).query else "?"
        return urllib.request.Request(f"{realm}{separator}{urllib.parse.urlencode(query)}", headers=headers)

    def _token_answer(self, request: urllib.request.Request, realm: str) -> dict[str, Any]:
        realm_host = urllib.parse.urlsplit(realm).netloc
        context = tls.for_host(realm_host, self.env).context if realm.startswith("https:") else None
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _SameHostRedirects())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"the token service {realm} of registry {self.host} refused {self.who()} "
                                f"(HTTP {exc.code}); nothing was pushed: check the credentials") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryError(f"registry {self.host}: cannot get a token from {realm} "
                                f"({getattr(exc, 'reason', exc)}); is the token service up?") from None
        if not isinstance(answer, dict):
            raise RegistryError(f"registry {self.host}: the token service {realm} answered with something that is "
                                "not a token; check the registry's auth settings")
        return answer
