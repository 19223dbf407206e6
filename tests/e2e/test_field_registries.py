"""Registries as they are in the field, imitated by a proxy the tests start in
front of a real Distribution registry: Harbor's token scopes and Basic
challenge, rate limits (429 with Retry-After), a registry that refuses one
platform's manifest, ECR's immutable repositories."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from javabase.cli import common
from javabase.cli import registry as registry_cmds

from .conftest import LocalRegistry, Run
from .registries import Exchange, TokenServer, registry_proxy, running_token_server, secure_registry
from .test_build_push import ROOT_ONLY, rootfs
from .test_registries import use_env

PASSWORD = "canary-" + secrets.token_hex(8)


def harbor(exchange: Exchange) -> Exchange | None:
    """Harbor answers a token that lacks an action with a Basic challenge, not a
    Bearer one naming the missing scope."""
    if exchange.status == 401 and exchange.headers.get("Authorization", "").startswith("Bearer "):
        exchange.answer_headers = [(k, v) for k, v in exchange.answer_headers if k.lower() != "www-authenticate"]
        exchange.answer_headers.append(("WWW-Authenticate", 'Basic realm="harbor"'))
    return None


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[str, TokenServer]]:
    server = TokenServer({"dev": (PASSWORD, ["pull", "push"]), "reader": (PASSWORD, ["pull"])})
    with running_token_server(server), secure_registry(tmp_path / "upstream", token=server, tls=False) as upstream, \
            registry_proxy(upstream.host, [harbor]) as (proxy, _):
        yield proxy, server


def test_a_harbor_account_that_may_push_pushes_and_doctor_agrees(
    token_registry: tuple[str, TokenServer], example_files: Path, workspace: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, build: Callable[..., Run],
) -> None:
    proxy, _ = token_registry
    use_env(monkeypatch, tmp_path, proxy, PASSWORD)
    monkeypatch.setenv("JAVABASE_REGISTRY_USER", "dev")
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    pushed = build(manifest, push=True, registry=proxy)
    assert pushed.code == 0, pushed.out + pushed.err
    out = io.StringIO()
    assert common.run(lambda: registry_cmds.doctor(str(manifest), proxy, out=out)) == 0, out.getvalue()
    assert out.getvalue().splitlines()[-1] == "push on example/glibc-root: authorised".replace(
        "example", workspace.namespace)  # type: ignore[attr-defined]


def test_a_harbor_account_that_may_only_pull_is_told_so(
    token_registry: tuple[str, TokenServer], example_files: Path, workspace: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, build: Callable[..., Run],
) -> None:
    proxy, _ = token_registry
    use_env(monkeypatch, tmp_path, proxy, PASSWORD)
    monkeypatch.setenv("JAVABASE_REGISTRY_USER", "reader")
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    refused = build(manifest, push=True, registry=proxy)
    assert refused.code == 6
    assert refused.err == (
        f"error: registry {proxy}: reader may pull but not push on {namespace}/glibc-root (HTTP 401 on POST "
        f"/v2/{namespace}/glibc-root/blobs/uploads/; credentials from JAVABASE_REGISTRY_PASSWORD_FILE "
        f"({tmp_path / 'password'})); nothing was pushed: ask the registry's admins for push rights, or use an "
        "account that has them\n")
    assert (refused.report["exit_code"], refused.report["ok"]) == (6, False)


def rate_limited(times: int, retry_after: str, method: str = "HEAD", part: str = "/blobs/") -> Callable[
        [Exchange], Exchange | None]:
    left = [times]

    def rule(exchange: Exchange) -> Exchange | None:
        if exchange.status == 0 and exchange.method == method and part in exchange.path and left[0] > 0:
            left[0] -= 1
            exchange.status, exchange.answer = 429, json.dumps(
                {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit"}]}).encode()
            exchange.answer_headers = [("Retry-After", retry_after), ("Content-Type", "application/json")]
        return None

    return rule


def test_a_rate_limited_push_waits_as_asked_and_succeeds(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    with registry_proxy(registry.host, [rate_limited(2, "1")]) as (proxy, _):
        manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
        run = build(manifest, push=True, registry=proxy)
    assert run.code == 0, run.out + run.err
    waits = [line for line in run.out.splitlines() if "HTTP 429" in line]
    assert len(waits) == 2 and all(line.endswith(" waiting 1 s (Retry-After), then trying again (1 of 5)")
                                   or "(2 of 5)" in line for line in waits), waits


def test_a_registry_that_keeps_rate_limiting_is_one_line_and_a_report(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    with registry_proxy(registry.host, [rate_limited(1000, "0", method="GET", part="/manifests/")]) as (proxy, _):
        manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
        namespace = workspace.namespace  # type: ignore[attr-defined]
        run = build(manifest, push=True, registry=proxy)
    assert run.code == 6
    assert run.err == (
        f"error: registry {proxy} rate-limited javabase (HTTP 429 on GET /v2/{namespace}/glibc-root/manifests/1: "
        "TOOMANYREQUESTS: You have reached your pull rate limit) 6 times over 0 s; nothing was pushed: wait and "
        "run again, spread the jobs out, or use credentials (anonymous access is limited harder)\n")
    assert (run.report["exit_code"], run.report["ok"]) == (6, False)
    assert registry.tagged(namespace) == {}


TINY = """\
schema: 1
registry: repo.abc.com
namespace: example
images:
  tiny:
    from: scratch
    template: layer
    platforms: [linux/amd64, linux/arm64]
    artifacts: [{{path: files/note.txt, sha256: {sha}, platform_independent: true}}]
    tags: ["1"]
