"""Reproducible releases on the real engine and registry: identical images on
rebuild, the lock and --frozen, immutable tags."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from docker import APIClient as Engine

from javabase.cli import common, define, ship
from javabase.plan.render import render_all

from .conftest import LocalRegistry, Run, remove_images, running_registry
from .test_build_push import ROOT_ONLY, example_manifest, rootfs

EPOCH = "1700000000"


def digests(registry: LocalRegistry, run: Run) -> dict[str, str]:
    out = {}
    for item in run.report["images"]:
        for reference in item["references"]:
            repository, tag = reference.rsplit(":", 1)
            name = repository.split("/", 1)[1]
            out[f"{name}:{tag}"] = registry.reader.manifest_digest(name, tag) or "missing"
    return out


def test_rebuilding_gives_the_same_images_and_a_changed_byte_changes_only_its_image(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    app = tmp_path / "app.txt"
    app.write_bytes(b"release 1\n")

    def manifest_for(content: bytes) -> Path:
        app.write_bytes(content)
        extra = (f"    artifacts:\n      - path: {app}\n        sha256: \"{hashlib.sha256(content).hexdigest()}\"\n"
                 "        dest: /opt/app/\n")
        text = example_manifest(example_files).replace("    workdir: /opt/app\n", "    workdir: /opt/app\n" + extra)
        return workspace(text)

    manifest = manifest_for(b"release 1\n")
    first = build(manifest, push=True, reproducible=True, no_cache=True, force=True)
    assert first.code == 0, first.err
    ids = {item["name"]: item["image_id"] for item in first.report["images"]}
    remove_images(engine, registry.host + "/")

    # the same commit again, on an engine without any of the images, pushed to another registry
    with running_registry(tmp_path / "second") as second:
        out = io.StringIO()
        report = tmp_path / "second.json"
        code = common.run(lambda: ship.build(str(manifest), ship.BuildFlags(
            push=True, registry=second.host, report=str(report), reproducible=True, no_cache=True, force=True),
            out=out))
        assert code == 0, out.getvalue()[-2000:]
        again = Run(code, out.getvalue(), "", json.loads(report.read_text()))
        assert {item["name"]: item["image_id"] for item in again.report["images"]} == ids
        assert digests(second, again) == digests(registry, first)
        labels = engine.inspect_image(ids["app-base"])["Config"]["Labels"]  # type: ignore[index]
        assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
        config = engine.inspect_image(ids["jre25"])
        assert config is not None and config["Created"].startswith("2023-11-14T22:13:20")
        remove_images(engine, second.host + "/")

    # one byte of app-base's artifact: only app-base changes
    changed = build(manifest_for(b"release 2\n"), reproducible=True, no_cache=True, force=True)
    assert changed.code == 0, changed.err
    new_ids = {item["name"]: item["image_id"] for item in changed.report["images"]}
    assert {name for name in ids if new_ids[name] != ids[name]} == {"app-base"}


def test_lock_pins_outside_bases_and_frozen_refuses_a_stale_lock(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an outside base image that lives in the local registry
    root = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    pushed = build(root, push=True)
    assert pushed.code == 0, pushed.err
    base_digest = pushed.result("glibc-root")["pushed"][f"{registry.host}/{namespace}/glibc-root:1"]
    outside = f"{registry.host}/{namespace}/glibc-root:1"
    text = f"""\
schema: 1
registry: repo.abc.com
namespace: example
images:
  app:
    from: {outside}
    template: layer
    run: ["echo app"]
    tags: ["1"]
