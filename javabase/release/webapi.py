"""Reading publishers' HTTP APIs (Adoptium's, the end-of-life source) and small
files next to their downloads (detached signatures): GET with a time limit and
a size limit, through the proxy the environment names (http_proxy, https_proxy,
no_proxy: settings.Environment.proxies), with TLS verification. Every failure is
one UpstreamError line naming what was asked and why it failed."""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from functools import cache
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from ..errors import UpstreamError

TIMEOUT = 30.0
MAX_BYTES = 16 << 20  # an API page or a signature is far smaller
Opener = Callable[..., Any]  # (URL, timeout in seconds, accept="*/*") -> a response (urlopen's)


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _bypass(host: str, no_proxy: str) -> bool:
    """Loopback always, and every host no_proxy names (a suffix match, as curl; '*' for all)."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        if host == "localhost":
            return True
    for entry in (e.strip().lstrip(".").lower() for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def opener(proxies: Mapping[str, str]) -> Opener:
    """An opener that goes through proxies["http"/"https"] unless no_proxy or loopback says not to."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=_tls()))
    proxied = urllib.request.build_opener(
        urllib.request.ProxyHandler({k: v for k, v in proxies.items() if k in ("http", "https")}),
        urllib.request.HTTPSHandler(context=_tls()))

    def open_url(url: str, timeout: float, accept: str = "*/*") -> Any:
        host = (urlsplit(url).hostname or "").lower()
        chosen = direct if _bypass(host, proxies.get("no", "")) else proxied
        request = urllib.request.Request(url, headers={"User-Agent": "javabase", "Accept": accept})
        return chosen.open(request, timeout=timeout)

    return open_url


def get_bytes(open_url: Opener, url: str, what: str, missing_ok: bool = False, accept: str = "*/*") -> bytes | None:
    """The body of GET url (at most MAX_BYTES). None for a 404 when missing_ok.
    Raises UpstreamError naming `what` when it cannot be read."""
    try:
        with open_url(url, TIMEOUT, accept) as response:
            body: bytes = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and missing_ok:
            return None
        raise UpstreamError(f"{what} answered HTTP {exc.code} {exc.reason} for {url}; nothing was changed") from None
    except urllib.error.URLError as exc:
        raise UpstreamError(f"cannot reach {what} ({url}: {_reason(exc.reason)}); nothing was changed. Check the "
                            "network or the proxy (https_proxy), or name a mirror") from None
    except (TimeoutError, OSError, HTTPException) as exc:
        raise UpstreamError(f"cannot reach {what} ({url}: {_reason(exc)}); nothing was changed. Check the "
                            "network or the proxy (https_proxy), or name a mirror") from None
    if len(body) > MAX_BYTES:
        raise UpstreamError(f"{what} answered more than {MAX_BYTES >> 20} MB for {url}; nothing was changed")
    return body


def get_json(open_url: Opener, url: str, what: str, missing_ok: bool = False) -> Any:
    """GET url and parse its JSON. None for a 404 when missing_ok. Raises UpstreamError."""
    body = get_bytes(open_url, url, what, missing_ok, accept="application/json")
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        start = body[:40].decode("utf-8", "replace").strip()
        raise UpstreamError(f"{what} answered something that is not JSON for {url} (it starts {start!r}); "
                            "nothing was changed") from None


def _reason(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate does not verify: {reason.verify_message}"
    if isinstance(reason, TimeoutError):
        return f"no answer within {TIMEOUT:.0f} s"
    text = getattr(reason, "strerror", None) or str(reason)
    return str(text)
