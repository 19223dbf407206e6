"""Artifacts attached to an image in the registry (an SBOM today): an OCI image
manifest with an `artifactType`, an empty config and a `subject` naming the
image's manifest (OCI image spec 1.1, "Guidelines for Artifact Usage"), pushed
by digest and tagged `sha256-<hex>.<kind>` so that registries without the
referrers API (Distribution 2.8) can find it by the subject's digest."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .oci import MANIFEST_TYPE, digest_of
from .registry import Registry, Remote

EMPTY_CONFIG = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


@dataclass(frozen=True)
class Artifact:
    """What is attached: its kind (for people, and the tag suffix), its media
    type (the manifest's artifactType and the layer's mediaType) and its bytes."""

    kind: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class Descriptor:
    """An OCI descriptor: digest, size in bytes and media type of a manifest."""

    digest: str
    size: int
    media_type: str


def subject_of(remote: Remote, platform: str | None) -> Descriptor | None:
    """The manifest an artifact of this image is about: the tag's own manifest, or
    for one platform (OS/ARCH) of an index, that platform's manifest; None when
    the index has no such platform."""
    if platform is None:
        return Descriptor(remote.digest, len(remote.body), remote.media_type or MANIFEST_TYPE)
    os_name, arch = platform.split("/")[:2]
    for child in json.loads(remote.body).get("manifests") or []:
        found = child.get("platform") or {}
        if found.get("os") == os_name and found.get("architecture") == arch:
            return Descriptor(str(child["digest"]), int(child["size"]), str(child.get("mediaType") or MANIFEST_TYPE))
    return None


def artifact_manifest(artifact: Artifact, subject: Descriptor) -> bytes:
    """The artifact's OCI manifest, serialised the same way every time."""
    body = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact.media_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": digest_of(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": artifact.media_type, "digest": digest_of(artifact.data), "size": len(artifact.data)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def referrer_tag(subject_digest: str, kind: str) -> str:
    """sha256:<hex> -> sha256-<hex>.<kind>: the tag an artifact of that subject gets."""
    return subject_digest.replace(":", "-") + f".{kind}"


def attach(registry: Registry, name: str, artifact: Artifact, subject: Descriptor) -> tuple[str, str]:
    """Upload the artifact's blobs to repository `name`, PUT its manifest by digest
    and under its referrer tag; return (manifest digest, tag). Raises RegistryError."""
    registry.upload_blob(name, digest_of(artifact.data), lambda: artifact.data)
    registry.upload_blob(name, digest_of(EMPTY_CONFIG), lambda: EMPTY_CONFIG)
    manifest = artifact_manifest(artifact, subject)
    digest = registry.put_manifest(name, digest_of(manifest), manifest, MANIFEST_TYPE)
    tag = referrer_tag(subject.digest, artifact.kind)
    registry.put_manifest(name, tag, manifest, MANIFEST_TYPE)
    return digest, tag
