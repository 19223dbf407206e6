"""Signed and attested on the real registry: every pushed image carries a
cosign signature, a DSSE-signed SLSA provenance and its SBOM, listed in the
`sha256-<hex>` referrers index (Distribution has no referrers API); each is
read back here by hand (plain HTTP, OCI JSON, `cryptography`, the DSSE PAE)
rather than through javabase. Forged and tampered images are refused by
`verify` and not reused by the next run."""

from __future__ import annotations

import base64
import io
import json
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from docker import APIClient as Engine

from javabase.cli import common, release
from javabase.errors import Exit

from .conftest import LocalRegistry, Run, remove_images
from .test_build_push import example_manifest

SIG_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
SPDX_TYPE = "application/spdx+json"
ANNOTATION = "dev.cosignproject.cosign/signature"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
FIRST_TAG = {"glibc-root": "1", "jre25": "25", "jre25-slim": "25", "app-base": "1"}


@dataclass
class Team:
    key: ec.EllipticCurvePrivateKey
    pem: str

    @property
    def canary(self) -> str:
        """A line from the middle of the private key: it must appear nowhere."""
        return self.pem.splitlines()[2]


@pytest.fixture
def team(monkeypatch: pytest.MonkeyPatch) -> Team:
    key = ec.generate_private_key(ec.SECP256R1())
    password = b"correct horse battery staple"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(password)).decode()
    monkeypatch.setenv("JAVABASE_SIGNING_KEY", pem)  # as a CI secret is given: the PEM itself
    monkeypatch.setenv("JAVABASE_SIGNING_KEY_PASSWORD", password.decode())
    return Team(key, pem)


