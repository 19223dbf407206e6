"""SLSA provenance v1 (https://slsa.dev/provenance/v1) of one pushed image, as
an in-toto Statement v1 (https://in-toto.io/Statement/v1) whose subject is the
image's manifest digest: what it was built from (the manifest entry, the
rendered Dockerfile, the base image, every artifact, the templates, the lock)
and by what (javabase's version, the backend, the engine's version). Pure;
javabase.release.signing wraps it in a signed DSSE envelope."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"  # an attestation manifest's annotation naming its predicate
BUILD_TYPE = "urn:javabase:build-type:image:v1"  # a URI that names javabase's build; it need not resolve
BUILDER_ID = "urn:javabase:builder"


@dataclass(frozen=True)
class Dependency:
    """A resolved input: a name or URI and its sha256 (hex, without the prefix)."""

    name: str
    sha256: str
    uri: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": {"sha256": self.sha256}}
        if self.uri:
            out["uri"] = self.uri
        return out


@dataclass(frozen=True)
class BuildFacts:
    """What provenance records of one image (one platform of it)."""

    repository: str  # registry/namespace/name
    manifest_digest: str  # the subject: sha256:<hex>
    image: str  # the manifest's name for it
    entry: str  # manifest file:line (key)
    platform: str | None
    input_digest: str
    input_parts: Mapping[str, str]
    dependencies: tuple[Dependency, ...]
    revision: str
    started: str  # RFC 3339
    finished: str
    builder: Mapping[str, str] = field(default_factory=dict)  # javabase, backend, engine versions


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def statement(facts: BuildFacts) -> bytes:
    """The in-toto Statement carrying the SLSA provenance predicate (compact, sorted JSON)."""
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.repository, "digest": {"sha256": facts.manifest_digest.split(":", 1)[1]}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"image": facts.image, "entry": facts.entry, "platform": facts.platform,
                                       "revision": facts.revision},
                "internalParameters": {"inputDigest": facts.input_digest, "inputs": dict(facts.input_parts)},
                "resolvedDependencies": [d.as_json() for d in facts.dependencies],
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": dict(facts.builder)},
                "metadata": {"startedOn": facts.started, "finishedOn": facts.finished},
            },
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def subject_digests(stated: Mapping[str, Any]) -> set[str]:
    """The sha256:<hex> digests a Statement names as its subjects."""
    out = set()
    for subject in stated.get("subject") or []:
        if isinstance(subject, dict) and isinstance(subject.get("digest"), dict):
            value = subject["digest"].get("sha256")
            if isinstance(value, str):
                out.add(f"sha256:{value}")
    return out


def input_digest(stated: Mapping[str, Any]) -> str | None:
    """The javabase input digest a provenance Statement records, or None."""
    try:
        value = stated["predicate"]["buildDefinition"]["internalParameters"]["inputDigest"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None
