"""Air-gapped delivery: the images of a release as one file that `docker load`
reads as it is, with an index of javabase's own inside it (javabase-index.json:
per image its name, references, image ID, input digest and the labels its
build wrote), so that the receiving side needs no manifest.

Loading verifies the whole archive before anything reaches the engine: every
config's sha256 is its image ID in the index, every layer's sha256 is the diff
ID its config names. A damaged or truncated archive is refused, and nothing is
loaded or tagged. The backend is a parameter."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..engine import Backend
from ..errors import ArchiveError
from ..files import replacing
from ..manifest.references import repository_name, split_reference

INDEX = "javabase-index.json"
FORMAT = 1
CHUNK = 1 << 20


@dataclass(frozen=True)
class SavedEntry:
    name: str
    references: tuple[str, ...]
    image_id: str
    input_digest: str
    immutable: tuple[str, ...]
    labels: dict[str, str]
    publish: tuple[str, ...] = ()  # the references pushed (for one platform of a multi-platform image: its index's)
    platform: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "references": list(self.references), "image_id": self.image_id,
                "input_digest": self.input_digest, "immutable": list(self.immutable), "labels": self.labels,
                "publish": list(self.publish or self.references), "platform": self.platform}


def write(backend: Backend, entries: list[SavedEntry], output: Path, source: dict[str, str],
          on_bytes: Callable[[int], None]) -> None:
    """`docker save` of every reference of every entry, plus the index; written
    beside `output` and renamed over it, so a failure leaves nothing half-written."""
    with replacing(output, "the archive") as tmp:
        backend.save([ref for entry in entries for ref in entry.references], tmp, on_bytes)
        index = json.dumps({"format": FORMAT, **source, "images": [e.as_json() for e in entries]},
                           indent=2, sort_keys=True).encode()
        with tarfile.open(tmp, "a") as tar:
            info = tarfile.TarInfo(INDEX)
            info.size = len(index)
            tar.addfile(info, io.BytesIO(index))


def verify(archive: Path, on_bytes: Callable[[int], None] = lambda _n: None) -> list[SavedEntry]:
    """The archive's index, after checking every image in it byte for byte."""
    try:
        with tarfile.open(archive) as tar:
            index = _json(tar, INDEX, archive)
            listing = _json(tar, "manifest.json", archive)
            if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(listing, list):
                raise ArchiveError(f"{archive}: not an archive `invoke save` wrote (no {INDEX} of format {FORMAT})")
            entries = [_entry(item, archive) for item in index.get("images") or []]
            by_config = {str(item.get("Config")): item for item in listing if isinstance(item, dict)}
            for entry in entries:
                _check_image(tar, entry, by_config, archive, on_bytes)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{archive}: cannot be read as a tar archive ({exc}); it is damaged or truncated: "
                           "copy it again") from None
    return entries


def _json(tar: tarfile.TarFile, name: str, archive: Path) -> Any:
    try:
        handle = tar.extractfile(name)
    except KeyError:
        raise ArchiveError(f"{archive}: has no {name}; not an archive `invoke save` wrote") from None
    if handle is None:
        raise ArchiveError(f"{archive}: {name} is not a file")
    try:
        return json.load(handle)
    except ValueError:
        raise ArchiveError(f"{archive}: {name} is not JSON; the archive is damaged: copy it again") from None


def _entry(item: Any, archive: Path) -> SavedEntry:
    try:
        return SavedEntry(str(item["name"]), tuple(item["references"]), str(item["image_id"]),
                          str(item["input_digest"]), tuple(item.get("immutable") or ()), dict(item.get("labels") or {}),
                          tuple(item.get("publish") or item["references"]), item.get("platform"))
    except (KeyError, TypeError):
        raise ArchiveError(f"{archive}: {INDEX} is not javabase's index; the archive is damaged") from None


def _digest(handle: IO[bytes], on_bytes: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    while block := handle.read(CHUNK):
        digest.update(block)
        on_bytes(len(block))
    return "sha256:" + digest.hexdigest()


def _check_image(tar: tarfile.TarFile, entry: SavedEntry, by_config: dict[str, Any], archive: Path,
                 on_bytes: Callable[[int], None]) -> None:
    item = by_config.get(f"{entry.image_id.split(':', 1)[1]}.json")
    if item is None:
        raise ArchiveError(f"{archive}: {entry.name} ({entry.image_id[7:19]}) is in the index but not in the "
                           "archive; nothing was loaded")
    config_file = tar.extractfile(item["Config"])
    if config_file is None:
        raise ArchiveError(f"{archive}: the config of {entry.name} is not a file; the archive is damaged")
    config = config_file.read()
    if "sha256:" + hashlib.sha256(config).hexdigest() != entry.image_id:
        raise ArchiveError(f"{archive}: the config of {entry.name} does not hash to {entry.image_id}; the archive "
                           "was changed or damaged: nothing was loaded")
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    for member, expected in zip(item["Layers"], diff_ids, strict=True):
        layer = tar.extractfile(member)
        if layer is None or _digest(layer, on_bytes) != expected:
            raise ArchiveError(f"{archive}: layer {member} of {entry.name} does not hash to {expected}; the archive "
                               "was changed or damaged: nothing was loaded")


def retarget(references: Iterable[str], registry: str | None) -> tuple[str, ...]:
    """The references under another registry host (the path and tag stay)."""
    if registry is None:
        return tuple(references)
    out = []
    for reference in references:
        out.append(f"{registry}/{repository_name(reference)}:{split_reference(reference)[1]}")
    return tuple(out)
