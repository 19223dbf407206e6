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
import posixpath
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
MAX_LINKS = 8  # hops from a link to the file it names, in an archive


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class SavedImage:
    """What `docker save` wrote for one image: its config (exact bytes, whose
    sha256 is the image ID) and its layers (archive member, diff ID), base
    first; `spans`: where each member's bytes start in the archive and how many
    they are (a link's are its target's), so that a layer is read without
    scanning the archive again."""

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
    try:
        with tarfile.open(archive) as tar:
            spans = _spans(tar)
    except tarfile.TarError as exc:
        raise ValueError(f"{archive}: {exc}") from None
    with archive.open("rb") as handle:
        listing = json.loads(_read(handle, spans, "manifest.json"))
        if not isinstance(listing, list) or not listing:
            raise ValueError(f"{archive}: manifest.json lists no image")
        for entry in listing:
            config = _read(handle, spans, entry["Config"])
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
            image = SavedImage(archive, config, tuple(zip(entry["Layers"], diff_ids, strict=True)), spans)
            out[image.image_id] = image
    return out


def _read(handle: IO[bytes], spans: Mapping[str, tuple[int, int]], name: str) -> bytes:
    """A small member's bytes (manifest.json, a config)."""
    if name not in spans:
        raise ValueError(f"{name} is not a file in the archive")
    offset, size = spans[name]
    handle.seek(offset)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError(f"{name} ends early")
    return data


def _spans(tar: tarfile.TarFile) -> dict[str, tuple[int, int]]:
    """Every member that is a regular file, or a link that leads to one (docker
    save links a layer it holds twice to its first copy): (offset, size) of the
    bytes. Links are followed a few hops, inside the archive only; a link to
    nothing, out of the archive or in a loop has no span."""
    members = {m.name: m for m in tar.getmembers()}
    spans: dict[str, tuple[int, int]] = {}
    for name in members:
        target: tarfile.TarInfo | None = members[name]
        for _hop in range(MAX_LINKS + 1):
            if target is None or not (target.issym() or target.islnk()):
                break
            linked = target.linkname if target.islnk() else \
                posixpath.normpath(posixpath.join(posixpath.dirname(target.name), target.linkname))
            target = members.get(linked)
        if target is not None and target.isreg():
            spans[name] = (target.offset_data, target.size)
    return spans


def layer_stream(saved: SavedImage, member: str) -> Iterator[bytes]:
    """The uncompressed bytes of one layer, in chunks, read where the archive
    holds them (`spans`; found again when the image carries none). Raises
    ValueError when the member is not a file of the archive, or ends early."""
    span = saved.spans.get(member)
    if span is None and not saved.spans:
        with tarfile.open(saved.archive) as tar:
            span = _spans(tar).get(member)
    if span is None:
        raise ValueError(f"{saved.archive}: {member} is not a file in the archive")
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
