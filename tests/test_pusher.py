"""The pusher with an in-memory backend and registry: what it uploads and
publishes, what it skips, and that it fails closed."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes import FakeBackend, FakeRegistry, sha
from javabase.errors import RegistryError
from javabase.publish.pusher import Pusher
from javabase.publish.registry import Remote
from javabase.report import Console, ImageResult, Status
from javabase.settings import Settings

OTHER = "sha256:" + "b" * 64
REFS = ["r:5000/base/jre:17", "r:5000/base/jre:17.0.1"]


def settings(tmp_path: Path) -> Settings:
    return Settings(registry="r:5000", jobs=2, push_jobs=2, cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs")


def setup(tmp_path: Path, registry: FakeRegistry, overwrite: bool = False, immutable: frozenset[str] = frozenset()
          ) -> tuple[FakeBackend, Pusher, list[ImageResult]]:
    backend = FakeBackend()
    image_id = backend.add_image(b"the root", b"the jre")
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    overwrite_immutable=overwrite,
                    immutable={"jre": immutable})
    return backend, pusher, [ImageResult("jre", list(REFS), status=Status.BUILT, image_id=image_id)]


def test_blobs_go_up_compressed_the_same_way_every_time_then_the_manifest_under_each_tag(tmp_path: Path) -> None:
    registry = FakeRegistry()
    backend, pusher, results = setup(tmp_path, registry)
    assert pusher.push_all(results) == []
    config, layers = backend.saved[results[0].image_id or ""]
    expected = {sha(gzip.compress(layer, compresslevel=6, mtime=0)) for layer in layers} | {sha(config)}
    assert registry.blobs["base/jre"] == expected
    assert registry.manifests_put == ["base/jre:17", "base/jre:17.0.1"]
    assert results[0].status == Status.PUSHED
    assert set(results[0].pushed) == set(REFS)


def test_tags_that_hold_the_image_are_not_pushed_again(tmp_path: Path) -> None:
    registry = FakeRegistry()
    _, pusher, results = setup(tmp_path, registry)
    registry.held["base/jre:17"] = Remote("sha256:" + "9" * 64, results[0].image_id)
    assert pusher.push_all(results) == []
    assert registry.manifests_put == ["base/jre:17.0.1"]
    assert results[0].already_in_registry == ["r:5000/base/jre:17"]


def test_nothing_is_uploaded_when_every_tag_holds_the_image(tmp_path: Path) -> None:
    registry = FakeRegistry()
    _, pusher, results = setup(tmp_path, registry)
    for ref in ("base/jre:17", "base/jre:17.0.1"):
        registry.held[ref] = Remote("sha256:" + "9" * 64, results[0].image_id)
    assert pusher.push_all(results) == []
    assert (registry.uploads, registry.manifests_put) == ([], [])
    assert not (tmp_path / "cache" / "blobs").exists()


def test_an_immutable_tag_holding_another_image_refuses_the_whole_push(tmp_path: Path) -> None:
    registry = FakeRegistry({"base/jre:17.0.1": Remote("sha256:" + "9" * 64, OTHER)})
    _, pusher, results = setup(tmp_path, registry, immutable=frozenset({"r:5000/base/jre:17.0.1"}))
    notes = pusher.push_all(results)
    assert notes == ["nothing was pushed: immutable tag(s) r:5000/base/jre:17.0.1 already hold other images"]
    assert registry.manifests_put == []
    assert results[0].status == Status.FAILED


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_registry_that_refuses_the_lookup_fails_closed_even_with_overwrite(tmp_path: Path, overwrite: bool) -> None:
    registry = FakeRegistry(fail=lambda what: RegistryError(f"registry r:5000 refused GET {what} (HTTP 401)"))
    _, pusher, results = setup(tmp_path, registry, overwrite=overwrite, immutable=frozenset({"r:5000/base/jre:17"}))
    with pytest.raises(RegistryError) as caught:
        pusher.push_all(results)
    assert str(caught.value) == "registry r:5000 refused GET base/jre:17 (HTTP 401)"
    assert caught.value.exit_code == 6
    assert (registry.uploads, registry.manifests_put) == ([], [])


def test_a_registry_that_will_not_take_a_push_gets_nothing(tmp_path: Path) -> None:
    registry = FakeRegistry(refuse_push=True)
    _, pusher, results = setup(tmp_path, registry)
    with pytest.raises(RegistryError) as caught:
        pusher.push_all(results)
    assert str(caught.value) == "registry r:5000 refused the upload (HTTP 401 on POST /v2/base/jre/blobs/uploads/)"
    assert (registry.uploads, registry.manifests_put) == ([], [])


def test_push_permission_is_checked_before_publishing_when_no_blob_was_uploaded(tmp_path: Path) -> None:
    """Every blob already in the repository, none of them small enough to be sent
    without asking: the first write would be a manifest PUT."""
    registry = FakeRegistry()
    backend = FakeBackend()
    image_id = backend.add_image(os.urandom(100_000), labels={"pad": "x" * 70_000})
    config, layers = backend.saved[image_id]
    registry.blobs["base/jre"] = {sha(gzip.compress(layer, compresslevel=6, mtime=0)) for layer in layers} | {
        sha(config)}
    registry.refuse_push = True
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(RegistryError) as caught:
        pusher.push_all([ImageResult("jre", list(REFS), status=Status.BUILT, image_id=image_id)])
    assert str(caught.value) == "registry r:5000 does not let this run push to base/jre; nothing was pushed"
    assert registry.manifests_put == [] and registry.uploads == []


def test_a_registry_that_refuses_the_upload_of_a_small_blob_stops_the_push_in_its_words(tmp_path: Path) -> None:
    registry = FakeRegistry()
    _, pusher, results = setup(tmp_path, registry)
    registry.refuse_push = True
    with pytest.raises(RegistryError) as caught:
        pusher.push_all(results)
    assert str(caught.value) == "registry r:5000 refused the upload (HTTP 401 on POST /v2/base/jre/blobs/uploads/)"
    assert registry.manifests_put == []


def test_what_landed_is_checked_and_a_race_is_a_failure_naming_both_digests(tmp_path: Path) -> None:
    registry = FakeRegistry(lands_as=OTHER)
    _, pusher, results = setup(tmp_path, registry)
    assert pusher.push_all(results) == []
    assert results[0].status == Status.FAILED
    digest = results[0].reason.split(" under this tag, not ")[1].split(" ")[0]  # type: ignore[union-attr]
    assert results[0].reason == (
        f"push r:5000/base/jre:17: the registry holds {digest} (image {OTHER}) under this tag, not {digest} "
        f"(image {results[0].image_id}) that this run pushed; another push of the same tag raced this one: "
        "run again")
    assert registry.manifests_put == ["base/jre:17"]


def test_a_corrupted_cached_layer_is_made_again(tmp_path: Path) -> None:
    registry = FakeRegistry()
    _, pusher, results = setup(tmp_path, registry)
    assert pusher.push_all(results) == []
    for blob in (tmp_path / "cache" / "blobs").glob("*.gz"):
        data = bytearray(blob.read_bytes())
        data[12] ^= 0xFF
        blob.write_bytes(bytes(data))
    again = FakeRegistry()
    _, pusher2, results2 = setup(tmp_path, again)
    assert pusher2.push_all(results2) == []  # FakeRegistry.upload_blob asserts every body's digest
    assert results2[0].status == Status.PUSHED


class SlowUploads(FakeRegistry):
    """A registry whose uploads take a while, so that the pushes of several
    images overlap as they do on a real one."""

    def upload_blob(self, name: str, digest: str, body: Callable[[], bytes], mount_from: str | None = None) -> str:
        if mount_from is None:
            time.sleep(0.2)
        return super().upload_blob(name, digest, body, mount_from)


def test_a_layer_several_images_push_at_once_is_uploaded_once_and_mounted_into_the_others(tmp_path: Path) -> None:
    registry = SlowUploads()
    backend = FakeBackend()
    pusher = Pusher(backend, registry, Console(io.StringIO()),  # type: ignore[arg-type]
                    Settings(registry="r:5000", jobs=4, push_jobs=4, cache_dir=tmp_path / "cache",
                             log_dir=tmp_path / "logs"))
    results = [ImageResult(f"app{i}", [f"r:5000/base/app{i}:1"], status=Status.BUILT,
                           image_id=backend.add_image(b"the shared root", f"app {i}".encode())) for i in range(4)]
    assert pusher.push_all(results) == []
    layer = backend.saved[results[0].image_id or ""][1][0]
    root = sha(gzip.compress(layer, compresslevel=6, mtime=0))
    assert len([u for u in registry.uploads if u.endswith(root)]) == 1, registry.uploads
    assert all(root in registry.blobs[f"base/app{i}"] for i in range(4))
    said = [line for r in results for line in r.log if line.startswith(f"layer {sha(layer)[7:19]}")]
    assert sorted(line.split(": ")[1] for line in said) == ["mounted from " + next(
        f"base/app{i}" for i in range(4) if f"base/app{i}@{root}" in registry.uploads)] * 3 + ["uploaded"]


def test_while_builds_run_a_child_adding_little_to_an_exported_parent_waits_and_goes_with_the_others_at_once(
        tmp_path: Path) -> None:
    """The root is exported as soon as it is started; its small children wait for
    the builds to end and go in one export (the root's layer written once more,
    not once each); a child whose own layer outweighs the root's goes at once."""
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    below = backend.stored[root].layers
    children = [backend.add_image(f"child {i}".encode(), below=below) for i in range(4)]
    jre = backend.add_image(b"j" * 40000, below=below)
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    results = {name: ImageResult(name, [f"r:5000/base/{name}:1"], status=Status.BUILT, image_id=image_id)
               for name, image_id in [("root", root), ("jre", jre)] + [(f"app{i}", c) for i, c in enumerate(children)]}
    pusher.start(results["root"])
    pusher.staging["root"].result(10)
    for i in range(4):
        pusher.start(results[f"app{i}"])
    pusher.start(results["jre"])
    pusher.staging["jre"].result(10)
    assert backend.exports == [[root], [jre]] and set(pusher.staging) == {"root", "jre"}
    assert pusher.publish(list(results.values())) == []
    assert backend.exports == [[root], [jre], sorted(children)]
    assert all(r.status == Status.PUSHED for r in results.values())
    root_mb = backend.stored[root].size / 1e6
    own_mb = (backend.stored[children[0]].size - backend.stored[root].size) / 1e6
    assert results["app0"].log[0] == (f"staged with others later: {root_mb:.1f} MB of its layers go in an earlier "
                                      f"export, {own_mb:.1f} MB are its own")
    assert pusher.phases.counts["images held for a later export"] == 4