def signed_manifest(workspace: Callable[[str], Path], example_files: Path, team: Team) -> Path:
    text = example_manifest(example_files).replace("\ndefaults:", "\nsigning:\n  public_key: keys/cosign.pub\n\n"
                                                   "defaults:", 1)
    # this test's images only: another test's root of the same inputs would be reused from the engine
    manifest = workspace(text.replace("  labels:\n", f"  labels:\n    org.example.test: {secrets.token_hex(8)}\n", 1))
    (manifest.parent / "keys").mkdir()
    (manifest.parent / "keys" / "cosign.pub").write_bytes(team.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return manifest


def get(registry: LocalRegistry, path: str, accept: str = f"{MANIFEST}, {INDEX}") -> bytes:
    """GET /v2`path` from the registry over plain HTTP, as any OCI client would."""
    request = urllib.request.Request(f"http://{registry.host}/v2{path}", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return bytes(answer.read())


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def read_by_hand(registry: LocalRegistry, repository: str, digest: str, public: ec.EllipticCurvePublicKey
                 ) -> dict[str, Any]:
    """Check what the registry holds for `digest` without javabase; the provenance Statement."""
    hexdigest = digest.split(":")[1]
    index = json.loads(get(registry, f"/{repository}/manifests/sha256-{hexdigest}", INDEX))
    assert index["mediaType"] == INDEX
    listed = sorted(m["artifactType"] for m in index["manifests"])
    assert listed == sorted([SPDX_TYPE, DSSE_TYPE, SIG_TYPE]), listed  # each once
    for entry in index["manifests"]:
        artifact = json.loads(get(registry, f"/{repository}/manifests/{entry['digest']}"))
        assert artifact["subject"]["digest"] == digest and artifact["artifactType"] == entry["artifactType"]
    # cosign's own places: sha256-<hex>.sig and .att
    sig = json.loads(get(registry, f"/{repository}/manifests/sha256-{hexdigest}.sig"))
    [layer] = sig["layers"]
    payload = get(registry, f"/{repository}/blobs/{layer['digest']}")
    public.verify(base64.b64decode(layer["annotations"][ANNOTATION]), payload, ec.ECDSA(hashes.SHA256()))
    simple = json.loads(payload)
    assert simple["critical"]["image"]["docker-manifest-digest"] == digest
    assert simple["critical"]["identity"]["docker-reference"] == f"{registry.host}/{repository}"
    assert simple["critical"]["type"] == "cosign container image signature"
    att = json.loads(get(registry, f"/{repository}/manifests/sha256-{hexdigest}.att"))
    [layer] = att["layers"]
    assert layer["mediaType"] == DSSE_TYPE
    envelope = json.loads(get(registry, f"/{repository}/blobs/{layer['digest']}"))
    statement = base64.b64decode(envelope["payload"])
    public.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae(envelope["payloadType"], statement),
                  ec.ECDSA(hashes.SHA256()))
    stated: dict[str, Any] = json.loads(statement)
    assert stated["predicateType"] == "https://slsa.dev/provenance/v1"
    assert stated["subject"][0]["digest"] == {"sha256": hexdigest}
    return stated


def verify(reference: str, manifest: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = common.run(lambda: release.verify(reference, None, str(manifest), out=out), err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_signed_push_is_verified_by_hand_and_by_verify_and_the_key_is_nowhere(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], team: Team, tmp_path: Path,
) -> None:
    manifest = signed_manifest(workspace, example_files, team)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True, sign=True, sbom=True)
    assert run.code == 0, run.out + run.err
    public = team.key.public_key()
    for name, tag in FIRST_TAG.items():
        digest = run.result(name)["pushed"][f"{registry.host}/{namespace}/{name}:{tag}"]
        stated = read_by_hand(registry, f"{namespace}/{name}", digest, public)
        definition = stated["predicate"]["buildDefinition"]
        assert definition["internalParameters"]["inputDigest"] == run.result(name)["input_digest"]
        names = [d["name"] for d in definition["resolvedDependencies"]]
        template = {"glibc-root": "rootfs", "app-base": "layer"}.get(name, "jre")
        assert names[0] == "Dockerfile" and f"template {template}" in names, names
        code, out, err = verify(f"{registry.host}/{namespace}/{name}:{tag}", manifest)
        assert (code, err) == (0, ""), out + err
        assert out.splitlines() == [
            f"{registry.host}/{namespace}/{name}:{tag}: {digest}",
            f"  ok    signature: cosign signature of {digest[:19]} verifies with the key",
            f"  ok    provenance: SLSA provenance of {digest[:19]} is signed with the key and records the inputs "
            "the manifest gives",
            f"  ok    sbom: SPDX SBOM {out.split('SPDX SBOM ')[1][:19]} refers to {digest[:19]}"]
    jre = run.result("jre25")
    stated = read_by_hand(registry, f"{namespace}/jre25", jre["pushed"][f"{registry.host}/{namespace}/jre25:25"],
                          public)
    dependencies = {d["name"]: d for d in stated["predicate"]["buildDefinition"]["resolvedDependencies"]}
    [tarball] = jre["artifacts"]
    assert dependencies[Path(tarball["source"]).name]["digest"] == {"sha256": tarball["sha256"]}
    assert dependencies["parent glibc-root"]["digest"] == {
        "sha256": run.result("glibc-root")["image_id"].split(":")[1]}

    # inspect shows what refers to the image and the same checks
    out = io.StringIO()
    assert common.run(lambda: release.inspect(f"{registry.host}/{namespace}/jre25:25", str(manifest), "json",
                                              out=out)) == 0
    info = json.loads(out.getvalue())
    assert sorted(r["artifact_type"] for r in info["referrers"]) == sorted([SPDX_TYPE, DSSE_TYPE, SIG_TYPE])
    assert [(c["what"], c["ok"]) for c in info["checks"]] == [("signature", True), ("provenance", True),
                                                              ("sbom", True)]

    # again: nothing is signed twice, nothing is listed twice
    again = build(manifest, push=True, sign=True, sbom=True)
    assert again.code == 0 and set(again.statuses().values()) == {"up-to-date"}, again.out
    for name, tag in FIRST_TAG.items():
        read_by_hand(registry, f"{namespace}/{name}", run.result(name)["pushed"][
            f"{registry.host}/{namespace}/{name}:{tag}"], public)

    # the private key is in no output, report, log, SBOM, build context or image
    seen = [run.out, run.err, again.out, again.err, json.dumps(run.report)]
    seen += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".gz"]
    assert not [text for text in seen if team.canary in text or "BEGIN ENCRYPTED PRIVATE KEY" in text]
    image = engine.inspect_image(f"{registry.host}/{namespace}/app-base:1")
    assert team.canary not in json.dumps(image) and team.canary not in json.dumps(engine.history(image["Id"]))
    assert not contains(engine.get_image(f"{registry.host}/{namespace}/app-base:1"), team.canary.encode())


