"""What can be checked about an image in the registry with the team's public
key: its signature (cosign's Simple Signing, under sha256-<hex>.sig or as a
referrer), its SLSA provenance (a DSSE envelope, under sha256-<hex>.att or as
a referrer: signature, subject, and the input digest it records), and its SBOM
(a referrer of artifactType application/spdx+json). `invoke verify` prints the
checks; a run reuses an image from the registry only when its signature and
provenance check out against the inputs it would build."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from ..decide.rules import Held
from ..errors import RegistryError
from ..manifest.references import repository_name
from ..publish import referrers
from ..publish.oci import digest_of
from ..publish.registry import Registry, UntrustedAnswer
from . import slsa
from .sbom import MEDIA_TYPE as SBOM_TYPE
from .signing import (
    DSSE_TYPE,
    SIGNATURE_ANNOTATION,
    SIGNATURE_ARTIFACT,
    SIMPLE_SIGNING_TYPE,
    check_payload,
    open_envelope,
)


@dataclass(frozen=True)
class Check:
    """One thing verified about a manifest: what, whether it held, and why not."""

    what: str
    ok: bool
    detail: str


def blob(registry: Registry, name: str, digest: str) -> bytes | None:
    """The blob `digest` of repository `name`: its bytes when they hash to `digest`, else None."""
    status, _, body = registry.request("GET", f"/{name}/blobs/{digest}", scope=f"repository:{name}:pull")
    return body if status == 200 and digest_of(body) == digest else None


def _layers(registry: Registry, name: str, manifest_ref: str) -> list[dict[str, object]]:
    """The layer descriptors of a manifest; none when it is missing or not an
    object with a list of them (anyone who can push can list anything)."""
    try:
        there = registry.manifest(name, manifest_ref)
        layers = json.loads(there.body).get("layers") if there is not None else []
    except (UntrustedAnswer, ValueError, AttributeError, RecursionError):
        return []
    return [d for d in layers if isinstance(d, dict)] if isinstance(layers, list) else []


def _candidates(registry: Registry, name: str, digest: str, kind: str, artifact_type: str) -> list[dict[str, object]]:
    """The layers that may hold a signature (attestation) of `digest`: cosign's tag, then referrers."""
    layers = _layers(registry, name, referrers.cosign_tag(digest, kind))
    for found in referrers.referrers(registry, name, digest):
        if found.get("artifactType") == artifact_type:
            layers += _layers(registry, name, str(found.get("digest")))
    return layers


def signatures(registry: Registry, name: str, digest: str, public: ec.EllipticCurvePublicKey
                ) -> Iterator[tuple[bytes, str, str | None]]:
    """Every cosign signature of `digest` found (sha256-<hex>.sig, then referrers):
    (payload, base64 signature, None when it verifies with `public` else why not)."""
    for layer in _candidates(registry, name, digest, "sig", SIGNATURE_ARTIFACT):
        annotations = layer.get("annotations") or {}
        signature = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        if layer.get("mediaType") != SIMPLE_SIGNING_TYPE or not isinstance(signature, str):
            continue
        payload = blob(registry, name, str(layer.get("digest")))
        if payload is None:
            yield b"", signature, "its payload is missing"
        else:
            yield payload, signature, check_payload(payload, signature, public, digest)


def check_signature(registry: Registry, name: str, digest: str, public: ec.EllipticCurvePublicKey) -> Check:
    """Whether a cosign signature of `digest` verifies with `public`."""
    why = "no signature found (sha256-<hex>.sig or a referrer)"
    for _payload, _signature, problem in signatures(registry, name, digest, public):
        if problem is None:
            return Check("signature", True, f"cosign signature of {digest[:19]} verifies with the key")
        why = f"a signature of {digest[:19]} does not hold: {problem}"
    return Check("signature", False, why)


def check_provenance(registry: Registry, name: str, digest: str, public: ec.EllipticCurvePublicKey,
                     expected_input: str | None) -> Check:
    """Whether a SLSA provenance of `digest` is signed with `public`, names `digest`
    as its subject and (when `expected_input` is given) records that input digest."""
    why = "no provenance found (sha256-<hex>.att or a referrer)"
    for layer in _candidates(registry, name, digest, "att", DSSE_TYPE):
        if layer.get("mediaType") != DSSE_TYPE:
            continue
        envelope = blob(registry, name, str(layer.get("digest")))
        stated, problem = open_envelope(envelope, public) if envelope is not None else (None, "it is missing")
        if stated is None:
            why = f"a provenance of {digest[:19]} does not hold: {problem}"
        elif stated.get("predicateType") != slsa.PREDICATE_TYPE:
            why = f"an attestation of {digest[:19]} is not SLSA provenance v1"
        elif digest not in slsa.subject_digests(stated):
            why = f"a provenance names {', '.join(sorted(slsa.subject_digests(stated))) or 'no subject'}, not {digest}"
        elif expected_input is not None and slsa.input_digest(stated) != expected_input:
            why = (f"the provenance of {digest[:19]} records inputs {str(slsa.input_digest(stated))[:19]}, and the "
                   f"manifest now gives {expected_input[:19]}")
        else:
            what = " and records the inputs the manifest gives" if expected_input else ""
            return Check("provenance", True, f"SLSA provenance of {digest[:19]} is signed with the key{what}")
    return Check("provenance", False, why)


def sbom_of(registry: Registry, name: str, digest: str) -> str | None:
    """The manifest digest of the first SPDX SBOM that refers to `digest`, or None."""
    found = [r for r in referrers.referrers(registry, name, digest) if r.get("artifactType") == SBOM_TYPE]
    return str(found[0].get("digest")) if found else None


def check_sbom(registry: Registry, name: str, digest: str) -> Check:
    """Whether an SPDX SBOM refers to `digest`."""
    found = sbom_of(registry, name, digest)
    if found:
        return Check("sbom", True, f"SPDX SBOM {found[:19]} refers to {digest[:19]}")
    return Check("sbom", False, f"no SPDX SBOM refers to {digest[:19]}; a release attaches one with "
                                "`build --push --sbom`")


def trusted(registry: Registry, name: str, digest: str, public: ec.EllipticCurvePublicKey,
            expected_input: str) -> bool:
    """Whether an image in the registry may be reused: its signature and its
    provenance (for these inputs) verify with the team's key. A registry that
    cannot be read says no (the image is built)."""
    try:
        return (check_signature(registry, name, digest, public).ok
                and check_provenance(registry, name, digest, public, expected_input).ok)
    except RegistryError:
        return False


def trust_in(registry: Registry, public: ec.EllipticCurvePublicKey) -> Callable[[str, Held, str], bool]:
    """decide's `trust` for one registry and key: (reference, what its tag holds,
    the run's input digest) -> whether that image may be reused."""
    return lambda reference, there, inputs: trusted(registry, repository_name(reference), there.digest, public,
                                                    inputs)


def verify_image(registry: Registry, name: str, digest: str, public: ec.EllipticCurvePublicKey,
                 expected_input: str | None, label: str) -> list[Check]:
    """Signature, provenance (with the inputs the manifest gives, when known) and
    SBOM of one image manifest; `label` prefixes each check's name."""
    checks = [check_signature(registry, name, digest, public),
              check_provenance(registry, name, digest, public, expected_input),
              check_sbom(registry, name, digest)]
    return [Check(f"{label}{c.what}", c.ok, c.detail) for c in checks]