def test_images_held_for_the_builds_leave_no_export_behind_when_the_run_is_discarded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    child = backend.add_image(b"child", below=backend.stored[root].layers)
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    pusher.start(ImageResult("root", ["r:5000/base/root:1"], status=Status.BUILT, image_id=root))
    pusher.staging["root"].result(10)
    pusher.start(ImageResult("app", ["r:5000/base/app:1"], status=Status.BUILT, image_id=child))
    pusher.discard()
    assert backend.exports == [[root]] and "app" not in pusher.staging
    assert list(tmp_path.glob("javabase-export-*")) == [] and registry.manifests_put == []


def test_a_small_blob_is_uploaded_without_asking_first_and_a_large_one_only_when_the_registry_lacks_it(
        tmp_path: Path) -> None:
    registry = FakeRegistry()
    backend = FakeBackend()
    image_id = backend.add_image(os.urandom(200_000), b"small")  # 200 kB that gzip cannot shrink, then a few bytes
    config, layers = backend.saved[image_id]
    big, small = (sha(gzip.compress(layer, compresslevel=6, mtime=0)) for layer in layers)
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path))  # type: ignore[arg-type]
    assert pusher.push_all([ImageResult("jre", ["r:5000/base/jre:1"], status=Status.BUILT, image_id=image_id)]) == []
    assert [a for a in registry.asked if "@" in a] == [f"base/jre@{big}"]
    assert sorted(registry.uploads) == sorted(f"base/jre@{d}" for d in (big, small, sha(config)))


