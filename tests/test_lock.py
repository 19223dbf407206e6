"""The lock, without a network: computing, comparing, applying, resolving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from conftest import BASE, SHA_B
from javabase.decide import Remote as RemoteManifest
from javabase.errors import LockError
from javabase.lock import apply_lock, compute_lock, differences, registry_resolver, render_lock
from javabase.model import Manifest

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