def contains(stream: Iterator[bytes], needle: bytes) -> bool:
    tail = b""
    for chunk in stream:
        if needle in tail + chunk:
            return True
        tail = chunk[-len(needle):]
    return False


def replace_referrer(registry: LocalRegistry, repository: str, digest: str, kind: str,
                     layer: dict[str, Any], blob: bytes) -> None:
    """Put `layer` (with its blob) in place of every `kind` artifact of `digest`:
    under cosign's tag and as the one such referrer in the fallback index, as
    someone with push rights could."""
    reader = registry.reader
    reader.upload_blob(repository, layer["digest"], lambda: blob)
    empty = b"{}"
    reader.upload_blob(repository, "sha256:" + hashlib_hex(empty), lambda: empty)
    artifact_type = SIG_TYPE if kind == "sig" else DSSE_TYPE
    hexdigest = digest.split(":")[1]
    subject = {"mediaType": MANIFEST, "digest": digest, "size": len(get(registry, f"/{repository}/manifests/{digest}"))}
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": artifact_type,
                       "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                  "digest": "sha256:" + hashlib_hex(empty), "size": 2},
                       "layers": [layer], "subject": subject}).encode()
    artifact = reader.put_manifest(repository, "sha256:" + hashlib_hex(body), body, MANIFEST)
    index = json.loads(get(registry, f"/{repository}/manifests/sha256-{hexdigest}", INDEX))
    index["manifests"] = [m for m in index["manifests"] if m["artifactType"] != artifact_type] + [
        {"mediaType": MANIFEST, "digest": artifact, "size": len(body), "artifactType": artifact_type}]
    reader.put_manifest(repository, f"sha256-{hexdigest}", json.dumps(index).encode(), INDEX)
    cosign = json.loads(get(registry, f"/{repository}/manifests/sha256-{hexdigest}.{kind}"))
    cosign["layers"] = [layer]
    reader.put_manifest(repository, f"sha256-{hexdigest}.{kind}", json.dumps(cosign).encode(), MANIFEST)


def hashlib_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def forge(engine: Engine, registry: LocalRegistry, namespace: str) -> str:
    """Someone else's image under jre25's tags: FROM the real root, with every
    label of the real jre25 copied and a LABEL as its last step, as javabase's are."""
    real = engine.inspect_image(f"{registry.host}/{namespace}/jre25:25")
    labels = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(real["Config"]["Labels"].items()))
    user = real["Config"]["User"]  # the root image runs as a non-root user; the forger writes as root
    dockerfile = (f"FROM {registry.host}/{namespace}/glibc-root:1\nUSER root\nRUN echo mine > /opt/forged\n"
                  f"USER {user}\nLABEL {labels}\n").encode()
    for line in engine.build(fileobj=io.BytesIO(dockerfile), tag=f"{registry.host}/{namespace}/jre25:25",
                             network_mode="none", rm=True, forcerm=True, decode=True):
        assert "error" not in line, line
    for tag in ("25", "25.0.2"):
        engine.tag(f"{registry.host}/{namespace}/jre25:25", f"{registry.host}/{namespace}/jre25", tag)
        for line in engine.push(f"{registry.host}/{namespace}/jre25", tag=tag, stream=True, decode=True):
            assert "error" not in line, line
    forged = registry.reader.manifest_digest(f"{namespace}/jre25", "25")
    assert forged is not None
    return forged


def refused(registry: LocalRegistry, namespace: str, name: str, tags: tuple[str, ...]) -> str:
    return ("build: no image in the engine or the registry with these inputs is what javabase builds ("
            + "; ".join(f"{registry.host}/{namespace}/{name}:{tag}: its signature or provenance does not verify "
                        "with the team's key" for tag in tags) + ")")