def test_once_every_build_started_the_images_held_so_far_go_and_those_after_wait_for_the_end(
        tmp_path: Path) -> None:
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    below = backend.stored[root].layers
    early, late = (backend.add_image(f"child {i}".encode(), below=below) for i in range(2))
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    results = [ImageResult(name, [f"r:5000/base/{name}:1"], status=Status.BUILT, image_id=image_id)
               for name, image_id in (("root", root), ("early", early), ("late", late))]
    pusher.start(results[0])
    pusher.staging["root"].result(10)
    pusher.start(results[1])
    pusher.builds_started()
    pusher.staging["early"].result(10)
    pusher.start(results[2])
    assert backend.exports == [[root], [early]] and "late" not in pusher.staging
    assert pusher.publish(results) == []
    assert backend.exports == [[root], [early], [late]]
    assert [r.status for r in results] == [Status.PUSHED] * 3


def test_one_image_under_two_names_both_held_is_pushed_under_both_and_leaves_no_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    child = backend.add_image(b"child", below=backend.stored[root].layers)
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    results = [ImageResult(name, [f"r:5000/base/{name}:1"], status=Status.BUILT, image_id=image_id)
               for name, image_id in (("root", root), ("small", child), ("twin", child))]
    pusher.start(results[0])
    pusher.staging["root"].result(10)
    pusher.start(results[1])
    pusher.start(results[2])
    assert set(pusher.staging) == {"root"}
    assert pusher.publish(results) == []
    assert [r.status for r in results] == [Status.PUSHED] * 3
    assert {f"base/{name}:1" for name in ("root", "small", "twin")} <= set(registry.manifests_put)
    assert list(tmp_path.glob("javabase-export-*")) == []


