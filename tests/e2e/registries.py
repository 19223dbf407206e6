"""Registries as companies run them, started by the tests on 127.0.0.1 and
stopped by pid: TLS with a throwaway CA, htpasswd basic auth, and token auth
with a token server of the tests' own (JWTs signed by a key whose certificate
is the registry's rootcertbundle, carried in the x5c header)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from loopback import serving

from .conftest import LocalRegistry, free_port, htpasswd, stop

ENGINE_CERTS = Path("/etc/docker/certs.d")


@dataclass
class SecureRegistry:
    host: str
    ca_pem: bytes
    certs_dir: Path  # a certs.d of the test's own, holding this registry's ca.crt
    reader: LocalRegistry
    token_server: TokenServer | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Issues registry tokens: `users` maps user -> (password, actions it may get)."""

    users: dict[str, tuple[str, list[str]]]
    service: str = "javabase-test-registry"
    issuer: str = "javabase-test-token-server"
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    issued: list[dict[str, Any]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # the user of every token request ("" anonymous)
    url: str = ""

    def certificate(self) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "javabase test token signer")])
        now = time.time()
        import datetime as dt

        return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(dt.datetime.fromtimestamp(now - 3600, dt.UTC))
                .not_valid_after(dt.datetime.fromtimestamp(now + 86400, dt.UTC))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))

    def token(self, subject: str, scopes: list[str], allowed: list[str]) -> str:
        cert = self.certificate_der
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(cert).decode()]}
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": b64url(str(time.monotonic_ns()).encode()), "access": access}
        self.issued.append(claims)
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    @property
    def certificate_der(self) -> bytes:
        if not hasattr(self, "_der"):
            self._cert = self.certificate()
            self._der = self._cert.public_bytes(serialization.Encoding.DER)
        return self._der

    @property
    def certificate_pem(self) -> bytes:
        self.certificate_der  # noqa: B018 - makes the certificate
        return self._cert.public_bytes(serialization.Encoding.PEM)


@contextlib.contextmanager
def running_token_server(server: TokenServer) -> Iterator[TokenServer]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            auth = self.headers.get("Authorization", "")
            user, _, password = (base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ")
                                 else ("", "", ""))
            server.asked.append(user)
            known = server.users.get(user)
            if known is None or known[0] != password:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="token"')
                self.end_headers()
                return
            body = json.dumps({"token": server.token(user, query.get("scope", []), known[1]),
                               "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as host:
        server.url = f"http://{host}/token"
        yield server


@contextlib.contextmanager
def secure_registry(root: Path, users: dict[str, str] | None = None, token: TokenServer | None = None,
                    tls: bool = True) -> Iterator[SecureRegistry]:
    """A Distribution registry over TLS (a throwaway CA) with htpasswd or token
    auth, on a free 127.0.0.1 port; its CA in a certs.d of the test's own and in
    the engine's /etc/docker/certs.d/<host>/ (removed again on exit)."""
    from javabase.publish.registry import Registry
    from javabase.settings import Environment

    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"127.0.0.1:{port}"
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(root / "server.crt"))
    lines = ["version: 0.1", "log: {level: warn}",
             f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}"]
    http_conf = f"http: {{addr: {host}"
    if tls:
        http_conf += f", tls: {{certificate: {root / 'server.crt'}, key: {root / 'server.key'}}}"
    lines.append(http_conf + "}")
    if users is not None:
        lines.append(f"auth: {{htpasswd: {{realm: javabase-test, path: {htpasswd(root / 'htpasswd', users)}}}}}")
    if token is not None:
        (root / "token-signer.pem").write_bytes(token.certificate_pem)
        lines.append(f"auth: {{token: {{realm: '{token.url}', service: {token.service}, issuer: {token.issuer}, "
                     f"rootcertbundle: {root / 'token-signer.pem'}}}}}")
    (root / "config.yml").write_text("\n".join(lines) + "\n")
    certs = root / "certs.d"
    (certs / host).mkdir(parents=True)
    ca.cert_pem.write_to_path(str(certs / host / "ca.crt"))
    engine_dir = ENGINE_CERTS / host
    engine_dir.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(engine_dir / "ca.crt"))
    log = (root / "registry.log").open("w")
    process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                                    str(certs / host / "ca.crt"), f"{'https' if tls else 'http'}://{host}/v2/"],
                                   capture_output=True, text=True, check=False)
            if probe.stdout in ("200", "401"):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"registry did not start: {(root / 'registry.log').read_text()}", pytrace=False)
            time.sleep(0.1)
        reader = LocalRegistry(host, Registry(host, env=Environment.read({"JAVABASE_CERTS_DIR": str(certs)})))
        yield SecureRegistry(host, ca.cert_pem.bytes(), certs, reader, token)
    finally:
        stop(process, 10)
        log.close()
        shutil.rmtree(engine_dir, ignore_errors=True)


@dataclass
class Exchange:
    """One request through the proxy, and the upstream's answer (which a rule may replace)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    answer_headers: list[tuple[str, str]] = field(default_factory=list)
    answer: bytes = b""


Rule = Any  # Callable[[Exchange], Exchange | None]: before (status 0) or after the upstream answered


@contextlib.contextmanager
def registry_proxy(upstream: str, rules: list[Rule]) -> Iterator[tuple[str, list[Exchange]]]:
    """A plain-HTTP proxy on 127.0.0.1 in front of a real registry at `upstream`
    (HOST:PORT, plain HTTP): every exchange goes through `rules`, each of which
    may answer instead of the registry (called with status 0) or change its
    answer (called after), the way Harbor, ECR or a rate-limited Hub behave.
    Yields its host and the exchanges it saw."""
    import http.client

    seen: list[Exchange] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            exchange = Exchange(self.command, self.path, dict(self.headers.items()),
                                self.rfile.read(length) if length else b"")
            seen.append(exchange)
            for rule in rules:
                exchange = rule(exchange) or exchange
            if exchange.status == 0:
                connection = http.client.HTTPConnection(upstream, timeout=30)
                connection.request(exchange.method, exchange.path, body=exchange.body or None,
                                   headers={k: v for k, v in exchange.headers.items() if k.lower() != "connection"})
                response = connection.getresponse()
                exchange.status, exchange.answer = response.status, response.read()
                exchange.answer_headers = [(k, v) for k, v in response.getheaders()
                                           if k.lower() not in ("connection", "transfer-encoding", "content-length")]
                connection.close()
                for rule in rules:
                    exchange = rule(exchange) or exchange
            self.send_response(exchange.status)
            for key, value in exchange.answer_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(exchange.answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(exchange.answer)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    with serving(Handler) as host:
        yield host, seen
