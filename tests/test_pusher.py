"""The pusher with a fake backend and registry: what it pushes, what it skips,
and that it fails closed when the registry cannot be read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fakes import FakeBackend, FakeRegistry

from javabase.decide import Remote
from javabase.errors import RegistryError
from javabase.pusher import Pusher
from javabase.report import Console, ImageResult, Status
from javabase.settings import Settings

ID = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
SETTINGS = Settings(registry="r:5000", jobs=2, push_jobs=2, cache_dir=Path("/nonexistent"),
                    log_dir=Path("/nonexistent"))


def ready() -> list[ImageResult]:
    return [ImageResult("jre", ["r:5000/base/jre:17", "r:5000/base/jre:17.0.1"], status=Status.BUILT, image_id=ID)]


def pusher(backend: FakeBackend, registry: FakeRegistry, force: bool = False,
           immutable: frozenset[str] = frozenset()) -> Pusher:
    backend.registry = registry
    for reference in ready()[0].references:
        backend.tag(ID, reference)
    return Pusher(backend, registry, Console(io.StringIO()), SETTINGS, force=force,  # type: ignore[arg-type]
                  immutable={"jre": immutable})


def test_tags_that_hold_the_image_are_not_pushed_again() -> None:
    backend = FakeBackend()
    registry = FakeRegistry({"base/jre:17": Remote("sha256:" + "9" * 64, ID)})
    results = ready()
    assert pusher(backend, registry).push_all(results) == []
    assert backend.pushed == ["r:5000/base/jre:17.0.1"]
    assert results[0].status == Status.PUSHED
    assert results[0].already_in_registry == ["r:5000/base/jre:17"]


def test_an_immutable_tag_holding_another_image_refuses_the_whole_push() -> None:
    backend = FakeBackend()
    registry = FakeRegistry({"base/jre:17.0.1": Remote("sha256:" + "9" * 64, OTHER)})
    results = ready()
    notes = pusher(backend, registry, immutable=frozenset({"r:5000/base/jre:17.0.1"})).push_all(results)
    assert notes == ["nothing was pushed: immutable tag(s) r:5000/base/jre:17.0.1 already hold other images"]
    assert backend.pushed == []
    assert results[0].status == Status.FAILED


@pytest.mark.parametrize("force", [False, True])
def test_a_registry_that_refuses_the_lookup_fails_closed_even_with_force(force: bool) -> None:
    backend = FakeBackend()
    registry = FakeRegistry(fail=lambda what: RegistryError(f"registry r:5000 refused GET {what} (HTTP 401)"))
    with pytest.raises(RegistryError) as caught:
        pusher(backend, registry, force=force, immutable=frozenset({"r:5000/base/jre:17"})).push_all(ready())
    assert str(caught.value) == "registry r:5000 refused GET base/jre:17 (HTTP 401)"
    assert caught.value.exit_code == 6
    assert backend.pushed == []


def test_what_landed_is_checked_and_a_race_is_a_failure_naming_both_digests() -> None:
    backend = FakeBackend(lands_as=OTHER)
    results = ready()
    assert pusher(backend, FakeRegistry()).push_all(results) == []
    assert results[0].status == Status.FAILED
    assert results[0].reason == (
        f"push r:5000/base/jre:17: the registry holds sha256:{'d' * 64} (image {OTHER}) under this tag, not "
        f"sha256:{'d' * 64} (image {ID}) that this run pushed; another push of the same tag raced this one: "
        "run again")
    assert backend.pushed == ["r:5000/base/jre:17"]
