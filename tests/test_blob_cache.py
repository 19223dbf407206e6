"""The layer cache: a layer is read from the exported archive and compressed once,
even when several uploads ask for it at once."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from fakes import FakeBackend, FakeRegistry
from javabase.errors import StepError
from javabase.publish import blobs
from javabase.publish.blobs import BlobCache
from javabase.publish.oci import SavedImage, layer_stream, read_saved_all
from javabase.publish.pusher import Pusher
from javabase.report import Console, ImageResult, Status
from javabase.settings import Settings


def test_threads_asking_for_one_layer_at_once_compress_it_once(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    layer = b"x" * 300_000
    archive = tmp_path / "saved.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("abc/layer.tar")
        info.size = len(layer)
        tar.addfile(info, io.BytesIO(layer))
    saved = SavedImage(archive, b"{}", (("abc/layer.tar", "sha256:" + hashlib.sha256(layer).hexdigest()),))
    diff_id = saved.layers[0][1]
    streams: list[int] = []
    started = threading.Barrier(8)
    real = blobs.layer_stream

    def counted(image: SavedImage, member: str):  # type: ignore[no-untyped-def]
        streams.append(1)
        yield from real(image, member)

    monkeypatch.setattr(blobs, "layer_stream", counted)
    cache = BlobCache(tmp_path / "cache")
    got: list[str] = []

    def ask() -> None:
        started.wait()
        got.append(cache.layer(saved, "abc/layer.tar", diff_id).blob.digest)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(streams) == 1
    assert len(got) == 8 and len(set(got)) == 1


def _archive(path: Path, layers: dict[str, bytes], links: dict[str, str]) -> None:
    """A `docker save` archive of one image whose layers are `layers` (member ->
    content) and `links` (member -> the member it links to, as the engine writes
    a layer it holds twice)."""
    config = json.dumps({"rootfs": {"diff_ids": [
        "sha256:" + hashlib.sha256(layers[links.get(m, m)]).hexdigest() for m in [*layers, *links]]}}).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [*layers.items(), ("config.json", config), ("manifest.json", json.dumps(
                [{"Config": "config.json", "Layers": [*layers, *links]}]).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, f"../{target}"
            tar.addfile(info)


def test_a_layer_is_read_where_the_archive_holds_it_and_a_linked_layer_through_its_link(tmp_path: Path) -> None:
    first, second = bytes(range(256)) * 5000, b"second layer" * 100
    _archive(tmp_path / "saved.tar", {"a/layer.tar": first, "b/layer.tar": second}, {"c/layer.tar": "a/layer.tar"})
    (saved,) = read_saved_all(tmp_path / "saved.tar").values()
    assert set(saved.spans) == {"a/layer.tar", "b/layer.tar", "c/layer.tar", "config.json", "manifest.json"}
    assert [b"".join(layer_stream(saved, member)) for member, _ in saved.layers] == [first, second, first]


def test_a_layer_whose_content_is_not_its_diff_id_fails_the_image_in_one_line(tmp_path: Path) -> None:
    _archive(tmp_path / "saved.tar", {"a/layer.tar": b"what the engine wrote"}, {})
    (saved,) = read_saved_all(tmp_path / "saved.tar").values()
    damaged = SavedImage(saved.archive, saved.config, (("a/layer.tar", "sha256:" + "0" * 64),), saved.spans)
    backend = FakeBackend()
    pusher = Pusher(backend, FakeRegistry(), Console(io.StringIO()),  # type: ignore[arg-type]
                    Settings(registry="r:5000", jobs=1, push_jobs=1, cache_dir=tmp_path / "cache",
                             log_dir=tmp_path / "logs"))
    result = ImageResult("app", ["r:5000/base/app:1"], status=Status.BUILT, image_id=saved.image_id)
    with pytest.raises(StepError) as caught:
        pusher.put_layer(result, "base/app", damaged, "a/layer.tar", "sha256:" + "0" * 64)
    assert str(caught.value) == (f"app: layer 000000000000: the layer's content is sha256:"
                                 f"{hashlib.sha256(b'what the engine wrote').hexdigest()}, not sha256:{'0' * 64}: "
                                 "the saved image is damaged; build it again")


@pytest.mark.parametrize(("links", "why"), [
    ({"c/layer.tar": "gone/layer.tar"}, "c/layer.tar is not a file in the archive"),
    ({"c/layer.tar": "c/layer.tar"}, "c/layer.tar is not a file in the archive"),
    ({"c/layer.tar": "d/layer.tar", "d/layer.tar": "c/layer.tar"}, "c/layer.tar is not a file in the archive"),
])
def test_a_layer_linked_to_nothing_or_to_itself_fails_the_image_in_one_line(
        tmp_path: Path, links: dict[str, str], why: str) -> None:
    """A link the engine's archive cannot resolve (its target missing, or a loop)
    is a damaged export of that image, not an internal error of the run."""
    _archive(tmp_path / "saved.tar", {"a/layer.tar": b"a layer"}, {})
    with tarfile.open(tmp_path / "saved.tar", "a") as tar:
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, f"../{target}"
            tar.addfile(info)
    (saved,) = read_saved_all(tmp_path / "saved.tar").values()
    pusher = Pusher(FakeBackend(), FakeRegistry(), Console(io.StringIO()),  # type: ignore[arg-type]
                    Settings(registry="r:5000", jobs=1, push_jobs=1, cache_dir=tmp_path / "cache",
                             log_dir=tmp_path / "logs"))
    result = ImageResult("app", ["r:5000/base/app:1"], status=Status.BUILT, image_id=saved.image_id)
    with pytest.raises(StepError) as caught:
        pusher.put_layer(result, "base/app", saved, "c/layer.tar", "sha256:" + "1" * 64)
    assert str(caught.value) == f"app: layer 111111111111: {tmp_path / 'saved.tar'}: {why}; build it again"


def test_a_layer_linked_twice_over_is_read_where_its_target_is(tmp_path: Path) -> None:
    """docker save links a layer it holds twice to the first copy; a link to a
    link is followed too, and the layer is read at its target's offset."""
    first = bytes(range(256)) * 300
    _archive(tmp_path / "saved.tar", {"a/layer.tar": first}, {"b/layer.tar": "a/layer.tar"})
    with tarfile.open(tmp_path / "saved.tar", "a") as tar:
        info = tarfile.TarInfo("c/layer.tar")
        info.type, info.linkname = tarfile.SYMTYPE, "../b/layer.tar"
        tar.addfile(info)
    (saved,) = read_saved_all(tmp_path / "saved.tar").values()
    assert saved.spans["c/layer.tar"] == saved.spans["b/layer.tar"] == saved.spans["a/layer.tar"]
    assert b"".join(layer_stream(saved, "c/layer.tar")) == first


def test_an_export_that_is_not_an_archive_or_whose_manifest_loops_is_a_value_error(tmp_path: Path) -> None:
    """What Exports turns into the images' one-line StepError, not an internal error."""
    (tmp_path / "garbage.tar").write_bytes(b"\x01" * 1024)
    with pytest.raises(ValueError, match=r"garbage\.tar: "):
        read_saved_all(tmp_path / "garbage.tar")
    with tarfile.open(tmp_path / "loop.tar", "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type, info.linkname = tarfile.SYMTYPE, "manifest.json"
        tar.addfile(info)
    with pytest.raises(ValueError, match=r"^manifest\.json is not a file in the archive$"):
        read_saved_all(tmp_path / "loop.tar")
