"""What a signed image takes with it through an archive (`save`, `load`): the
artifacts that referred to it in the registry it was saved from, so that the
site that loads it can check who vouched for it before the engine sees it and
publish it with the same signature, provenance and SBOM.

Per image (per platform) the archive keeps the exact bytes of its manifest
as the registry held it (and of the index it was published in, for one
platform of a multi-platform image) and, as OCI artifacts (kind,
artifactType, annotations, layers with their bytes), every cosign signature
of that manifest that verifies with the team's key (from sha256-<hex>.sig and
the referrers, once each), every SLSA provenance whose DSSE envelope opens
with the key, the first SPDX SBOM; and the index's signatures. A signature
counts for an image when its Simple Signing payload names the sha256 of the
saved manifest and that manifest's config descriptor is the image's ID
(javabase.release.archive checks the config's bytes against that ID and the
layers against its diff IDs): the key's holder vouched for every byte."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import JavabaseError
from ..manifest.references import repository_name, split_reference
from ..publish import referrers
from ..publish.oci import digest_of
from ..publish.pusher import Pusher, index_platforms
from ..publish.registry import Registry, UntrustedAnswer
from ..report import ImageResult
from . import sbom, slsa, verify
from .archive import KINDS, SavedArtifact, SavedEntry, a_list, string_map
from .sbom import MEDIA_TYPE as SBOM_TYPE
from .signing import (
    DSSE_TYPE,
    SIGNATURE_ANNOTATION,
    SIGNATURE_ARTIFACT,
    SIMPLE_SIGNING_TYPE,
    check_payload,
    open_envelope,
)


# -- save ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Found:
    """What the registry holds of one image: its manifest's bytes, the index it is
    in (None for a single-platform image), and what refers to either."""

    manifest: bytes
    index: bytes | None
    artifacts: tuple[SavedArtifact, ...]


def find(registry: Registry, reference: str, image_id: str, public: ec.EllipticCurvePublicKey) -> Found | None:
    """What `reference` (HOST/NAME:TAG) holds of the image `image_id`, with what
    refers to it that the key vouches for; None when the tag holds no manifest
    of that image. Raises RegistryError."""
    name, tag = repository_name(reference), split_reference(reference)[1]
    there = registry.manifest(name, tag)
    if there is None:
        return None
    index = there.body if there.config_digest is None else None
    manifest = there.body if there.config_digest == image_id else None
    for _platform, digest, _object in index_platforms(index) if index is not None else []:
        child = registry.manifest(name, digest)
        if child is not None and child.config_digest == image_id:
            manifest = child.body
    if manifest is None:
        return None
    found = [SavedArtifact(False, a) for a in _vouched(registry, name, digest_of(manifest), image_id, public)]
    if index is not None:
        found += [SavedArtifact(True, a) for a in _vouched(registry, name, digest_of(index), image_id, public)
                  if a.kind == "sig"]
    return Found(manifest, index, tuple(found))


def _vouched(registry: Registry, name: str, digest: str, image_id: str, public: ec.EllipticCurvePublicKey
             ) -> list[referrers.Artifact]:
    """The signatures of `digest` that verify with `public` (once each), the
    provenances whose envelopes open with it for `digest`, and the first SBOM of
    the image `image_id`, each in the form `vouched` gives."""
    found: dict[tuple[bytes, str], None] = {(payload, signature): None for payload, signature, problem
                                            in verify.signatures(registry, name, digest, public) if problem is None}
    out = [referrers.Artifact("sig", SIGNATURE_ARTIFACT,
                              (referrers.Layer(SIMPLE_SIGNING_TYPE, payload, {SIGNATURE_ANNOTATION: signature}),))
           for payload, signature in found]
    sboms = 0
    for descriptor in referrers.referrers(registry, name, digest):
        kind = KINDS.get(str(descriptor.get("artifactType")))
        if kind not in ("att", "sbom") or (kind == "sbom" and sboms):
            continue
        artifact = _read(registry, name, str(descriptor.get("digest")), kind)
        artifact = vouched(artifact, digest, image_id, public) if artifact is not None else None
        if artifact is not None:
            out.append(artifact)
            sboms += kind == "sbom"
    return out


def _read(registry: Registry, name: str, digest: str, kind: str) -> referrers.Artifact | None:
    """The artifact manifest `digest` with its layers' bytes, or None when any is
    missing or it is not an OCI manifest of descriptors (anyone who can push can
    list anything as a referrer)."""
    try:
        there = registry.manifest(name, digest)
        body = json.loads(there.body) if there is not None else {}
        layers = []
        for descriptor in a_list(body.get("layers")):
            data = verify.blob(registry, name, str(descriptor["digest"]))
            if data is None:
                return None
            annotations = string_map(descriptor.get("annotations"))
            layers.append(referrers.Layer(str(descriptor["mediaType"]), data, annotations))
        return referrers.Artifact(kind, str(body.get("artifactType")), tuple(layers),
                                  string_map(body.get("annotations"))) if layers else None
    except (UntrustedAnswer, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


# -- load ------------------------------------------------------------------------------
def check(entry: SavedEntry, public: ec.EllipticCurvePublicKey) -> verify.Check:
    """Whether an archive vouches for the image of `entry` (its image ID is its
    config digest) with `public`: a saved signature whose Simple Signing payload
    names the sha256 of the saved manifest and verifies with the key, that
    manifest's config descriptor is the image ID, and the repository the
    payload names (its path; the host may differ) is the one every tag of the
    entry is in: the index is not signed, so it cannot move the image."""
    why = "the archive holds no signature of it (save it from a manifest with signing.public_key, after a " \
          "signed push)"
    repositories = sorted({repository_name(r) for r in (*entry.references, *entry.publish)})
    if len(repositories) != 1:
        return verify.Check("signature", False, f"its tags are in several repositories ({', '.join(repositories)}); "
                                                "a signature vouches for one")
    digest = digest_of(entry.manifest) if entry.manifest is not None else ""
    for payload, signature in [s for a in entry.attached if not a.of_index for s in a.signatures()]:
        problem = check_payload(payload, signature, public, digest)
        if problem is None:
            config, signed_in = _config_of(entry.manifest or b""), _repository_of(payload)
            if config == entry.image_id and signed_in == repositories[0]:
                return verify.Check("signature", True, f"cosign signature of {digest[:19]} verifies with the key")
            problem = f"the manifest it signs is of image {str(config)[:19]}, not {entry.image_id[:19]}" \
                if config != entry.image_id else \
                f"it is for repository {signed_in}, and the archive's index puts the image in {repositories[0]}"
        why = f"a saved signature of {digest[:19]} does not hold: {problem}"
    return verify.Check("signature", False, why)


def _repository_of(payload: bytes) -> str | None:
    """The repository path (without its host) a Simple Signing payload names."""
    try:
        named = json.loads(payload)["critical"]["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return repository_name(named) if isinstance(named, str) else None


def _config_of(manifest: bytes) -> str | None:
    try:
        return str(json.loads(manifest)["config"]["digest"])
    except (ValueError, KeyError, TypeError):
        return None


def carry(pusher: Pusher, results: Iterable[ImageResult], entries: Iterable[SavedEntry],
          public: ec.EllipticCurvePublicKey) -> list[str]:
    """After `load --push`: attach each published image's saved artifacts to the
    manifest now in the registry (and its index's signatures to the index), when
    it is the one they refer to (the same bytes, so the same digest), in the form
    `vouched` gives. Notes for the report: what could not go along (one per
    artifact; one the registry refuses does not keep the others back)."""
    saved = {entry.name: entry for entry in entries}
    notes = []
    for result in results:
        entry = saved.get(result.name)
        if not result.pushed or entry is None or not entry.attached:
            continue
        try:
            subject = pusher.subject(result, result.platform)
            whole = pusher.subject(result, None) if result.platform is not None else None
        except JavabaseError as exc:
            notes.append(f"{result.name}: what refers to it was not carried: {exc}")
            continue
        for item in entry.attached:
            notes += _carry_one(pusher, result, entry, item, whole if item.of_index else subject, public)
    return notes


def _carry_one(pusher: Pusher, result: ImageResult, entry: SavedEntry, item: SavedArtifact,
               target: referrers.Descriptor | None, public: ec.EllipticCurvePublicKey) -> list[str]:
    """Attach one saved artifact to `target`; the note when it did not go (whole)."""
    was, kind = (entry.index if item.of_index else entry.manifest), item.artifact.kind
    if target is None or was is None or digest_of(was) != target.digest:
        return [f"{result.name}: its {kind} was not carried: the {'index' if item.of_index else 'manifest'} pushed "
                f"({target.digest[:19] if target else 'none'}) is not the one it refers to"]
    form = vouched(item.artifact, target.digest, entry.image_id, public)
    if form is None:
        return [f"{result.name}: its {kind} was not carried: it is not all vouched for (signed with the key for "
                f"{target.digest[:19]}, of this image)"]
    try:
        _attach(pusher, result, form, target)
    except JavabaseError as exc:
        return [f"{result.name}: its {kind} was not carried whole: {exc}"]
    return []


def vouched(artifact: referrers.Artifact, digest: str, image_id: str, public: ec.EllipticCurvePublicKey
            ) -> referrers.Artifact | None:
    """The artifact as it may be attached to the manifest `digest` of the image
    `image_id`, built from only what is vouched for, or None when it is not all
    vouched for: a signature's layers must each be a Simple Signing payload that
    verifies with `public` for `digest` (only its signature annotation goes
    along); a provenance's, each a DSSE envelope that opens with `public` and
    names `digest` as a subject (its annotations name the predicate type the
    statement has); an SBOM, one SPDX JSON document whose documentNamespace
    ends with `image_id` (javabase.release.sbom's form: an SBOM is not signed,
    so it must at least be this image's)."""
    if artifact.kind == "sig":
        return _vouched_signature(artifact, digest, public)
    if artifact.kind == "att":
        return _vouched_provenance(artifact, digest, public)
    if artifact.kind == "sbom" and len(artifact.layers) == 1 and artifact.layers[0].media_type == SBOM_TYPE \
            and _sbom_names(artifact.layers[0].data, image_id):
        return sbom.as_artifact(artifact.layers[0].data)
    return None


def _vouched_signature(artifact: referrers.Artifact, digest: str, public: ec.EllipticCurvePublicKey
                       ) -> referrers.Artifact | None:
    found = SavedArtifact(False, artifact).signatures()
    if not found or len(found) != len(artifact.layers) or \
            any(check_payload(p, s, public, digest) is not None for p, s in found):
        return None
    layers = tuple(referrers.Layer(SIMPLE_SIGNING_TYPE, payload, {SIGNATURE_ANNOTATION: signature})
                   for payload, signature in found)
    return referrers.Artifact("sig", SIGNATURE_ARTIFACT, layers)


def _vouched_provenance(artifact: referrers.Artifact, digest: str, public: ec.EllipticCurvePublicKey
                        ) -> referrers.Artifact | None:
    opened = [open_envelope(layer.data, public)[0] if layer.media_type == DSSE_TYPE else None
              for layer in artifact.layers]
    kinds = {str(s.get("predicateType")) for s in opened if s is not None}
    if not opened or len(kinds) != 1 or any(s is None or digest not in slsa.subject_digests(s) for s in opened):
        return None
    [kind] = kinds
    return referrers.Artifact("att", DSSE_TYPE, tuple(referrers.Layer(DSSE_TYPE, layer.data, {"predicateType": kind})
                                                      for layer in artifact.layers),
                              {slsa.PREDICATE_ANNOTATION: kind})


def _sbom_names(document: bytes, image_id: str) -> bool:
    """Whether an SPDX JSON document's documentNamespace ends with /`image_id`."""
    try:
        namespace = json.loads(document).get("documentNamespace")
    except (ValueError, AttributeError, RecursionError):
        return False
    return isinstance(namespace, str) and namespace.endswith(f"/{image_id}")


def _attach(pusher: Pusher, result: ImageResult, artifact: referrers.Artifact, subject: referrers.Descriptor) -> None:
    """One artifact as a referrer of `subject` (a signature or provenance also
    under cosign's tag), unless the same one is there already."""
    name = repository_name(result.references[0])
    wanted = digest_of(referrers.artifact_manifest(artifact, subject))
    if any(d.get("digest") == wanted for d in referrers.referrers(pusher.registry, name, subject.digest)):
        return
    layer = artifact.layers[0] if artifact.kind in ("sig", "att") and len(artifact.layers) == 1 else None
    pusher.attach(result, artifact, subject, cosign_layer=layer)
