"""The layer cache compresses a layer once when several uploads ask for it at once."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from pathlib import Path

import pytest

from javabase.publish import blobs
from javabase.publish.blobs import BlobCache
from javabase.publish.oci import SavedImage


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
