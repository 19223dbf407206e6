"""Compressed layers, kept by diff ID in the cache so that a layer shared by
many images (the JRE, the root) is compressed once. An entry is checked when
it is used: its digest is computed again as it is read for upload."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..files import replacing, write_quietly
from .oci import LAYER_TYPE, Blob, SavedImage, compress, layer_stream


@dataclass(frozen=True)
class CachedBlob:
    blob: Blob
    path: Path


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "blobs"
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}  # one per diff ID: a layer is compressed once at a time

    def _paths(self, diff_id: str) -> tuple[Path, Path]:
        name = diff_id.split(":", 1)[1]
        return self.root / f"{name}.gz", self.root / f"{name}.json"

    def layer(self, saved: SavedImage, member: str, diff_id: str) -> CachedBlob:
        """The compressed blob of one layer, from the cache or made now. Threads
        that ask for the same layer at once wait for the one compressing it (the
        root's layer in the export of each of its children would otherwise be
        compressed by every upload thread while the first one is at it)."""
        with self._lock:
            making = self._making.setdefault(diff_id, threading.Lock())
        with making:
            return self._layer(saved, member, diff_id)

    def _layer(self, saved: SavedImage, member: str, diff_id: str) -> CachedBlob:
        data, meta = self._paths(diff_id)
        try:
            known = json.loads(meta.read_text())
            if data.stat().st_size == known["size"]:
                return CachedBlob(Blob(known["digest"], known["size"], LAYER_TYPE), data)
        except (OSError, ValueError, KeyError):
            pass
        return self._make(layer_stream(saved, member), diff_id)

    def manifest(self, image_id: str | None) -> tuple[bytes, dict[str, str]] | None:
        """The manifest javabase made for an image before, and its platform."""
        if not image_id:
            return None
        try:
            known = json.loads((self.root / "manifests" / f"{image_id.split(':', 1)[1]}.json").read_text())
            return known["manifest"].encode(), dict(known["platform"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember_manifest(self, image_id: str | None, manifest: bytes, platform: dict[str, str]) -> None:
        if image_id:  # a cache: not written costs only an export next time
            write_quietly(self.root / "manifests" / f"{image_id.split(':', 1)[1]}.json",
                          json.dumps({"manifest": manifest.decode(), "platform": platform}))

    def forget(self, diff_id: str) -> None:
        for path in self._paths(diff_id):
            path.unlink(missing_ok=True)

    def _make(self, chunks: Iterator[bytes], diff_id: str) -> CachedBlob:
        """Compress a layer into the cache. Raises CannotWrite, or ValueError when the
        layer's content is not `diff_id`."""
        data, meta = self._paths(diff_id)
        with replacing(data, "the layer cache (JAVABASE_CACHE)") as tmp, tmp.open("wb") as sink:
            actual, digest, size = compress(chunks, sink)
            if actual != diff_id:
                raise ValueError(f"the layer's content is {actual}, not {diff_id}: the saved image is damaged")
        write_quietly(meta, json.dumps({"digest": digest, "size": size}))
        return CachedBlob(Blob(digest, size, LAYER_TYPE), data)
