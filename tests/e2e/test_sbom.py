"""What is inside an image: SBOMs made by syft, reproducible, attached to the
pushed image as OCI artifacts; `invoke inspect` reads it all back."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from javabase.cli import common, release

from .conftest import LocalRegistry, Run
from .test_build_push import example_manifest


def test_sboms_are_reproducible_attached_and_inspect_reads_them(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    manifest = workspace(example_manifest(example_files))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    first = build(manifest, push=True, reproducible=True, sbom=True)
    assert first.code == 0, first.out + first.err
    jre = first.result("jre25")
    sbom = json.loads(Path(jre["sbom"]).read_text())
    names = {p["name"]: p.get("versionInfo") for p in sbom["packages"]}
    assert names["openjdk"] == "25.0.2" and "busybox" in names  # the JRE and the root's packages
    assert jre["sbom_packages"] == len(sbom["packages"])
    assert sbom["creationInfo"]["created"] == "2023-11-14T22:13:20Z"

    # attached: an OCI artifact whose subject is the pushed manifest, listed in the referrers tag schema's
    # index (this registry has no referrers API); no cosign-style `.sbom` tag
    digest = next(iter(jre["pushed"].values()))
    listed = registry.reader.manifest(f"{namespace}/jre25", digest.replace(":", "-"))
    assert listed is not None and json.loads(listed.body)["manifests"] == [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": jre["sbom_pushed"],
        "size": json.loads(listed.body)["manifests"][0]["size"], "artifactType": "application/spdx+json"}]
    assert registry.reader.manifest(f"{namespace}/jre25", digest.replace(":", "-") + ".sbom") is None
    attached = registry.reader.manifest(f"{namespace}/jre25", jre["sbom_pushed"])
    assert attached is not None
    artifact = json.loads(attached.body)
    assert artifact["artifactType"] == "application/spdx+json"
    assert artifact["subject"]["digest"] == digest
    _, _, blob = registry.reader.request("GET", f"/{namespace}/jre25/blobs/{artifact['layers'][0]['digest']}",
                                         scope="")
    assert blob == Path(jre["sbom"]).read_bytes()

    # reproducible: the same image gives the same SBOM
    before = Path(jre["sbom"]).read_bytes()
    again = build(manifest, push=True, reproducible=True, sbom=True)
    assert again.code == 0 and again.result("jre25")["image_id"] == jre["image_id"]
    assert Path(again.result("jre25")["sbom"]).read_bytes() == before

    out = io.StringIO()
    reference = f"{registry.host}/{namespace}/jre25:25"
    assert common.run(lambda: release.inspect(reference, str(manifest), "json", out=out)) == 0
    info = json.loads(out.getvalue())
    assert info["image"] == "jre25" and info["entry"].endswith("(images.jre.versions[0])")
    assert info["image_id"] == jre["image_id"] and info["manifest_digest"] == digest
    assert info["input_digest"] == jre["input_digest"] and info["platforms"] == ["linux/amd64"]
    assert info["artifacts"] == [{"source": a["source"], "sha256": a["sha256"]} for a in jre["artifacts"]]
    assert info["sbom_packages"] == jre["sbom_packages"]
