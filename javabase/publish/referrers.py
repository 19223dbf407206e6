"""Artifacts attached to an image in the registry (its SBOM, signature and
provenance), where today's tools find them:

- as OCI 1.1 referrers (image spec "Guidelines for Artifact Usage"): an image
  manifest with an `artifactType`, the empty config and a `subject` naming
  the image's manifest, pushed by digest. A registry with the referrers API
  answers its PUT with `OCI-Subject`; for one without it (Distribution 2.8,
  many company registries) the client keeps the referrers list itself, as the
  distribution spec's "referrers tag schema" says: the image index tagged
  `sha256-<hex>` of the subject is read (an empty one when it is missing),
  the artifact's descriptor added once, and the index written back. `oras
  discover`, Notation and cosign find them either way.
- signatures and attestations also where cosign looks by default (its
  SIGNATURE_SPEC and ATTESTATION_SPEC): the manifest tagged `sha256-<hex>.sig`
  (`.att`), one layer per signature (attestation), layers that are already
  there kept.

A registry whose tags cannot be overwritten (the fallback index and the
cosign tags are tags) gets the artifact by digest all the same, and the
caller is told in one line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from ..errors import RegistryError
from .oci import INDEX_TYPE, MANIFEST_TYPE, digest_of
from .registry import Registry, RegistryAnswer, Remote

EMPTY_CONFIG = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Layer:
    """One blob of an artifact: its media type, bytes and descriptor annotations."""

    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    def descriptor(self) -> dict[str, object]:
        out: dict[str, object] = {"mediaType": self.media_type, "digest": digest_of(self.data),
                                  "size": len(self.data)}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


@dataclass(frozen=True)
class Artifact:
    """What is attached: its kind (for people; cosign's tag suffix for `sig` and
    `att`), its artifactType, its layers and the manifest's annotations."""

    kind: str
    artifact_type: str
    layers: tuple[Layer, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Descriptor:
    """An OCI descriptor: digest, size in bytes and media type of a manifest."""

    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Attached:
    """Where an artifact went: its manifest digest, and a line for people when the
    registry kept the referrers list itself or a tag could not be written."""

    digest: str
    note: str = ""


def subject_of(remote: Remote, platform: str | None) -> Descriptor | None:
    """The manifest an artifact of this image is about: the tag's own manifest, or
    for one platform (OS/ARCH) of an index, that platform's manifest; None when
    the index has no such platform. A manifest (a platform pushed under its own
    tag) is its own subject."""
    if platform is None or remote.config_digest is not None:
        return Descriptor(remote.digest, len(remote.body), remote.media_type or MANIFEST_TYPE)
    os_name, arch = platform.split("/")[:2]
    for child in json.loads(remote.body).get("manifests") or []:
        found = child.get("platform") or {}
        if found.get("os") == os_name and found.get("architecture") == arch:
            return Descriptor(str(child["digest"]), int(child["size"]), str(child.get("mediaType") or MANIFEST_TYPE))
    return None


def artifact_manifest(artifact: Artifact, subject: Descriptor) -> bytes:
    """The artifact's OCI 1.1 manifest, serialised the same way every time."""
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact.artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": digest_of(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [layer.descriptor() for layer in artifact.layers],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }
    if artifact.annotations:
        body["annotations"] = dict(sorted(artifact.annotations.items()))
    return json.dumps(body, separators=(",", ":")).encode()


def fallback_tag(subject_digest: str) -> str:
    """sha256:<hex> -> sha256-<hex>: the referrers tag schema's tag for a subject."""
    return subject_digest.replace(":", "-")


def cosign_tag(subject_digest: str, kind: str) -> str:
    """sha256:<hex> -> sha256-<hex>.<kind>: where cosign stores signatures (sig) and attestations (att)."""
    return f"{fallback_tag(subject_digest)}.{kind}"


def attach(registry: Registry, name: str, artifact: Artifact, subject: Descriptor) -> Attached:
    """Push the artifact as a referrer of `subject` in repository `name`, keeping
    the fallback referrers index when the registry has no referrers API.
    Raises RegistryError when the artifact itself cannot be pushed."""
    _upload(registry, name, [Layer(EMPTY_TYPE, EMPTY_CONFIG), *artifact.layers])
    body = artifact_manifest(artifact, subject)
    digest, headers = registry.put(name, digest_of(body), body, MANIFEST_TYPE)
    if headers.get("oci-subject"):
        return Attached(digest)
    entry = {"mediaType": MANIFEST_TYPE, "digest": digest, "size": len(body), "artifactType": artifact.artifact_type}
    if artifact.annotations:
        entry["annotations"] = dict(sorted(artifact.annotations.items()))
    try:
        _add_to_index(registry, name, fallback_tag(subject.digest), entry)
    except RegistryError as exc:
        return Attached(digest, f"{artifact.kind} pushed as {digest[:19]}, but the referrers list (tag "
                                f"{fallback_tag(subject.digest)}) was not updated: {exc}")
    return Attached(digest)


def _upload(registry: Registry, name: str, layers: list[Layer]) -> None:
    for layer in layers:
        if not registry.has_blob(name, digest_of(layer.data)):
            registry.upload_blob(name, digest_of(layer.data), partial(bytes, layer.data))


def _add_to_index(registry: Registry, name: str, tag: str, entry: Mapping[str, object]) -> bool:
    """Add `entry` to the image index tagged `tag` (made when missing); whether it was new."""
    there = registry.manifest(name, tag)
    index: dict[str, object] = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": []}
    if there is not None:
        loaded = json.loads(there.body)
        if not isinstance(loaded, dict) or loaded.get("mediaType") != INDEX_TYPE:
            raise RegistryError(f"registry {registry.host}: {name}:{tag} holds something that is not a referrers "
                                "index; leave that tag to the referrers list")
        index = loaded
    listed = _objects(there.body, "manifests") if there is not None else []
    if any(m.get("digest") == entry["digest"] for m in listed):
        return False
    index["manifests"] = [*listed, dict(entry)]
    registry.put_manifest(name, tag, json.dumps(index, separators=(",", ":")).encode(), INDEX_TYPE)
    return True


def referrers(registry: Registry, name: str, subject_digest: str) -> list[dict[str, object]]:
    """The descriptors of the artifacts that refer to `subject_digest`: from the
    referrers API, else from the fallback index. Raises RegistryError."""
    try:
        status, _, body = registry.request("GET", f"/{name}/referrers/{subject_digest}",
                                           scope=f"repository:{name}:pull", accept=INDEX_TYPE)
    except RegistryAnswer:
        status, body = 404, b""  # no referrers API (some registries answer 400 or 405)
    if status != 200:
        there = registry.manifest(name, fallback_tag(subject_digest))
        body = there.body if there is not None else b'{"manifests": []}'
    return _objects(body, "manifests")


def _objects(body: bytes, key: str) -> list[dict[str, object]]:
    """The JSON objects listed under `key` of the JSON object `body`; none when it is not that shape."""
    try:
        listed = json.loads(body).get(key)
    except (ValueError, AttributeError, RecursionError):
        return []
    return [m for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []


def add_to_cosign_tag(registry: Registry, name: str, subject_digest: str, kind: str, layer: Layer) -> str:
    """Add `layer` (a signature or an attestation) to the manifest cosign keeps
    under `sha256-<hex>.<kind>`, keeping the layers already there; its digest.
    Raises RegistryError."""
    tag = cosign_tag(subject_digest, kind)
    there = registry.manifest(name, tag)
    layers: list[dict[str, object]] = []
    if there is not None:
        layers = _objects(there.body, "layers")
    if not any(d.get("digest") == digest_of(layer.data) and d.get("annotations") == (dict(layer.annotations) or None)
               for d in layers):
        layers.append(layer.descriptor())
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]}},
                        separators=(",", ":")).encode()
    _upload(registry, name, [Layer(CONFIG_TYPE, config), layer])
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                       "config": {"mediaType": CONFIG_TYPE, "digest": digest_of(config), "size": len(config)},
                       "layers": layers}, separators=(",", ":")).encode()
    return registry.put_manifest(name, tag, body, MANIFEST_TYPE)
