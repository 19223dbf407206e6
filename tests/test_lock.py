"""The lock, without a network: computing, comparing, applying, resolving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from conftest import BASE, SHA_B
from javabase.errors import LockError
from javabase.manifest.model import Manifest
from javabase.publish.registry import Remote as RemoteManifest
from javabase.release.lock import apply_lock, compute_lock, differences, registry_resolver, render_lock

C64 = "c" * 64
D64 = "d" * 64
UNPINNED = BASE.replace(f"alpine:3.20@sha256:{C64}", "alpine:3.20")


class FakeRegistry:
    """Answers for the tags it knows; records who was asked what."""

    asked: ClassVar[list[tuple[str, str, str]]] = []

    def __init__(self, host: str) -> None:
        self.host = host

    def manifest(self, name: str, reference: str) -> RemoteManifest | None:
        self.asked.append((self.host, name, reference))
        return RemoteManifest(f"sha256:{D64}", None) if (name, reference) == ("library/alpine", "3.20") else None


def test_lock_records_bases_artifacts_and_templates(valid: Callable[[str], Manifest]) -> None:
    FakeRegistry.asked = []
    lock = compute_lock(valid(UNPINNED), registry_resolver("mirror.abc.com", FakeRegistry))
    assert FakeRegistry.asked == [("mirror.abc.com", "library/alpine", "3.20")]
    assert lock["images"]["root"]["base_digest"] == f"sha256:{D64}"
    assert lock["images"]["jre17"]["base_digest"] is None
    assert lock["images"]["jre17"]["artifacts"] == {"jre17.tar.gz": SHA_B}
    assert lock["images"]["jre17"]["template"]["name"] == "jre"
    assert render_lock(lock) == render_lock(compute_lock(valid(UNPINNED), registry_resolver(None, FakeRegistry)))


def test_a_pinned_reference_is_not_resolved(valid: Callable[[str], Manifest]) -> None:
    FakeRegistry.asked = []
    lock = compute_lock(valid(BASE), registry_resolver(None, FakeRegistry))
    assert FakeRegistry.asked == []
    assert lock["images"]["root"]["base_digest"] == f"sha256:{C64}"


def test_unknown_tag_is_one_line(valid: Callable[[str], Manifest]) -> None:
    with pytest.raises(LockError) as caught:
        compute_lock(valid(UNPINNED.replace("alpine:3.20", "alpine:9.99")), registry_resolver(None, FakeRegistry))
    assert str(caught.value) == ("alpine:9.99: registry-1.docker.io has no library/alpine:9.99; fix `from` or push "
                                 "the base image")


def test_applying_the_lock_pins_from_lines(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(UNPINNED)
    pinned = apply_lock(manifest, compute_lock(manifest, registry_resolver(None, FakeRegistry)))
    assert pinned.images["root"].from_ref == f"alpine:3.20@sha256:{D64}"
    assert pinned.images["jre17"].from_ref == "root"


def test_differences_say_what_moved(valid: Callable[[str], Manifest]) -> None:
    lock: dict[str, Any] = compute_lock(valid(UNPINNED), registry_resolver(None, FakeRegistry))
    moved = valid(UNPINNED.replace(SHA_B, "e" * 64).replace("alpine:3.20", "alpine:3.21")
                  .replace("      - version: 8u412b08", "      - version: 11.0.23_9"))
    assert differences(moved, lock) == [
        "jre11: in the manifest, not in the lock",
        f"jre17: artifact jre17.tar.gz: lock has {SHA_B}, manifest has {'e' * 64}",
        "jre8: in the lock, not in the manifest",
        "root: from: lock has 'alpine:3.20', manifest has 'alpine:3.21'",
    ]
    assert apply_lock(moved, lock).images["root"].from_ref == "alpine:3.21"  # a stale entry is not applied


class IndexRegistry:
    """alpine:3.22 as an index of amd64 and arm64, and one platform's manifest."""

    def __init__(self, host: str) -> None:
        self.host = host

    def manifest(self, name: str, reference: str) -> RemoteManifest | None:
        import json

        if reference == "3.22":
            return RemoteManifest(f"sha256:{D64}", None)
        if reference == f"sha256:{D64}":
            body = json.dumps({"manifests": [
                {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
                {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "arm64",
                                                               "variant": "v8"}}]}).encode()
            return RemoteManifest(reference, None, body=body)
        return RemoteManifest(reference, "sha256:" + "3" * 64, body=b'{"config": {}}')


MULTI_BASE = """\
schema: 1
registry: repo.abc.com
images:
  root:
    platforms: [linux/amd64, linux/arm64/v8]
    from: alpine:3.22
    template: alpine-glibc
    tags: ["1"]
"""


def test_the_lock_records_each_platforms_base_and_refuses_a_single_platform_one(
        valid: Callable[[str], Manifest]) -> None:
    from javabase.release.lock import platform_resolver

    lock = compute_lock(valid(MULTI_BASE), registry_resolver(None, IndexRegistry),
                        per_platform=platform_resolver(None, IndexRegistry))
    assert lock["images"]["root"]["base_platforms"] == {"linux/amd64": "sha256:" + "1" * 64,
                                                        "linux/arm64/v8": "sha256:" + "2" * 64}
    single = valid(MULTI_BASE.replace("alpine:3.22", f"alpine:3.22@sha256:{C64}"))
    with pytest.raises(LockError) as caught:
        compute_lock(single, registry_resolver(None, IndexRegistry),
                     per_platform=platform_resolver(None, IndexRegistry))
    assert str(caught.value) == (f"root: alpine:3.22@sha256:{C64} has one platform only (not an index), and root is "
                                 "built for linux/amd64, linux/arm64/v8; pin a multi-platform index that has "
                                 "linux/amd64, linux/arm64/v8")
