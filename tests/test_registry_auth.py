"""Where a registry credential may go: only to its registry (the environment's
to the run's registry and the hosts named for it), to a token service only
over TLS or loopback, never across a redirect to another host; loopback means
loopback. Token services here are real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from javabase.errors import RegistryError
from javabase.publish.credentials import Credential, resolve, searched
from javabase.publish.registry import Registry, is_local
from javabase.publish.transport import Answer
from javabase.settings import Environment
from loopback import serving

SECRET = "canary-secret-0451"


@pytest.mark.parametrize(("host", "local"), [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.9.9", True), ("[::1]:5000", True),
    ("127.evil.example:5000", False), ("127.0.0.1.evil.example", False), ("10.0.0.1:5000", False),
    ("registry.example", False),
])
def test_loopback_means_loopback(host: str, local: bool) -> None:
    assert is_local(host) is local


def test_the_environments_credential_is_for_the_runs_registry_and_named_hosts_only(tmp_path: Path) -> None:
    env = Environment.read({"JAVABASE_REGISTRY_USER": "ci", "JAVABASE_REGISTRY_PASSWORD": SECRET,
                            "JAVABASE_REGISTRY_HOST": "mirror.abc.com", "DOCKER_CONFIG": str(tmp_path)})
    runs = frozenset({"repo.abc.com"})
    assert resolve("repo.abc.com", env, runs) == Credential("ci", SECRET, "JAVABASE_REGISTRY_PASSWORD")
    assert resolve("mirror.abc.com", env, runs) is not None
    assert resolve("registry-1.docker.io", env, runs) is None
    assert searched("registry-1.docker.io", env, runs) == (
        f"{tmp_path / 'config.json'} (auths, credHelpers, credsStore) and JAVABASE_REGISTRY_USER (which is for "
        "mirror.abc.com, repo.abc.com, not registry-1.docker.io; JAVABASE_REGISTRY_HOST names more hosts)")


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]]
    redirect_to: str | None = None

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
            self.end_headers()
            return
        body = json.dumps({"token": "t0ken", "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def token_service(redirect_to: str | None = None) -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Handler", (Recorder,), {"seen": seen, "redirect_to": redirect_to})
    with serving(handler) as host:
        yield host, seen


def client(host: str = "registry.example") -> Registry:
    return Registry(host, Credential("ci", SECRET, "test"))


def test_a_token_service_over_plain_http_elsewhere_gets_no_credential() -> None:
    with pytest.raises(RegistryError) as caught:
        client().auth.fetch_token({"realm": "http://198.51.100.7/token", "service": "r"}, "repository:a:pull",
                                  key="repository:a:pull")
    assert str(caught.value) == (
        "registry registry.example names a token service over plain HTTP (http://198.51.100.7/token); javabase "
        "sends credentials only over TLS. Fix the registry's token realm (or list 198.51.100.7 in "
        "insecure_registries if it is truly a trusted local service)")


def test_a_redirect_to_another_host_leaves_the_credential_behind() -> None:
    with token_service() as (elsewhere, seen_elsewhere), \
            token_service(redirect_to=f"http://localhost:{elsewhere.split(':')[1]}") as (realm_host, seen_realm):
        registry = client()
        registry.auth.fetch_token({"realm": f"http://{realm_host}/token", "service": "r"},
                                  "repository:a:pull,push", key="repository:a:pull,push")
    expected = "Basic " + base64.b64encode(f"ci:{SECRET}".encode()).decode()
    assert [s["authorization"] for s in seen_realm] == [expected]
    assert [s["authorization"] for s in seen_elsewhere] == [""]
    assert seen_elsewhere[0]["path"] == "/token?service=r&scope=repository%3Aa%3Apull%2Cpush"


def test_a_missing_credential_names_where_it_was_looked_for(tmp_path: Path) -> None:
    env = Environment.read({"DOCKER_CONFIG": str(tmp_path)})
    registry = Registry("registry.example", None, searched=searched("registry.example", env))
    error = registry.refused("POST", "/base/jre/blobs/uploads/", Answer(401, "Unauthorized"),
                             "repository:base/jre:pull,push")
    assert str(error) == (
        "registry registry.example refused the upload with anonymous access (no credentials for it in "
        f"{tmp_path / 'config.json'} (auths, credHelpers, credsStore) and JAVABASE_REGISTRY_USER (not set)) (HTTP "
        "401 on POST /v2/base/jre/blobs/uploads/); nothing was pushed: set JAVABASE_REGISTRY_USER and "
        "JAVABASE_REGISTRY_PASSWORD (CI) or log in with `docker login registry.example`")


class Scripted:
    """A transport that answers from a script (a registry's 401s in a given order)."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers, self.sent = answers, []

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Answer:
        self.sent.append(headers.get("Authorization", ""))
        return self.answers.pop(0)


def test_a_basic_challenge_after_a_token_gets_one_retry_with_a_token_for_everything_the_call_needs() -> None:
    """Harbor: the anonymous HEAD is challenged for pull only; the token javabase
    gets covers pull and push (merged); a Basic challenge to a token that lacks
    an action gets a fresh token, not a give-up."""
    with token_service() as (realm_host, seen):
        registry = client()
        bearer = f'Bearer realm="http://{realm_host}/token",service="harbor",scope="repository:p/a:pull"'
        registry.transport = Scripted([  # type: ignore[assignment]
            Answer(401, "Unauthorized", {"www-authenticate": bearer}),
            Answer(401, "Unauthorized", {"www-authenticate": 'Basic realm="harbor"'}),
            Answer(202, "Accepted", {"location": "/v2/p/a/blobs/uploads/1"}),
        ])
        status, _, _ = registry.request("POST", "/p/a/blobs/uploads/", scope="repository:p/a:pull,push")
    assert status == 202
    assert [s["path"] for s in seen] == ["/token?service=harbor&scope=repository%3Ap%2Fa%3Apull%2Cpush"] * 2
    assert registry.transport.sent == ["", "Bearer t0ken", "Bearer t0ken"]  # type: ignore[attr-defined]


def test_scopes_merge_per_resource() -> None:
    from javabase.publish.auth import merge_scopes

    assert merge_scopes("repository:p/a:pull,push", "repository:p/a:pull") == "repository:p/a:pull,push"
    assert merge_scopes("repository:p/a:push repository:p/b:pull", "repository:p/a:pull") == (
        "repository:p/a:pull,push repository:p/b:pull")


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": "sha256:" + "c" * 64}, "layers": []}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OTHER_DIGEST = "sha256:" + "e" * 64


class Liar(http.server.BaseHTTPRequestHandler):
    """A registry whose manifests are MANIFEST's bytes under every reference, with
    the Docker-Content-Digest `header` (none when empty)."""

    header = ""
    body = MANIFEST

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = self.body if "/manifests/" in self.path else b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        if self.header:
            self.send_header("Docker-Content-Digest", self.header)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(("header", "reference", "names"), [
    (OTHER_DIGEST, "1", f"{OTHER_DIGEST} (its Docker-Content-Digest)"),
    ("", OTHER_DIGEST, OTHER_DIGEST),
    (MANIFEST_DIGEST, OTHER_DIGEST, OTHER_DIGEST),
    ("sha256:../../etc", "1", "sha256:../../etc (its Docker-Content-Digest)"),
])
def test_a_manifest_whose_bytes_are_not_its_digest_is_refused(header: str, reference: str, names: str) -> None:
    """A manifest is known by the sha256 of its bytes: a registry (or a proxy) that
    answers other bytes for a digest, or names them with another digest, is not
    believed (a save would keep, a push would check, the wrong manifest)."""
    with serving(type("Handler", (Liar,), {"header": header})) as host:
        registry = Registry(host)
        with pytest.raises(RegistryError) as caught:
            registry.manifest("team/app", reference)
        assert str(caught.value) == (
            f"registry {host}: team/app:{reference} answered a manifest whose bytes hash to {MANIFEST_DIGEST}, not "
            f"{names}; the registry (or a proxy before it) changed it: do not use what it serves")
        fine = type("Handler", (Liar,), {"header": MANIFEST_DIGEST})
    with serving(fine) as host:
        assert Registry(host).manifest("team/app", "1").digest == MANIFEST_DIGEST  # type: ignore[union-attr]
        assert Registry(host).manifest("team/app", MANIFEST_DIGEST).body == MANIFEST  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [b"[]", b"null", b"not json", b"[" * 100_000 + b"]" * 100_000])
def test_a_manifest_that_is_not_a_json_object_is_one_line(body: bytes) -> None:
    with serving(type("Handler", (Liar,), {"body": body})) as host, pytest.raises(RegistryError) as caught:
        Registry(host).manifest("team/app", "1")
    assert str(caught.value) == (f"registry {host}: team/app:1 is not a manifest (a JSON object); the registry holds "
                                 "something else under it: push the image again")


def test_a_manifest_with_fields_of_other_shapes_has_no_config_or_inputs() -> None:
    body = json.dumps({"config": ["sha256:" + "c" * 64], "annotations": "io.javabase.input-digest"}).encode()
    with serving(type("Handler", (Liar,), {"body": body})) as host:
        there = Registry(host).manifest("team/app", "1")
    assert there is not None and (there.config_digest, there.input_digest) == (None, None)
