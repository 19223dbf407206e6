"""After a run's images are published: what is attached to each, per image and
platform, as referrers of its manifest (javabase.publish.referrers): its SBOM
(--sbom), and with a signing key (--sign) a cosign signature and a signed SLSA
provenance (javabase.release.signing, javabase.release.slsa); a multi-platform
image's index is signed too. An image that already carries a signature (or a
provenance for its inputs) that verifies with the key is not signed again, and
one that an SBOM already refers to gets no second one."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .. import __version__
from ..clock import rfc3339
from ..decide.inputs import Inputs
from ..engine import Backend
from ..errors import JavabaseError
from ..manifest.model import Image
from ..manifest.references import repository_name, split_reference
from ..plan.order import Plan, Unit
from ..plan.render import dockerfile_path
from ..plan.templates import template_hash
from ..publish import referrers
from ..publish.pusher import Pusher
from ..release import sbom, slsa, verify
from ..release.lock import lock_path
from ..release.provenance import Provenance
from ..release.signing import (
    DSSE_TYPE,
    SIGNATURE_ANNOTATION,
    SIGNATURE_ARTIFACT,
    SIMPLE_SIGNING_TYPE,
    Signer,
    simple_signing_payload,
)
from ..report import ImageResult, Status

PREDICATE_ANNOTATION = slsa.PREDICATE_ANNOTATION


@dataclass
class Attester:
    """What a run knows of its images, to describe and sign them."""

    plan: Plan
    rendered: Mapping[str, str]
    inputs: Mapping[str, Inputs]
    provenance: Provenance
    backend: Backend
    pusher: Pusher
    signer: Signer | None
    results: Mapping[str, ImageResult] = field(default_factory=dict)

    def attest(self, results: Mapping[str, ImageResult], sboms: Mapping[str, bytes],
               fail: Callable[[ImageResult, str], None]) -> None:
        """Attach SBOMs, signatures and provenance to every published image;
        `fail(result, reason)` is told of each image whose attachment failed."""
        self.results = results
        indexes: dict[str, ImageResult] = {}
        for result in results.values():
            if result.status not in (Status.PUSHED, Status.UP_TO_DATE, Status.UP_TO_DATE_REGISTRY) or \
                    not result.pushed:
                continue
            try:
                subject = self.pusher.subject(result, result.platform)
                if result.name in sboms:  # one SBOM per image: an image already described keeps its own
                    result.sbom_pushed = verify.sbom_of(self.pusher.registry, repository_name(result.references[0]),
                                                        subject.digest) \
                        or self.pusher.attach(result, sbom.as_artifact(sboms[result.name]), subject)
                if self.signer is not None:
                    self.sign(result, subject, self.signer)
                    if result.platform is not None and not self.pusher.platform_tags:
                        indexes.setdefault(result.image, result)
            except JavabaseError as exc:
                fail(result, str(exc))
        for result in indexes.values():  # a multi-platform image: its index too
            try:
                if self.signer is not None:
                    self.sign(result, self.pusher.subject(result, None), self.signer, provenance=False)
            except JavabaseError as exc:
                fail(result, str(exc))

    def sign(self, result: ImageResult, subject: referrers.Descriptor, signer: Signer,
             provenance: bool = True) -> None:
        """A cosign signature of `subject`, and its SLSA provenance, unless ones that verify are there."""
        name = repository_name(result.references[0])
        registry = self.pusher.registry
        if not verify.check_signature(registry, name, subject.digest, signer.public).ok:
            payload = simple_signing_payload(split_reference(result.references[0])[0], subject.digest)
            _attach_signature(self.pusher, result, subject, payload, base64.b64encode(signer.sign(payload)).decode())
        if not provenance or result.status == Status.UP_TO_DATE_REGISTRY:
            return  # not built here: its provenance is whoever built it's
        if not verify.check_provenance(registry, name, subject.digest, signer.public, result.input_digest).ok:
            envelope = signer.envelope(slsa.statement(self.facts(result, subject.digest)))
            layer = referrers.Layer(DSSE_TYPE, envelope, {"predicateType": slsa.PREDICATE_TYPE})
            artifact = referrers.Artifact("att", DSSE_TYPE, (layer,), {PREDICATE_ANNOTATION: slsa.PREDICATE_TYPE})
            self.pusher.attach(result, artifact, subject, cosign_layer=layer)

    def facts(self, result: ImageResult, digest: str) -> slsa.BuildFacts:
        image = self.plan.image(result.image or result.name)
        inputs = self.inputs[result.name]
        return slsa.BuildFacts(
            repository=split_reference(result.references[0])[0], manifest_digest=digest, image=image.name,
            entry=f"{self.plan.manifest.shown}:{image.line} ({image.key})", platform=result.platform,
            input_digest=inputs.digest, input_parts=inputs.parts,
            dependencies=self.dependencies(image, result), revision=self.provenance.revision,
            started=rfc3339(int(result.started or 0)), finished=rfc3339(int(result.finished or 0)),
            builder={"javabase": __version__, "backend": self.backend.name, "engine": self.backend.version})

    def dependencies(self, image: Image, result: ImageResult) -> tuple[slsa.Dependency, ...]:
        """Every input with its digest: Dockerfile, base (or parent), artifacts, template, lock."""
        out = [slsa.Dependency("Dockerfile", slsa.sha256_hex(self.rendered[dockerfile_path(image)].encode()),
                               f"builds/{dockerfile_path(image)}")]
        base = result.base
        parent = self.plan.parent_unit(Unit(image.name, result.platform))
        parent_id = self.results[parent.key].image_id if parent is not None and parent.key in self.results else None
        if parent_id:
            out.append(slsa.Dependency(f"parent {image.parent}", parent_id.split(":", 1)[1], base.get("name")))
        elif base.get("digest"):
            out.append(slsa.Dependency("base", base["digest"].split(":", 1)[-1], base.get("name")))
        out += [slsa.Dependency(a.filename, a.sha256, a.origin) for a in image.artifacts_for(result.platform)]
        template = template_hash(image.template, self.plan.manifest.templates)
        out.append(slsa.Dependency(f"template {image.template}", template.split(":", 1)[1]))
        lock = lock_path(self.plan.manifest)
        if lock.is_file():
            out.append(slsa.Dependency(lock.name, slsa.sha256_hex(lock.read_bytes())))
        return tuple(out)


def _attach_signature(pusher: Pusher, result: ImageResult, subject: referrers.Descriptor, payload: bytes,
                      signature: str) -> None:
    """A cosign signature of `subject` as a referrer and under sha256-<hex>.sig."""
    layer = referrers.Layer(SIMPLE_SIGNING_TYPE, payload, {SIGNATURE_ANNOTATION: signature})
    pusher.attach(result, referrers.Artifact("sig", SIGNATURE_ARTIFACT, (layer,)), subject, cosign_layer=layer)