"""
    manifest = workspace(text)
    out = io.StringIO()
    assert common.run(lambda: define.lock(str(manifest), out=out)) == 0
    lock = json.loads((manifest.parent / "images.lock.json").read_text())
    assert lock["images"]["app"]["base_digest"] == base_digest
    assert lock["images"]["app"]["from"] == outside
    assert f"FROM {outside}@{base_digest}" in render_all(common.load_locked(str(manifest)))[
        "app/Dockerfile"]
    refused = build(manifest, frozen=True)  # not a git checkout, no SOURCE_DATE_EPOCH: no reproducible time
    assert refused.code == 8
    assert refused.err.startswith("error: --frozen: the images' created time is the current time, so rebuilding "
                                  "gives other image IDs: git rev-parse failed: fatal: not a git repository")
    assert refused.err.endswith("; set SOURCE_DATE_EPOCH or commit the manifest; nothing was built\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    frozen = build(manifest, frozen=True)
    assert frozen.code == 0, frozen.err
    assert frozen.result("app")["base"] == {"name": outside, "digest": base_digest}

    # the manifest moves on, the lock does not: --frozen builds nothing and says why
    stale = workspace(text.replace('run: ["echo app"]', 'run: ["echo app v2"]').replace(
        "    tags: [\"1\"]\n", f"    tags: [\"1\"]\n  extra:\n    from: {outside}\n    template: layer\n"
                              "    tags: [\"1\"]\n", 1))
    before = {i["Id"] for i in engine.images(all=True)}
    refused = build(stale, frozen=True)
    assert refused.code == 8
    assert refused.err == (
        "error: images.lock.json disagrees with images.yaml; nothing was built. Run `invoke lock` and commit "
        "the result if the change is intended:\n"
        "error:   extra: in the manifest, not in the lock\n")
    assert (refused.report["ok"], refused.report["exit_code"], refused.report["images"]) == (False, 8, [])
    assert {i["Id"] for i in engine.images(all=True)} == before


def test_an_immutable_tag_is_not_overwritten(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    text = ROOT_ONLY.format(**rootfs(example_files)).replace(
        '    tags: ["1"]\n', '    tags: ["1", "1.0.0"]\n    immutable_tags: ["1.0.0"]\n')
    manifest = workspace(text)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    first = build(manifest, push=True)
    assert first.code == 0, first.err
    published = {tag: registry.reader.manifest_digest(f"{namespace}/glibc-root", tag) for tag in ("1", "1.0.0")}

    changed = workspace(text.replace("    tags:", "    env: {CHANGED: \"yes\"}\n    tags:", 1))
    refused = build(changed, push=True)
    assert refused.code == 7
    reference = f"{registry.host}/{namespace}/glibc-root:1.0.0"
    assert refused.result("glibc-root")["reason"] == (
        f"immutable tag {reference} already holds another image ({published['1.0.0'][:19]}); not overwritten "
        "(--overwrite-immutable overwrites it)")
    assert refused.report["notes"] == [f"nothing was pushed: immutable tag(s) {reference} already hold other images"]
    assert {tag: registry.reader.manifest_digest(f"{namespace}/glibc-root", tag) for tag in ("1", "1.0.0")} == \
        published

    rebuilt = build(changed, push=True, force=True)  # --force rebuilds; it does not overwrite release tags
    assert rebuilt.code == 7
    assert rebuilt.result("glibc-root")["reason"] == refused.result("glibc-root")["reason"]
    assert registry.reader.manifest_digest(f"{namespace}/glibc-root", "1.0.0") == published["1.0.0"]

    overwritten = build(changed, push=True, overwrite_immutable=True)
    assert overwritten.code == 0, overwritten.err
    assert f"--overwrite-immutable: overwriting immutable tag {reference} (it holds " in overwritten.out
    assert registry.reader.manifest_digest(f"{namespace}/glibc-root", "1.0.0") != published["1.0.0"]


def test_pushed_layer_digests_are_the_gzip_of_the_uncompressed_layers(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """The manifest digest does not depend on the engine: the expected blobs are
    computed here from `docker save`'s uncompressed layers with Python's gzip
    (level 6, mtime 0), not with javabase's code."""
    import gzip
    import tarfile

    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    manifest = workspace(example_manifest(example_files))
    run = build(manifest, push=True, reproducible=True)
    assert run.code == 0, run.err
    image_id = run.result("jre25")["image_id"]
    archive = tmp_path / "saved.tar"
    with archive.open("wb") as sink:
        for chunk in engine.get_image(image_id):
            sink.write(chunk)
    with tarfile.open(archive) as tar:
        listing = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        expected = ["sha256:" + hashlib.sha256(gzip.compress(tar.extractfile(layer).read(),  # type: ignore[union-attr]
                                                            compresslevel=6, mtime=0)).hexdigest()
                    for layer in listing["Layers"]]
    reference = next(iter(run.result("jre25")["pushed"]))
    repository, tag = reference.rsplit(":", 1)
    status, _, body = registry.reader.request("GET", f"/{repository.split('/', 1)[1]}/manifests/{tag}",
                                              scope="", accept="application/vnd.oci.image.manifest.v1+json")
    assert status == 200
    pushed = json.loads(body)
    assert [layer["digest"] for layer in pushed["layers"]] == expected
    assert pushed["config"]["digest"] == image_id
    assert "sha256:" + hashlib.sha256(body).hexdigest() == run.result("jre25")["pushed"][reference]


def test_a_registry_killed_mid_upload_publishes_no_tag(
    engine: Engine, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    import subprocess
    import sys

    from paths import PROJECT_ROOT

    from .conftest import running_registry as start

    data = tmp_path / "doomed"
    with start(data) as doomed:
        manifest = workspace(example_manifest(example_files))
        namespace = workspace.namespace  # type: ignore[attr-defined]
        process = subprocess.Popen([sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), "build-all",
                                    "--push", "--manifest", str(manifest), "--registry", doomed.host],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            if "[glibc-root" in line and "uploaded" in line:
                break
        else:
            raise AssertionError("no upload seen")
        doomed.stop()
        out, err = process.communicate(timeout=120)
        assert process.returncode == 6, out + err
        assert err.startswith(f"error: cannot reach the registry {doomed.host}")
    with start(data) as again:
        assert again.tagged(namespace) == {}
    remove_images(engine, f"{doomed.host}/")
