"""Images as the registry stores them: an image saved by the engine (`docker
save` layout) read into its config and layers, layers compressed the same way
every time, and the OCI image manifest that names them.

Compression is javabase's own, not the engine's: gzip (zlib's) at a fixed
level with no name and no time in its header, so the same layer always gives the same blob
digest, whatever the engine version, and the manifest digest is known before
anything is sent."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
GZIP_LEVEL = 6
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class SavedImage:
    """What `docker save` wrote for one image: its config (exact bytes, whose
    sha256 is the image ID) and its layers (archive member, diff ID), base
    first; `spans`: where the archive's regular files start and how many bytes
    they hold, so that a layer is read without scanning the archive again."""

    archive: Path
    config: bytes
    layers: tuple[tuple[str, str], ...]
    spans: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def image_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    def platform(self) -> dict[str, str]:
        data = json.loads(self.config)
        platform = {"architecture": str(data.get("architecture") or "amd64"), "os": str(data.get("os") or "linux")}
        if data.get("variant"):
            platform["variant"] = str(data["variant"])
        return platform


def read_saved_all(archive: Path) -> dict[str, SavedImage]:
    """Every image in a `docker save` archive (of one image or several, whose
    shared layers it holds once), by image ID: the sha256 of its config,
    computed here. Raises ValueError or KeyError when the archive is not one
    `docker save` writes."""
    out: dict[str, SavedImage] = {}
    with tarfile.open(archive) as tar:
        spans = {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isreg()}
        listing = json.load(_member(tar, "manifest.json"))
        if not isinstance(listing, list) or not listing:
            raise ValueError(f"{archive}: manifest.json lists no image")
        for entry in listing:
            config = _member(tar, entry["Config"]).read()
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
            image = SavedImage(archive, config, tuple(zip(entry["Layers"], diff_ids, strict=True)), spans)
            out[image.image_id] = image
    return out


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = tar.extractfile(name)
    if handle is None:
        raise ValueError(f"{name} is not a file in the archive")
    return handle


def layer_stream(saved: SavedImage, member: str) -> Iterator[bytes]:
    """The uncompressed bytes of one layer, in chunks: read where the archive
    holds it (`spans`), or, for a link to another member, through tarfile."""
    span = saved.spans.get(member)
    if span is None:
        with tarfile.open(saved.archive) as tar:
            handle = _member(tar, member)
            while block := handle.read(CHUNK):
                yield block
        return
    offset, left = span
    with saved.archive.open("rb") as handle:
        handle.seek(offset)
        while left > 0:
            block = handle.read(min(CHUNK, left))
            if not block:
                raise ValueError(f"{saved.archive}: {member} ends early")
            left -= len(block)
            yield block


def compress(chunks: Iterator[bytes], sink: IO[bytes]) -> tuple[str, str, int]:
    """gzip `chunks` into sink deterministically: (diff ID of the input, digest
    of the output, size of the output). zlib writes the gzip header itself, with
    no file name and mtime 0, so equal input gives equal output."""
    raw, packed = hashlib.sha256(), hashlib.sha256()
    size = 0
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 8)

    def emit(data: bytes) -> None:
        nonlocal size
        if data:
            packed.update(data)
            sink.write(data)
            size += len(data)

    for chunk in chunks:
        raw.update(chunk)
        emit(compressor.compress(chunk))
    emit(compressor.flush())
    return "sha256:" + raw.hexdigest(), "sha256:" + packed.hexdigest(), size


def image_manifest(config: Blob, layers: list[Blob], annotations: dict[str, str] | None = None) -> bytes:
    """The OCI image manifest, serialised the same way every time."""
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in layers],
    }
    if annotations:
        body["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(body, separators=(",", ":")).encode()


def image_index(manifests: list[tuple[bytes, dict[str, str]]], annotations: dict[str, str] | None = None) -> bytes:
    """The OCI image index naming one image manifest per platform, serialised
    the same way every time."""
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{"mediaType": MANIFEST_TYPE, "digest": digest_of(data), "size": len(data), "platform": platform}
                      for data, platform in manifests],
    }
    if annotations:
        body["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(body, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
