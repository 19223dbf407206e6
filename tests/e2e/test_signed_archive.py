"""A signed release carried air-gapped: `save` keeps the cosign signature of
each image's manifest (as the registry held it) in the archive's index, and
`load --key` loads only what the team's key vouches for, then carries the
signatures to the registry it pushes to. On the real engine and registry; the
signatures at the second registry are read back by hand (plain HTTP,
`cryptography`)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from docker import APIClient as Engine

from javabase.cli import common, release

from .conftest import LocalRegistry, Run, remove_images, running_registry, spare_engine
from .test_field_registries import tiny
from .test_signing import ANNOTATION, Team, get, team  # noqa: F401 - `team` is a fixture

PLATFORMS = ("tiny@linux/amd64", "tiny@linux/arm64")


def with_index(archive: Path, dest: Path, edit: Callable[[list[dict[str, Any]]], None]) -> Path:
    """The archive with its javabase-index.json's image entries changed by `edit`,
    as anyone who can write the file could: every other member is unchanged."""
    with tarfile.open(archive) as source, tarfile.open(dest, "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name == "javabase-index.json":
                index = json.loads(data)
                edit(index["images"])
                data = json.dumps(index).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return dest


def load(archive: Path, key: Path, registry: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = common.run(lambda: release.load(str(archive), push=True, registry=registry, key=str(key), out=out),
                      err=err)
    return code, out.getvalue(), err.getvalue()


def test_load_with_the_key_loads_only_signed_images_and_carries_their_signatures(
    engine: Engine, registry: LocalRegistry, workspace: Callable[[str], Path], build: Callable[..., Run],
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 - the fixture
) -> None:
    manifest = tiny(workspace)
    manifest.write_text(manifest.read_text().replace("images:", "signing:\n  public_key: cosign.pub\nimages:", 1))
    public = team.key.public_key()
    key = manifest.parent / "cosign.pub"
    key.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True, sign=True, sbom=True)
    assert run.code == 0, run.out + run.err
    ids = {name: run.result(name)["image_id"] for name in PLATFORMS}

    archive = tmp_path / "release.tar"
    out = io.StringIO()
    assert common.run(lambda: release.save(str(manifest), [], str(archive), registry.host, out=out)) == 0
    said = [line for line in out.getvalue().splitlines() if line.startswith("signed ")]
    assert [line.split(" sha256:")[0] for line in said] == [f"signed {n}: saved" for n in PLATFORMS], said
    assert all(line.endswith(" with its att, sbom, sig") for line in said), said

    def copied(images: list[dict[str, Any]]) -> None:  # amd64 carries arm64's manifest and (good) signature
        images[0]["manifest"], images[0]["attached"] = images[1]["manifest"], images[1]["attached"]

    def flipped(images: list[dict[str, Any]]) -> None:
        [layer] = next(a for a in images[1]["attached"] if a["kind"] == "sig")["layers"]
        signature = bytearray(base64.b64decode(layer["annotations"][ANNOTATION]))
        signature[-1] ^= 0x01
        layer["annotations"][ANNOTATION] = base64.b64encode(bytes(signature)).decode()

    def unsigned(images: list[dict[str, Any]]) -> None:
        images[0]["attached"] = []

    def moved(images: list[dict[str, Any]]) -> None:  # amd64, signed as tiny, put under another image's tags
        for key in ("references", "publish"):
            images[0][key] = [reference.replace("/tiny:", "/other:") for reference in images[0][key]]

    with tarfile.open(archive) as tar:
        index_entries = json.loads(tar.extractfile("javabase-index.json").read())["images"]  # type: ignore[union-attr]
    saved = {entry["name"]: "sha256:" + hashlib.sha256(base64.b64decode(entry["manifest"])).hexdigest()
             for entry in index_entries}
    assert {entry["name"]: sorted(a["kind"] + "@" + a["of"] for a in entry["attached"]) for entry in index_entries} == {
        name: ["att@manifest", "sbom@manifest", "sig@index", "sig@manifest"] for name in PLATFORMS}
    amd64, arm64 = PLATFORMS
    expected = {  # what is wrong with which image
        "copied": (amd64, f"a saved signature of {saved[arm64][:19]} does not hold: the manifest it signs is of "
                          f"image {ids[arm64][:19]}, not {ids[amd64][:19]}"),
        "flipped": (arm64, f"a saved signature of {saved[arm64][:19]} does not hold: its signature does not verify "
                           "with the key"),
        "unsigned": (amd64, "the archive holds no signature of it (save it from a manifest with signing.public_key, "
                            "after a signed push)"),
        "moved": (amd64, f"a saved signature of {saved[amd64][:19]} does not hold: it is for repository "
                         f"{namespace}/tiny, and the archive's index puts the image in {namespace}/other")}
    forged = {how.__name__: with_index(archive, tmp_path / f"{how.__name__}.tar", how)
              for how in (copied, flipped, unsigned, moved)}
    with running_registry(tmp_path / "second") as second, spare_engine() as empty:
        monkeypatch.setenv("DOCKER_HOST", empty.host)
        for how, path in forged.items():
            code, out_text, err = load(path, key, second.host)
            name, detail = expected[how]
            assert code == 16, out_text + err
            assert [line for line in out_text.splitlines() if line.startswith("FAIL")] == [
                f"FAIL  {name} {ids[name][7:19]}: {detail}"], (how, out_text)
            assert err == (f"error: {path}: 1 of 2 image(s) are not signed with the key; first: {name}: {detail}. "
                           "Nothing was loaded\n"), err
            assert empty.api.images(all=True) == [], how  # nothing reached the engine
        assert second.reader.tags(f"{namespace}/tiny") == second.reader.tags(f"{namespace}/other") == []

        code, out_text, err = load(archive, key, second.host)
        assert (code, err) == (0, ""), out_text + err
        assert [line for line in out_text.splitlines() if line.startswith("ok")] == [
            f"ok    {name} {ids[name][7:19]}: cosign signature of {saved[name][:19]} verifies with the key"
            for name in PLATFORMS]
        index = json.loads(get(second, f"/{namespace}/tiny/manifests/1"))
        assert sorted(m["digest"] for m in index["manifests"]) == sorted(saved.values())  # the manifests signed
        for child in index["manifests"]:  # each platform's signature, where cosign looks, at the second registry
            hexdigest = child["digest"].split(":")[1]
            sig = json.loads(get(second, f"/{namespace}/tiny/manifests/sha256-{hexdigest}.sig"))
            [layer] = sig["layers"]
            payload = get(second, f"/{namespace}/tiny/blobs/{layer['digest']}")
            public.verify(base64.b64decode(layer["annotations"][ANNOTATION]), payload, ec.ECDSA(hashes.SHA256()))
            assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == child["digest"]
        # the second site checks the image as the first one could: index signature, and per platform
        # signature, provenance and SBOM, all carried (no manifest here: the inputs are not compared)
        verified = io.StringIO()
        reference = f"{second.host}/{namespace}/tiny:1"
        assert common.run(lambda: release.verify(reference, str(key), None, out=verified)) == 0, verified.getvalue()
        assert [line.split(":")[0] for line in verified.getvalue().splitlines()[1:]] == [
            "  ok    signature", *[f"  ok    {p.split('@')[1]} {what}" for p in PLATFORMS
                                   for what in ("signature", "provenance", "sbom")]]
    remove_images(engine, f"{second.host}/")
