"""Air-gapped delivery and a clean engine on the real engine: save, load into an
empty engine, push to a second registry; a damaged archive is refused; prune
removes exactly what it should."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from docker import APIClient as Engine

from javabase.cli import common, release

from .conftest import LocalRegistry, Run, remove_images, run_java_version, running_registry, spare_engine
from .test_build_push import ROOT_ONLY, example_manifest, rootfs


def test_save_load_into_an_empty_engine_and_push_elsewhere(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = workspace(example_manifest(example_files))
    built = build(manifest)
    assert built.code == 0, built.err
    ids = {i["name"]: i["image_id"] for i in built.report["images"]}
    archive = tmp_path / "release.tar"
    out = io.StringIO()
    assert common.run(lambda: release.save(str(manifest), [], str(archive), registry.host, out=out)) == 0
    assert out.getvalue().splitlines()[-1].startswith(f"{archive}: 4 image(s), ")
    again = tmp_path / "again.tar"
    assert common.run(lambda: release.save(str(manifest), [], str(again), registry.host, out=io.StringIO())) == 0
    assert again.read_bytes() == archive.read_bytes()  # the same images make the same file
    tampered = with_extra_tag(archive, tmp_path / "tampered.tar", "alpine:3.20")

    damaged = tmp_path / "damaged.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with running_registry(tmp_path / "second") as second, spare_engine() as empty:
        monkeypatch.setenv("DOCKER_HOST", empty.host)
        err = io.StringIO()
        assert common.run(lambda: release.load(str(damaged), out=io.StringIO()), err=err) == 13
        assert "the archive was changed or damaged: nothing was loaded" in err.getvalue()
        assert empty.api.images(all=True) == []

        out, err = io.StringIO(), io.StringIO()
        code = common.run(lambda: release.load(str(tampered), push=True, registry=second.host, out=out), err=err)
        assert code == 0, out.getvalue() + err.getvalue()
        assert {i["Id"] for i in empty.api.images()} == set(ids.values())
        assert not [i for i in empty.api.images() if "alpine:3.20" in (i.get("RepoTags") or [])]
        namespace = workspace.namespace  # type: ignore[attr-defined]
        assert second.reader.tags(f"{namespace}/jre25") == ["25", "25.0.2"]
        assert second.reader.manifest(f"{namespace}/app-base", "1").config_digest == ids["app-base"]  # type: ignore[union-attr]
        assert 'openjdk version "25' in run_java_version(empty.api, f"{second.host}/{namespace}/app-base:1")
    remove_images(engine, f"{second.host}/")


def with_extra_tag(archive: Path, dest: Path, tag: str) -> Path:
    """The archive with `tag` added to the first image's RepoTags in docker's own
    manifest.json: the index still verifies; `docker load` of it as it is would
    tag (and so replace) a local image of that name."""
    with tarfile.open(archive) as source, tarfile.open(dest, "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name == "manifest.json":
                listing = json.loads(data)
                listing[0]["RepoTags"] = [*(listing[0]["RepoTags"] or []), tag]
                data = json.dumps(listing).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return dest


def test_save_refuses_an_image_that_is_not_built_with_the_current_inputs(
    example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run], tmp_path: Path,
    registry: LocalRegistry,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    assert build(manifest).code == 0
    manifest.write_text(manifest.read_text().replace('tags: ["1"]', 'tags: ["1"]\n    env: {CHANGED: "yes"}'))
    err = io.StringIO()
    archive = tmp_path / "stale.tar"
    code = common.run(lambda: release.save(str(manifest), [], str(archive), registry.host, out=io.StringIO()),
                        err=err)
    assert code == 9
    assert err.getvalue() == ("error: not built on this engine with the current inputs: glibc-root (build: changed "
                              "dockerfile); run `invoke build` first. Nothing was written\n")
    assert not archive.exists()


def test_prune_leaves_the_current_images_the_kept_ones_and_other_peoples(
    engine: Engine, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    base = ROOT_ONLY.format(**rootfs(example_files)) + (
        "  leaf:\n    from: glibc-root\n    template: layer\n    run: [\"echo REV\"]\n    tags: [\"1\"]\n")
    manifest = workspace(base.replace("REV", "r1"))
    leaf_ids = []
    for revision in ("r1", "r2", "r3"):
        manifest.write_text(manifest.read_text().replace("echo r1", f"echo {revision}").replace(
            "echo r2", f"echo {revision}"))
        run = build(manifest)
        assert run.code == 0, run.err
        leaf_ids.append(run.result("leaf")["image_id"])
    root_id = run.result("glibc-root")["image_id"]
    # Someone's own image, built by hand FROM the leaf, and left untagged.
    context = manifest.parent / "by-hand"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {leaf_ids[-1]}\nRUN echo by hand > /by-hand.txt\n")
    by_hand = None
    for chunk in engine.build(path=str(context), decode=True, rm=True, network_mode="none"):
        assert "error" not in chunk, chunk
        by_hand = chunk.get("aux", {}).get("ID", by_hand)
    assert by_hand is not None

    out = io.StringIO()
    assert common.run(lambda: release.prune(str(manifest), keep=1, dry_run=True, out=out)) == 0
    listed = out.getvalue()
    assert f"would remove leaf {leaf_ids[0][7:19]}" in listed and leaf_ids[1][7:19] not in listed
    assert {i["Id"] for i in engine.images(all=True)} >= set(leaf_ids)

    out = io.StringIO()
    assert common.run(lambda: release.prune(str(manifest), keep=0, out=out)) == 0, out.getvalue()
    present = {i["Id"] for i in engine.images(all=True)}
    assert leaf_ids[-1] in present and root_id in present and by_hand in present
    assert leaf_ids[0] not in present and leaf_ids[1] not in present
    again = build(manifest)
    assert again.code == 0 and set(again.statuses().values()) == {"up-to-date"}
    engine.remove_image(by_hand, force=True)
