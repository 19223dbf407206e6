"""Images held for a later export (#25), attacked on the real engine and registry:
Ctrl-C while they wait, a build failing while they wait (with and without
--keep-going), the engine killed while they wait; and a layer the engine saves
as a link. After each: no export directory left, no container, nothing tagged
in the registry unless the run published it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from docker import APIClient as Engine

from paths import PROJECT_ROOT

from .conftest import LocalRegistry, Run, spare_engine
from .test_build_push import ROOT_ONLY, rootfs
from .test_faults import containers_gone, wait_for_line

SMALL = """\
  small:
    from: glibc-root
    template: layer
    run: ["echo small > /small.txt"]
    tags: ["1"]
"""


def late(name: str, command: str) -> str:
    return f"""\
  {name}:
    from: glibc-root
    template: layer
    run: ["{command}"]
    tags: ["1"]
"""


def invoke(tmp: Path, *args: str, docker_host: str | None = None) -> subprocess.Popen[str]:
    """The program, with its temporary files (the exports) in `tmp`, so that
    what it leaves there is its own."""
    tmp.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp), **({"DOCKER_HOST": docker_host} if docker_host
                                                                       else {})})


def test_ctrl_c_while_an_image_is_held_leaves_no_export_and_pushes_nothing(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + SMALL
                         + late("sleeper", "echo start-of-sleep && sleep 60"))
    report = tmp_path / "report.json"
    process = invoke(tmp_path / "tmp", "build-all", "--push", "--manifest", str(manifest), "--registry",
                     registry.host, "--report", str(report), "--jobs", "2")
    seen = wait_for_line(process, "staged with others later")
    if not any("start-of-sleep" in line for line in seen):
        seen += wait_for_line(process, "start-of-sleep")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (130, "error: interrupted\n")
    assert list((tmp_path / "tmp").iterdir()) == []
    namespace = workspace.namespace  # type: ignore[attr-defined]
    assert registry.tagged(namespace) == {}
    data = json.loads(report.read_text())
    root = next(i for i in data["images"] if i["name"] == "glibc-root")
    assert containers_gone(engine, root["image_id"]) == []
    assert {i["name"]: i["status"] for i in data["images"]} == {"glibc-root": "built", "small": "built",
                                                                "sleeper": "failed"}


def test_a_failed_build_while_an_image_is_held_pushes_nothing_without_keep_going_and_the_rest_with_it(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + SMALL
                         + late("broken", "sleep 4 && echo about to fail && false"))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    for keep_going in (False, True):
        report = tmp_path / f"report-{keep_going}.json"
        process = invoke(tmp_path / "tmp", "build-all", "--push", "--manifest", str(manifest), "--registry",
                         registry.host, "--report", str(report), "--jobs", "2",
                         *(["--keep-going"] if keep_going else []))
        out, err = process.communicate(timeout=120)
        assert process.returncode == 7, out + err
        assert "staged with others later" in out, out
        assert list((tmp_path / "tmp").iterdir()) == []
        data = json.loads(report.read_text())
        statuses = {i["name"]: i["status"] for i in data["images"]}
        if not keep_going:
            assert statuses == {"glibc-root": "built", "small": "built", "broken": "failed"}
            assert registry.tagged(namespace) == {}
        else:
            assert statuses == {"glibc-root": "pushed", "small": "pushed", "broken": "failed"}
            assert registry.tagged(namespace) == {f"{namespace}/glibc-root": ["1"], f"{namespace}/small": ["1"]}
            for image in data["images"][:0] + [i for i in data["images"] if i["pushed"]]:
                for reference, digest in image["pushed"].items():
                    remote = registry.reader.manifest(reference.split("/", 1)[1].rsplit(":", 1)[0], "1")
                    assert remote is not None
                    assert (remote.digest, remote.config_digest) == (digest, image["image_id"]), reference
        root = next(i for i in data["images"] if i["name"] == "glibc-root")
        assert containers_gone(engine, root["image_id"]) == []


def test_the_engine_killed_while_an_image_is_held_is_one_line_exit_5_and_leaves_no_export(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + SMALL
                         + late("sleeper", "echo start-of-sleep && sleep 60"))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    with spare_engine() as spare:
        process = invoke(tmp_path / "tmp", "build-all", "--push", "--manifest", str(manifest), "--registry",
                         registry.host, "--jobs", "2", docker_host=spare.host)
        seen = wait_for_line(process, "staged with others later")
        if not any("start-of-sleep" in line for line in seen):
            wait_for_line(process, "start-of-sleep")
        spare.process.kill()
        spare.process.wait()
        _, err = process.communicate(timeout=120)
    assert process.returncode == 5, err
    assert err == (f"error: the Docker engine at DOCKER_HOST={spare.host} stopped answering during the build "
                   "(step 3/4 (RUN echo start-of-sleep && sleep 60)) (the connection broke); check that dockerd "
                   "is running (its log says why it stopped), then run again\n")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert registry.tagged(namespace) == {}


def test_a_layer_the_engine_saves_as_a_link_is_read_at_its_targets_offset(engine: Engine, tmp_path: Path) -> None:
    """The engine writes a layer an image holds twice once, and a symlink
    `../<first>/layer.tar` for the second: it is read where the first is."""
    from javabase.build.backends import open_backend
    from javabase.publish.oci import layer_stream, read_saved_all

    (tmp_path / "x").write_text("same\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY x /x\nCOPY x /y\nCOPY x /x\n")
    image_id = ""
    for chunk in engine.build(path=str(tmp_path), decode=True, rm=True, forcerm=True, network_mode="none"):
        assert "error" not in chunk, chunk
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    try:
        backend = open_backend("docker", where=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
        backend.save([image_id], tmp_path / "saved.tar", lambda _count: None)
        saved = read_saved_all(tmp_path / "saved.tar")[image_id]
        first, _, again = (member for member, _ in saved.layers)
        with tarfile.open(tmp_path / "saved.tar") as tar:
            assert tar.getmember(again).issym() and tar.getmember(first).isreg()
        assert saved.spans[again] == saved.spans[first]
        for member, diff_id in saved.layers:
            assert "sha256:" + hashlib.sha256(b"".join(layer_stream(saved, member))).hexdigest() == diff_id
    finally:
        engine.remove_image(image_id)


def test_a_reproducible_rebuild_of_images_the_registry_holds_holds_nothing_and_uploads_nothing(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--force --reproducible builds the very images the registry holds: none is
    held for a later export (there is nothing to export) and none is uploaded;
    a changed child is pushed alone (no export of its root to wait for)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    text = ROOT_ONLY.format(**rootfs(example_files)) + SMALL + late("slow", "sleep 3")
    manifest = workspace(text)
    first = build(manifest, push=True, reproducible=True, force=True, jobs=2)
    assert first.code == 0, first.err
    assert first.report["phases"]["counts"]["images held for a later export"] == 2
    again = build(manifest, push=True, reproducible=True, force=True, jobs=2)
    assert again.code == 0, again.err
    assert {i["name"]: i["image_id"] for i in again.report["images"]} == \
        {i["name"]: i["image_id"] for i in first.report["images"]}
    assert again.statuses() == {"glibc-root": "built", "small": "built", "slow": "built"}
    counts = again.report["phases"]["counts"]
    assert "images held for a later export" not in counts and "exports" not in counts, counts
    changed = build(workspace(text.replace("echo small", "echo changed")), push=True, reproducible=True, force=True,
                    jobs=2)
    assert changed.code == 0, changed.err
    assert changed.statuses() == {"glibc-root": "built", "small": "pushed", "slow": "built"}
    assert "images held for a later export" not in changed.report["phases"]["counts"]  # its root is not exported
    namespace = workspace.namespace  # type: ignore[attr-defined]
    small = registry.reader.manifest(f"{namespace}/small", "1")
    assert small is not None and small.config_digest == changed.result("small")["image_id"]


def test_two_manifests_pushed_at_once_on_one_engine_each_publish_their_own_images(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    """Two `build-all --push` of two manifests with held images, at once on one
    engine: one waits for the other's engine lock; each tag holds its run's image."""
    namespace = workspace.namespace  # type: ignore[attr-defined]
    text = ROOT_ONLY.format(**rootfs(example_files)) + SMALL + late("slow", "sleep 2")
    runs, reports = [], []
    for n in (1, 2):
        folder = tmp_path / f"m{n}"
        (folder / "files").mkdir(parents=True)
        os.link(example_files / "files" / "glibc-rootfs.tar.gz", folder / "files" / "glibc-rootfs.tar.gz")
        manifest = folder / "images.yaml"
        manifest.write_text(text.replace("namespace: example", f"namespace: {namespace}-{n}"))
        reports.append(folder / "report.json")
        runs.append(invoke(tmp_path / "tmp", "build-all", "--push", "--manifest", str(manifest), "--registry",
                           registry.host, "--report", str(reports[-1]), "--jobs", "2"))
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert (run.returncode, err) == (0, ""), out + err
    assert sum("holds the lock of the engine" in out for out, _ in outputs) == 1
    assert all("staged with others later" in out for out, _ in outputs)
    assert list((tmp_path / "tmp").iterdir()) == []
    for n, report in enumerate(reports, 1):
        data = json.loads(report.read_text())
        assert {i["name"]: i["status"] for i in data["images"]} == {"glibc-root": "pushed", "small": "pushed",
                                                                     "slow": "pushed"}
        for image in data["images"]:
            remote = registry.reader.manifest(f"{namespace}-{n}/{image['name']}", "1")
            assert remote is not None and remote.config_digest == image["image_id"]