"""


def tiny(workspace: Callable[[str], Path], env: str = "") -> Path:
    manifest = workspace(TINY.format(sha="0" * 64))
    note = manifest.parent / "files" / "note.txt"
    note.write_text("no RUN step: both platforms build without an emulator\n")
    import hashlib

    text = TINY.format(sha=hashlib.sha256(note.read_bytes()).hexdigest())
    return workspace(text.replace('    tags: ["1"]', f'    env: {{NOTE: "{env}"}}\n    tags: ["1"]') if env else text)


def test_a_platform_manifest_the_registry_refuses_is_named_with_what_the_registry_said(
    registry: LocalRegistry, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    puts: list[str] = []

    def second_child_fails(exchange: Exchange) -> Exchange | None:
        if exchange.status == 0 and exchange.method == "PUT" and "/manifests/sha256:" in exchange.path:
            puts.append(exchange.path)
            if len(puts) == 2:
                exchange.status, exchange.answer = 500, json.dumps({"errors": [
                    {"code": "MANIFEST_INVALID", "message": "manifest invalid", "detail": "storage full"}]}).encode()
                exchange.answer_headers = [("Content-Type", "application/json")]
        return None

    manifest = tiny(workspace)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    with registry_proxy(registry.host, [second_child_fails]) as (proxy, _):
        run = build(manifest, push=True, registry=proxy)
    assert run.code == 7
    digest = puts[1].rsplit("/", 1)[1]
    reason = run.result("tiny@linux/arm64")["reason"]
    assert reason == (
        f"push {proxy}/{namespace}/tiny:1: the linux/arm64 manifest {digest[:19]} was refused: registry {proxy}: "
        f"PUT /v2/{namespace}/tiny/manifests/{digest} answered HTTP 500 Internal Server Error (MANIFEST_INVALID: "
        "manifest invalid); nothing was pushed: check the registry's health and address, then run again")
    assert registry.tagged(namespace) == {}


def test_a_registry_with_immutable_tags_says_so(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    """ECR's immutable repositories answer 400 TAG_INVALID when a tag would move."""
    published: set[str] = set()

    def immutable(exchange: Exchange) -> Exchange | None:
        tag = exchange.path.rsplit("/manifests/", 1)[-1]
        if exchange.method == "PUT" and "/manifests/" in exchange.path and not tag.startswith("sha256:"):
            if exchange.status == 0 and tag in published:
                exchange.status, exchange.answer = 400, json.dumps({"errors": [{
                    "code": "TAG_INVALID", "message": f"The image tag '{tag}' already exists in the repository "
                    "and cannot be overwritten because the repository is immutable."}]}).encode()
                exchange.answer_headers = [("Content-Type", "application/json")]
            elif exchange.status == 201:
                published.add(tag)
        return None

    text = ROOT_ONLY.format(**rootfs(example_files))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    with registry_proxy(registry.host, [immutable]) as (proxy, _):
        assert build(workspace(text), push=True, registry=proxy).code == 0
        moved = build(workspace(text.replace('    tags: ["1"]', '    env: {MOVED: "yes"}\n    tags: ["1"]')),
                      push=True, registry=proxy)
    assert moved.code == 7
    assert moved.result("glibc-root")["reason"] == (
        f"registry {proxy}: the repository {namespace}/glibc-root has immutable tags: 1 already exists there and "
        "cannot be overwritten (the registry says TAG_INVALID: The image tag '1' already exists in the repository "
        "and cannot be overwritten because the repository is immutable.); publish under a new tag, or change the "
        "repository's immutability rule")
