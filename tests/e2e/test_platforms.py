"""One reference, every platform, on the real engine: the offline example built
for linux/amd64 and linux/arm64 (arm64 under qemu-user-static), pushed as one
OCI index per tag, read back, and pulled per platform."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from docker import APIClient as Engine

from javabase.cli import common, ship

from .conftest import EXAMPLE, FileServer, LocalRegistry, Run, remove_images


@pytest.fixture(scope="session")
def multi_files(tmp_path_factory: pytest.TempPathFactory, file_server: FileServer, example_files: Path) -> Path:
    """The example for two platforms, with the single-platform example's company CA
    (prepare.py keeps a CA it finds), which the workspace links next to every manifest."""
    import sys

    sys.path.insert(0, str(EXAMPLE))
    try:
        from prepare import prepare  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    out = tmp_path_factory.mktemp("multi")
    (out / "files").mkdir()
    os.link(example_files / "files" / "company-ca.crt", out / "files" / "company-ca.crt")
    prepare(out, file_server.url, arm64=True)
    for tarball in (out / "files").glob("OpenJDK-*.tar.gz"):
        if not (file_server.root / tarball.name).exists():
            os.link(tarball, file_server.root / tarball.name)
    return out


def test_both_platforms_behind_one_tag(
    engine: Engine, registry: LocalRegistry, multi_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run],
) -> None:
    manifest = workspace((multi_files / "images.yaml").read_text())
    for name in ("glibc-rootfs-arm64.tar.gz",):
        os.link(multi_files / "files" / name, manifest.parent / "files" / name)
    run = build(manifest, push=True)
    assert run.code == 0, run.out + run.err
    namespace = workspace.namespace  # type: ignore[attr-defined]
    units = {i["name"]: i for i in run.report["images"]}
    assert set(units) == {f"{n}@linux/{a}" for n in ("glibc-root", "jre25", "jre25-slim", "app-base")
                          for a in ("amd64", "arm64")}

    # The index under each tag names each platform's manifest, whose config is that platform's image.
    status, _, body = registry.reader.request("GET", f"/{namespace}/app-base/manifests/1", scope="",
                                              accept="application/vnd.oci.image.index.v1+json")
    assert status == 200
    index = json.loads(body)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
    assert sorted(platforms) == ["linux/amd64", "linux/arm64"]
    for platform, digest in platforms.items():
        child = registry.reader.manifest(f"{namespace}/app-base", digest)
        assert child is not None and child.config_digest == units[f"app-base@{platform}"]["image_id"]
        _, _, config = registry.reader.request("GET", f"/{namespace}/app-base/blobs/{child.config_digest}", scope="")
        assert json.loads(config)["architecture"] == platform.split("/")[1]

    # Each file once: one ADD per artifact, and each platform's image has one layer per
    # layer-making instruction on top of its parent's.
    dockerfile = (manifest.parent / "builds" / "jre25" / "Dockerfile").read_text()
    assert dockerfile.count("ADD OpenJDK-jre-25.0.2.tar.gz ") == 1
    steps = sum(1 for line in dockerfile.splitlines() if line.startswith(("ADD ", "COPY ", "RUN ")))
    for platform in ("linux/amd64", "linux/arm64"):
        root = engine.inspect_image(units[f"glibc-root@{platform}"]["image_id"])["RootFS"]["Layers"]
        jre = engine.inspect_image(units[f"jre25@{platform}"]["image_id"])["RootFS"]["Layers"]
        assert jre[:len(root)] == root and len(jre) == len(root) + steps, (platform, len(root), len(jre), steps)

    # java runs in the arm64 image, under emulation.
    reference = f"{registry.host}/{namespace}/jre25:25"
    container = engine.create_container(f"{reference}-linux-arm64", command=["sh", "-c", "uname -m; java -version"],
                                        host_config=engine.create_host_config(network_mode="none"),
                                        platform="linux/arm64")
    try:
        engine.start(container)
        engine.wait(container, timeout=120)
        output = engine.logs(container, stdout=True, stderr=True).decode()
    finally:
        engine.remove_container(container, force=True)
    assert output.startswith("aarch64\n") and 'openjdk version "25' in output

    # Pulling the tag for each platform gets that platform's manifest.
    for platform in platforms:
        engine.pull(f"{registry.host}/{namespace}/app-base", tag="1", platform=platform)
        pulled = engine.inspect_image(f"{registry.host}/{namespace}/app-base:1")
        assert f"{pulled['Os']}/{pulled['Architecture']}" == platform
        assert pulled["Id"] == units[f"app-base@{platform}"]["image_id"]

    again = build(manifest, push=True)
    assert again.code == 0 and {i["status"] for i in again.report["images"]} == {"up-to-date"}

    # `invoke push` of what build-all --push pushed: the same index, nothing moves, exit 0.
    published = {n: registry.reader.manifest_digest(f"{namespace}/{n}", t) for n, t in
                 (("glibc-root", "1"), ("jre25", "25.0.2"), ("jre25-slim", "25.0.2-slim"), ("app-base", "1"))}
    out, err = io.StringIO(), io.StringIO()
    report = manifest.parent / "push-report.json"
    code = common.run(lambda: ship.push(str(manifest), [], registry=registry.host, report=str(report), out=out),
                      err=err)
    assert code == 0, out.getvalue() + err.getvalue()
    pushed = json.loads(report.read_text())
    assert (pushed["ok"], pushed["exit_code"]) == (True, 0)
    assert {i["status"] for i in pushed["images"]} == {"up-to-date"}
    assert out.getvalue().rstrip().endswith(f"nothing pushed to {registry.host}: every tag already held its image")
    assert {n: registry.reader.manifest_digest(f"{namespace}/{n}", t) for n, t in
            (("glibc-root", "1"), ("jre25", "25.0.2"), ("jre25-slim", "25.0.2-slim"), ("app-base", "1"))} == published
    remove_images(engine, f"{registry.host}/{namespace}/")