def test_an_image_held_and_announced_but_never_asked_for_leaves_no_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A held image released with another whose export carries it, then not
    staged (the run stopped): close() deletes the archive it was in."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    child = backend.add_image(b"child", below=backend.stored[root].layers)
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    pusher.exports.want([child])
    saved = pusher.exports.saved(root)
    assert backend.exports == [sorted([root, child])]
    pusher.exports.release(saved)
    assert len(list(tmp_path.glob("javabase-export-*"))) == 1
    pusher.exports.close()
    assert list(tmp_path.glob("javabase-export-*")) == []


def test_a_registry_refusing_the_held_images_uploads_gets_no_tag_and_leaves_no_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    children = [backend.add_image(f"child {i}".encode(), below=backend.stored[root].layers) for i in range(3)]
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    results = [ImageResult(name, [f"r:5000/base/{name}:1"], status=Status.BUILT, image_id=image_id)
               for name, image_id in [("root", root)] + [(f"app{i}", c) for i, c in enumerate(children)]]
    pusher.start(results[0])
    pusher.staging["root"].result(10)
    for result in results[1:]:
        pusher.start(result)
    registry.refuse_push = True
    with pytest.raises(RegistryError) as caught:
        pusher.publish(results)
    assert str(caught.value).startswith("registry r:5000 refused the upload (HTTP 401 on POST /v2/base/app")
    assert registry.manifests_put == []
    assert list(tmp_path.glob("javabase-export-*")) == []


def test_a_run_discarded_while_the_held_export_runs_leaves_no_export_and_uploads_nothing_more(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (discard) while `docker save` of the held images is still writing:
    when it ends, its archive is deleted and none of them is uploaded."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    registry = FakeRegistry()
    backend = FakeBackend()
    root = backend.add_image(b"r" * 20000)
    children = [backend.add_image(f"child {i}".encode(), below=backend.stored[root].layers) for i in range(3)]
    saving, go_on = threading.Event(), threading.Event()
    plain_save = backend.save

    def slow_save(references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        if len(references) > 1:
            saving.set()
            go_on.wait(10)
        plain_save(references, dest, on_bytes)

    monkeypatch.setattr(backend, "save", slow_save)
    pusher = Pusher(backend, registry, Console(io.StringIO()), settings(tmp_path),  # type: ignore[arg-type]
                    builds_running=True)
    results = [ImageResult(name, [f"r:5000/base/{name}:1"], status=Status.BUILT, image_id=image_id)
               for name, image_id in [("root", root)] + [(f"app{i}", c) for i, c in enumerate(children)]]
    pusher.start(results[0])
    pusher.staging["root"].result(10)
    uploads = list(registry.uploads)
    for result in results[1:]:
        pusher.start(result)
    pusher.builds_started()
    assert saving.wait(10)
    pusher.discard()
    go_on.set()
    pusher.pool.shutdown(wait=True)
    assert backend.exports[-1] == sorted(children)
    assert registry.uploads == uploads and registry.manifests_put == []
    assert list(tmp_path.glob("javabase-export-*")) == []
