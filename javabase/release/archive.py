"""Air-gapped delivery: the images of a release as one file that `docker load`
reads as it is (the `docker save` layout), with an index of javabase's own
inside it (javabase-index.json: per image its name, references, image ID,
input digest, the labels its build wrote and, for a manifest that names a
team key, its manifest as the registry held it with the signatures,
provenance and SBOM that referred to it: javabase.release.carried), so that
the receiving side needs no manifest and, with the key, can check who
vouched for each image before the engine sees a byte of it.

Saving writes the archive deterministically: members sorted by name, their
times, owners and modes fixed, so the same images give the same file.

Loading reads the archive once, checks every member it uses as it copies it
into a new archive for the engine (every config's sha256 is its image ID in
the index, every layer's sha256 the diff ID its config names), and validates
the index (references, immutable tags, digests; each entry once, its name,
platform and input digest its config's, no tag given to two entries or
published by two images: the index is not signed, the configs are). The engine gets that copy:
exactly the bytes that were verified, the images the index lists and nothing
else (no tag of the archive's own, no other image). A damaged, truncated or
foreign archive is refused (ArchiveError, exit 13) and nothing is loaded or
tagged. The backend is a parameter."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from ..decide.labels import IMAGE_LABEL, INPUT_LABEL
from ..engine import Backend
from ..errors import ArchiveError
from ..files import replacing
from ..manifest.references import DIGEST_RE, REGISTRY_RE, TAG_RE, repository_name, split_reference
from ..publish import referrers
from ..publish.pusher import same_platform
from .sbom import MEDIA_TYPE as SBOM_TYPE
from .signing import DSSE_TYPE, SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT, SIMPLE_SIGNING_TYPE

INDEX = "javabase-index.json"
FORMAT = 1
CHUNK = 1 << 20
JSON_LIMIT = 1 << 30  # bytes of javabase-index.json or manifest.json (an index keeps SBOMs: megabytes per image)
CONFIG_LIMIT = 64 << 20  # bytes of an image's config (kilobytes as the engine writes them)
_PATH_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")
_NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")  # an image's name in the manifest
_CHANGED = "the archive was changed or is not javabase's: nothing was loaded"


KINDS = {SIGNATURE_ARTIFACT: "sig", DSSE_TYPE: "att", SBOM_TYPE: "sbom"}


@dataclass(frozen=True)
class SavedArtifact:
    """An artifact that referred to the image's manifest (`of_index`: to its index):
    a cosign signature (kind `sig`), a SLSA provenance in a DSSE envelope (`att`)
    or an SPDX SBOM (`sbom`), each of its artifactType (KINDS)."""

    of_index: bool
    artifact: referrers.Artifact

    def as_json(self) -> dict[str, Any]:
        return {"of": "index" if self.of_index else "manifest", "kind": self.artifact.kind,
                "artifact_type": self.artifact.artifact_type, "annotations": dict(self.artifact.annotations),
                "layers": [{"media_type": layer.media_type, "data": base64.b64encode(layer.data).decode(),
                            "annotations": dict(layer.annotations)} for layer in self.artifact.layers]}

    @classmethod
    def from_json(cls, item: Any) -> SavedArtifact:
        """Raises TypeError, KeyError or ValueError when `item` is not one."""
        if not isinstance(item, dict) or item["of"] not in ("index", "manifest") or \
                KINDS.get(item["artifact_type"]) != item["kind"]:
            raise TypeError("not a saved artifact")
        try:
            layers = tuple(referrers.Layer(str(layer["media_type"]), base64.b64decode(layer["data"], validate=True),
                                           string_map(layer.get("annotations")))
                           for layer in a_list(item["layers"]))
        except binascii.Error:
            raise ValueError("not base64") from None
        return cls(item["of"] == "index", referrers.Artifact(str(item["kind"]), str(item["artifact_type"]), layers,
                                                             string_map(item.get("annotations"))))

    def signatures(self) -> list[tuple[bytes, str]]:
        """(payload, base64 signature) of each Simple Signing layer of a signature artifact."""
        if self.artifact.kind != "sig":
            return []
        return [(layer.data, layer.annotations[SIGNATURE_ANNOTATION]) for layer in self.artifact.layers
                if layer.media_type == SIMPLE_SIGNING_TYPE and SIGNATURE_ANNOTATION in layer.annotations]


def a_list(value: Any) -> list[Any]:
    """`value` when it is a JSON array. Raises TypeError when it is not."""
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def string_map(value: Any) -> dict[str, str]:
    """A JSON object of strings (None: empty). Raises TypeError when it is not one."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError("not a map of strings")
    return dict(value)