def test_forged_and_tampered_images_are_refused_by_verify_and_rebuilt_not_reused(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], team: Team,
) -> None:
    manifest = signed_manifest(workspace, example_files, team)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    first = build(manifest, push=True, sbom=True)  # signing.public_key in the manifest: every push is signed
    assert first.code == 0, first.out + first.err

    def published(run: Run) -> dict[str, str]:
        return {name: run.result(name)["pushed"].get(f"{registry.host}/{namespace}/{name}:{tag}") or
                registry.reader.manifest_digest(f"{namespace}/{name}", tag) for name, tag in FIRST_TAG.items()}

    pushed = published(first)

    # a provenance for another digest: jre25-slim given glibc-root's (validly signed) provenance
    att = json.loads(get(registry, f"/{namespace}/glibc-root/manifests/sha256-{pushed['glibc-root'][7:]}.att"))
    envelope = get(registry, f"/{namespace}/glibc-root/blobs/{att['layers'][0]['digest']}")
    replace_referrer(registry, f"{namespace}/jre25-slim", pushed["jre25-slim"], "att", att["layers"][0], envelope)
    code, out, _ = verify(f"{registry.host}/{namespace}/jre25-slim:25", manifest)
    assert code == Exit.UNVERIFIED
    assert out.splitlines()[1:3] == [
        f"  ok    signature: cosign signature of {pushed['jre25-slim'][:19]} verifies with the key",
        f"  FAIL  provenance: a provenance names {pushed['glibc-root']}, not {pushed['jre25-slim']}"]

    # someone else's image under jre25's tags, its labels copied
    forged = forge(engine, registry, namespace)
    code, out, err = verify(f"{registry.host}/{namespace}/jre25:25", manifest)
    assert code == Exit.UNVERIFIED and out.splitlines()[1] == (
        "  FAIL  signature: no signature found (sha256-<hex>.sig or a referrer)")
    assert err.strip().splitlines()[-1].startswith(f"error: {registry.host}/{namespace}/jre25:25: 3 of 3 checks "
                                                   "failed; first: signature: no signature found")

    # a runner without the images: the root is reused from the registry, the two refused are built
    remove_images(engine, f"{registry.host}/{namespace}/")
    again = build(manifest, push=True, sbom=True)
    assert again.code == 0, again.out + again.err
    assert again.statuses() == {"glibc-root": "up-to-date (registry)", "jre25": "pushed", "jre25-slim": "pushed",
                                "app-base": "pushed"}, again.out + json.dumps(engine.images(all=True), indent=1)
    assert again.result("jre25")["built_because"] == refused(registry, namespace, "jre25", ("25", "25.0.2"))
    assert again.result("jre25-slim")["built_because"] == refused(registry, namespace, "jre25-slim",
                                                                  ("25", "25.0.2-slim"))
    assert registry.reader.manifest_digest(f"{namespace}/jre25", "25") != forged
    pushed = published(again)

    # a tampered signature: app-base's, over the right payload by another key
    stranger = ec.generate_private_key(ec.SECP256R1())
    sig = json.loads(get(registry, f"/{namespace}/app-base/manifests/sha256-{pushed['app-base'][7:]}.sig"))
    layer = sig["layers"][0]
    payload = get(registry, f"/{namespace}/app-base/blobs/{layer['digest']}")
    layer["annotations"][ANNOTATION] = base64.b64encode(stranger.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    replace_referrer(registry, f"{namespace}/app-base", pushed["app-base"], "sig", layer, payload)
    code, out, _ = verify(f"{registry.host}/{namespace}/app-base:1", manifest)
    assert code == Exit.UNVERIFIED
    assert out.splitlines()[1] == (f"  FAIL  signature: a signature of {pushed['app-base'][:19]} does not hold: its "
                                   "signature does not verify with the key")
    remove_images(engine, f"{registry.host}/{namespace}/")
    third = build(manifest, push=True, sbom=True)
    assert third.code == 0, third.out + third.err
    assert third.statuses() == {"glibc-root": "up-to-date (registry)", "jre25": "up-to-date (registry)",
                                "jre25-slim": "up-to-date (registry)", "app-base": "pushed"}
    assert third.result("app-base")["built_because"] == refused(registry, namespace, "app-base", ("1",))
    for name, tag in FIRST_TAG.items():
        code, out, err = verify(f"{registry.host}/{namespace}/{name}:{tag}", manifest)
        assert code == 0, out + err