def encode(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def decode(text: Any) -> bytes | None:
    """Raises TypeError or ValueError when `text` is neither None nor base64."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


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
    # for a signed image, as the registry it was saved from held it (javabase.release.carried):
    manifest: bytes | None = None  # its manifest's bytes
    index: bytes | None = None  # the index it was published in (one platform of a multi-platform image)
    attached: tuple[SavedArtifact, ...] = ()  # what referred to either: signatures, provenance, SBOM

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "references": list(self.references), "image_id": self.image_id,
                "input_digest": self.input_digest, "immutable": list(self.immutable), "labels": self.labels,
                "publish": list(self.publish or self.references), "platform": self.platform,
                "manifest": encode(self.manifest), "index": encode(self.index),
                "attached": [a.as_json() for a in self.attached]}


def write(backend: Backend, entries: list[SavedEntry], output: Path, source: dict[str, str],
          on_bytes: Callable[[int], None]) -> None:
    """`docker save` of every reference of every entry, rewritten deterministically
    with the index added; written beside `output` and renamed over it, so a
    failure leaves nothing half-written. Raises CannotWrite, EngineError."""
    index = json.dumps({"format": FORMAT, **source, "images": [e.as_json() for e in entries]},
                       indent=2, sort_keys=True).encode()
    with replacing(output, "the archive") as tmp:
        raw = tmp.with_name(tmp.name + ".engine")
        try:
            backend.save([ref for entry in entries for ref in entry.references], raw, on_bytes)
            _deterministic(raw, tmp, index)
        finally:
            raw.unlink(missing_ok=True)


def _deterministic(raw: Path, dest: Path, index: bytes) -> None:
    """Rewrite the engine's `docker save` archive so that the same images give the
    same bytes: members sorted, headers fixed, JSON files in one form, and of the
    members with the same content (the engine links all but one of them, picking
    the one at random) the first by name holds it and the others link to it."""
    with tarfile.open(raw) as source:
        members = sorted(source.getmembers(), key=lambda m: m.name)
        sizes: dict[str, int] = {}
        content = {}
        for member in members:
            handle = source.extractfile(member) if member.isfile() or member.issym() else None
            if handle is not None:
                content[member.name] = _digest(handle, None, partial(_count, sizes, member.name))
        holder: dict[str, str] = {}
        for name in sorted(content):
            holder.setdefault(content[name], name)
        with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as out:
            for member in members:
                first = holder.get(content.get(member.name, ""), member.name)
                if first != member.name:
                    out.addfile(_fixed(member.name, tarfile.SYMTYPE, 0, _relative(member.name, first)))
                elif member.isdir():
                    out.addfile(_fixed(member.name, tarfile.DIRTYPE, 0))
                elif member.name in ("manifest.json", "repositories"):  # (a config's bytes are its image ID)
                    _add(out, member.name, _canonical_json(source.extractfile(member)))
                else:
                    out.addfile(_fixed(member.name, tarfile.REGTYPE, sizes.get(member.name, 0)),
                                source.extractfile(member))
            _add(out, INDEX, index)


def _count(sizes: dict[str, int], name: str, count: int) -> None:
    sizes[name] = sizes.get(name, 0) + count


def _relative(name: str, target: str) -> str:
    """The link from member `name` to member `target` (docker's form: ../<dir>/layer.tar)."""
    depth = name.count("/")
    return "../" * depth + target


def _canonical_json(handle: IO[bytes] | None) -> bytes:
    data = json.load(handle) if handle is not None else None
    if isinstance(data, list):
        data = sorted(data, key=lambda item: json.dumps(item, sort_keys=True))
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _fixed(name: str, kind: bytes, size: int, linkname: str = "") -> tarfile.TarInfo:
    """A member header without what differs from one save to the next."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def prepare_load(archive: Path, dest: Path, on_bytes: Callable[[int], None] = lambda _n: None) -> list[SavedEntry]:
    """The archive's index, validated, after copying the images it lists, and
    nothing else, into `dest` (a `docker load` archive without tags), checking
    every byte as it is copied. Raises ArchiveError for anything damaged,
    truncated, malformed or not javabase's."""
    try:
        with tarfile.open(archive) as tar, tarfile.open(dest, "w") as out:
            index = _json(tar, INDEX, archive)
            listing = _json(tar, "manifest.json", archive)
            if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(listing, list):
                raise ArchiveError(f"{archive}: not an archive `invoke save` wrote (no {INDEX} of format {FORMAT})")
            entries = [read_entry(item, archive) for item in _list(index.get("images"), archive)]
            _check_apart(entries, archive)
            by_config = {str(item.get("Config")): item for item in listing if isinstance(item, dict)}
            copied: dict[str, str] = {}  # layer member -> the diff ID it was checked to be
            loaded = [_copy_image(tar, out, entry, by_config, archive, copied, on_bytes) for entry in entries]
            _add(out, "manifest.json", json.dumps(loaded).encode())
    except ArchiveError:
        raise
    except (tarfile.TarError, OSError, EOFError, KeyError, TypeError, ValueError, AttributeError,
            RecursionError) as exc:
        raise ArchiveError(f"{archive}: cannot be read as a `docker save` archive ({exc}); it is damaged or "
                           "truncated: copy it again. Nothing was loaded") from None
    return entries


def _json(tar: tarfile.TarFile, name: str, archive: Path) -> Any:
    """The JSON member `name`, read whole (so no larger than JSON_LIMIT)."""
    try:
        member = tar.getmember(name)
        handle = tar.extractfile(member)
    except KeyError:
        raise ArchiveError(f"{archive}: has no {name}; not an archive `invoke save` wrote") from None
    if handle is None:
        raise ArchiveError(f"{archive}: {name} is not a file")
    if member.size > JSON_LIMIT:
        raise ArchiveError(f"{archive}: {name} is {member.size} bytes, more than any `invoke save` writes "
                           f"({JSON_LIMIT}); {_CHANGED}")
    try:
        return json.load(handle)
    except (ValueError, RecursionError):
        raise ArchiveError(f"{archive}: {name} is not JSON; the archive is damaged: copy it again") from None


def _list(value: Any, archive: Path) -> list[Any]:
    if not isinstance(value, list):
        raise ArchiveError(f"{archive}: {INDEX} lists no images; the archive is damaged")
    return value


def read_entry(item: Any, archive: Path) -> SavedEntry:
    """One image of the index, with every field checked (ArchiveError if not)."""
    if not isinstance(item, dict):
        raise ArchiveError(f"{archive}: {INDEX} is not javabase's index; the archive is damaged")
    try:
        entry = SavedEntry(str(item["name"]), _strings(item["references"]), str(item["image_id"]),
                           str(item["input_digest"]), _strings(item.get("immutable") or []),
                           {str(k): str(v) for k, v in dict(item.get("labels") or {}).items()},
                           _strings(item.get("publish") or item["references"]),
                           None if item.get("platform") is None else str(item["platform"]),
                           decode(item.get("manifest")), decode(item.get("index")),
                           tuple(SavedArtifact.from_json(a) for a in a_list(item.get("attached") or [])))
    except (KeyError, TypeError, ValueError):
        raise ArchiveError(f"{archive}: {INDEX} is not javabase's index; the archive is damaged") from None
    problem = _invalid(entry)
    if problem:
        raise ArchiveError(f"{archive}: {entry.name!r} in {INDEX} {problem}; {_CHANGED}")
    return entry


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("not a list of strings")
    return tuple(value)


def _invalid(entry: SavedEntry) -> str | None:
    """What is wrong with an index entry, or None."""
    if not DIGEST_RE.match(entry.image_id) or not DIGEST_RE.match(entry.input_digest):
        return "has an image ID or input digest that is not sha256:<64 hex>"
    bad = [ref for ref in (*entry.references, *entry.publish) if not _valid_reference(ref)]
    if bad or not entry.references:
        return f"has references that are not HOST/NAME:TAG ({', '.join(map(repr, bad)) or 'none'})"
    if not set(entry.immutable) <= set(entry.publish):
        return "names immutable tags it does not publish"
    if entry.platform is not None and not _PLATFORM_RE.match(entry.platform):
        return f"has platform {entry.platform!r}, which is not OS/ARCH"
    image, at, platform = entry.name.partition("@")
    if not _NAME_RE.match(image) or (platform or None) != entry.platform or (at and not platform):
        return f"has a name that is not IMAGE@PLATFORM of its platform ({entry.platform})" if entry.platform \
            else "has a name that is not an image's name"
    return None


def _check_apart(entries: list[SavedEntry], archive: Path) -> None:
    """Each entry is listed once, no engine tag is given to two entries, and no
    registry tag published by two images (the platforms of one image share
    theirs). Raises ArchiveError."""
    names: set[str] = set()
    tagged: dict[str, str] = {}
    published: dict[str, str] = {}
    for entry in entries:
        if entry.name in names:
            raise ArchiveError(f"{archive}: {INDEX} lists {entry.name!r} twice; {_CHANGED}")
        names.add(entry.name)
        for reference in entry.references:
            if tagged.setdefault(reference, entry.name) != entry.name:
                raise ArchiveError(f"{archive}: {INDEX} gives {reference} to {tagged[reference]!r} and "
                                   f"{entry.name!r}; {_CHANGED}")
        for reference in entry.publish:
            first = published.setdefault(reference, entry.name)
            if first.partition("@")[0] != entry.name.partition("@")[0]:
                raise ArchiveError(f"{archive}: {INDEX} publishes {reference} as {first!r} and {entry.name!r}; "
                                   f"{_CHANGED}")


def _valid_reference(reference: str) -> bool:
    repository, tag = split_reference(reference)
    host = repository.partition("/")[0]
    return ("/" in repository and bool(REGISTRY_RE.match(host)) and bool(_PATH_RE.match(repository_name(reference)))
            and bool(TAG_RE.match(tag)) and reference.endswith(f":{tag}"))


def _digest(handle: IO[bytes], sink: IO[bytes] | None, on_bytes: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    while block := handle.read(CHUNK):
        digest.update(block)
        if sink is not None:
            sink.write(block)
        on_bytes(len(block))
    return "sha256:" + digest.hexdigest()


def _copy_image(tar: tarfile.TarFile, out: tarfile.TarFile, entry: SavedEntry, by_config: dict[str, Any],
                archive: Path, copied: dict[str, str], on_bytes: Callable[[int], None]) -> dict[str, Any]:
    """Copy one image's config and layers into `out`, checking each; its manifest.json item (no tags)."""
    item = by_config.get(f"{entry.image_id.split(':', 1)[1]}.json")
    if item is None:
        raise ArchiveError(f"{archive}: {entry.name} ({entry.image_id[7:19]}) is in the index but not in the "
                           "archive; nothing was loaded")
    config_file = tar.extractfile(item["Config"])
    if config_file is None:
        raise ArchiveError(f"{archive}: the config of {entry.name} is not a file; the archive is damaged")
    config = config_file.read(CONFIG_LIMIT + 1)
    if len(config) > CONFIG_LIMIT:
        raise ArchiveError(f"{archive}: the config of {entry.name} is more than {CONFIG_LIMIT} bytes, more than any "
                           f"image's; {_CHANGED}")
    if "sha256:" + hashlib.sha256(config).hexdigest() != entry.image_id:
        raise ArchiveError(f"{archive}: the config of {entry.name} does not hash to {entry.image_id}; the archive "
                           "was changed or damaged: nothing was loaded")
    _add(out, item["Config"], config)
    parsed = json.loads(config)
    problem = _disagrees(entry, parsed)
    if problem:
        raise ArchiveError(f"{archive}: {entry.name!r} in {INDEX} {problem}; {_CHANGED}")
    diff_ids = parsed["rootfs"]["diff_ids"]
    layers = list(item["Layers"])
    for member, expected in zip(layers, diff_ids, strict=True):
        if member not in copied:
            _copy_layer(tar, out, member, expected, entry, archive, on_bytes)
            copied[member] = expected
        elif copied[member] != expected:  # copied for another image, as another layer
            raise ArchiveError(f"{archive}: layer {member} of {entry.name} does not hash to {expected}; the archive "
                               "was changed or damaged: nothing was loaded")
    return {"Config": item["Config"], "RepoTags": None, "Layers": layers}


def _disagrees(entry: SavedEntry, config: dict[str, Any]) -> str | None:
    """What the index says of an image that its config (checked against the
    image ID) does not: its platform, the image name and input digest its build
    labelled it with. None when they agree."""
    platform = "/".join(str(config[k]) for k in ("os", "architecture", "variant") if config.get(k))
    if entry.platform is not None and not same_platform(platform, entry.platform):
        return f"is an image of {platform or 'no platform'}, not {entry.platform}"
    labels = (config.get("config") or {}).get("Labels") or {}
    named, inputs = labels.get(IMAGE_LABEL), labels.get(INPUT_LABEL)
    if named is not None and named != entry.name.partition("@")[0]:
        return f"is the image its build named {named!r}"
    if inputs is not None and inputs != entry.input_digest:
        return f"has input digest {entry.input_digest}, and its build recorded {inputs}"
    return None


def _copy_layer(tar: tarfile.TarFile, out: tarfile.TarFile, member: str, expected: str, entry: SavedEntry,
                archive: Path, on_bytes: Callable[[int], None]) -> None:
    """Hash the layer into a temporary file; only bytes that hashed right go on
    into the engine's archive."""
    info = tar.getmember(member)
    layer = tar.extractfile(info)
    if layer is None:
        raise ArchiveError(f"{archive}: layer {member} of {entry.name} is not a file; the archive is damaged")
    header = tarfile.TarInfo(member)  # a regular file, also where the archive had a link to another layer
    with tempfile.TemporaryFile() as spool:
        if _digest(layer, spool, on_bytes) != expected:
            raise ArchiveError(f"{archive}: layer {member} of {entry.name} does not hash to {expected}; the archive "
                               "was changed or damaged: nothing was loaded")
        header.size = spool.tell()
        spool.seek(0)
        out.addfile(header, spool)


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    out.addfile(_fixed(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))


def retarget(references: Iterable[str], registry: str | None) -> tuple[str, ...]:
    """The references under another registry host (the path and tag stay)."""
    if registry is None:
        return tuple(references)
    return tuple(f"{registry}/{repository_name(ref)}:{split_reference(ref)[1]}" for ref in references)
