"""Faults on the real engine and registry: Ctrl-C, an engine that dies mid-build,
two runs at once, a forged image, and the report on every exit path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from docker import APIClient as Engine

from paths import PROJECT_ROOT

from .conftest import LocalRegistry, Run, spare_engine
from .test_build_push import ROOT_ONLY, rootfs

SLEEPER = """\
  sleeper:
    from: glibc-root
    template: layer
    run: ["echo start-of-sleep && sleep 60"]
    tags: ["1"]
"""


def invoke(*args: str, docker_host: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, **({"DOCKER_HOST": docker_host} if docker_host else {})}
    return subprocess.Popen([sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 60) -> list[str]:
    """Read stdout until a line contains `text`; return what was read."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not seen in: {''.join(seen)}")


def containers_gone(api: Engine, ancestor: str, timeout: float = 15) -> list[object]:
    """The containers of `ancestor` (an image) and its descendants still there after
    `timeout` seconds (other tests' containers may run in the same engine meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        left = api.containers(all=True, filters={"ancestor": ancestor})
        if not left or time.monotonic() > deadline:
            return list(left)
        time.sleep(0.2)


def test_ctrl_c_cancels_the_running_build_and_tags_nothing(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + SLEEPER)
    report = tmp_path / "report.json"
    process = invoke("build-all", "--manifest", str(manifest), "--registry", registry.host, "--report", str(report))
    wait_for_line(process, "start-of-sleep")
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    took = time.monotonic() - interrupted
    assert process.returncode == 130, err
    assert took < 10, f"exit took {took:.1f} s"
    assert err.endswith("error: interrupted\n")
    namespace = workspace.namespace  # type: ignore[attr-defined]
    tags = [t for i in engine.images() for t in (i.get("RepoTags") or []) if f"/{namespace}/sleeper" in t]
    assert tags == []
    data = json.loads(report.read_text())
    assert (data["ok"], data["error"], data["exit_code"]) == (False, "interrupted", 130)
    root = next(i for i in data["images"] if i["name"] == "glibc-root")
    assert containers_gone(engine, root["image_id"]) == []  # the sleeper's build container is FROM it
    sleeper = next(i for i in data["images"] if i["name"] == "sleeper")
    assert sleeper["status"] == "failed" and sleeper["reason"].startswith("interrupted")
    assert list(Path("/tmp").glob("javabase-sleeper-*")) == []


def test_an_engine_that_dies_mid_build_is_one_line_and_exit_5(
    example_files: Path, workspace: Callable[[str], Path], registry: LocalRegistry,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + SLEEPER)
    with spare_engine() as spare:
        process = invoke("build-all", "--manifest", str(manifest), "--registry", registry.host,
                         docker_host=spare.host)
        wait_for_line(process, "start-of-sleep")
        spare.process.kill()
        spare.process.wait()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 5, err
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0] == (f"error: the Docker engine at DOCKER_HOST={spare.host} stopped answering during the build "
                        "(step 3/4 (RUN echo start-of-sleep && sleep 60)) (the connection broke); check that dockerd "
                        "is running (its log says why it stopped), then run again")


def test_two_runs_at_once_agree_with_the_registry(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
) -> None:
    manifest = workspace(example_manifest_text(example_files))
    runs = [invoke("build-all", "--push", "--manifest", str(manifest), "--registry", registry.host, "--report",
                   str(tmp_path / f"report-{n}.json")) for n in (1, 2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    assert sum("holds the lock of the engine" in out for out, _ in outputs) == 1
    for n in (1, 2):
        data = json.loads((tmp_path / f"report-{n}.json").read_text())
        for image in data["images"]:
            for reference, digest in image["pushed"].items():
                repository, tag = reference.rsplit(":", 1)
                remote = registry.reader.manifest(repository.split("/", 1)[1], tag)
                assert remote is not None
                assert (remote.digest, remote.config_digest) == (digest, image["image_id"]), reference


def example_manifest_text(example_files: Path) -> str:
    from .test_build_push import example_manifest

    return example_manifest(example_files)


def test_a_foreign_image_with_copied_labels_is_not_reused(
    engine: Engine, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + SLEEPER.replace("echo start-of-sleep && sleep 60",
                                                                                     "echo real"))
    first = build(manifest)
    assert first.code == 0, first.err
    real = first.result("sleeper")["image_id"]
    labels = engine.inspect_image(real)["Config"]["Labels"]
    # A foreign image: FROM scratch, every javabase label copied.
    forged_dir = workspace.namespace  # type: ignore[attr-defined]
    context = Path(f"/tmp/{forged_dir}-forged")
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nLABEL " + " ".join(
        f"{k}={json.dumps(v)}" for k, v in labels.items()) + "\n")
    for chunk in engine.build(path=str(context), decode=True, rm=True, network_mode="none"):
        assert "error" not in chunk, chunk
    subprocess.run(["rm", "-rf", str(context)], check=True)
    forged = next(i["Id"] for i in engine.images(filters={"label": f"io.javabase.input-digest="
                                                                    f"{labels['io.javabase.input-digest']}"})
                  if i["Id"] != real)
    engine.remove_image(real, force=True)
    again = build(manifest)
    assert again.code == 0, again.err
    assert again.statuses()["sleeper"] == "built"
    assert again.result("sleeper")["image_id"] not in (real, forged)
    assert (f"build: no local image with these inputs is what javabase builds ({forged[7:19]}: its layers do not "
            "start with its parent's)") in again.out
    engine.remove_image(forged, force=True)


def test_a_run_that_stops_early_leaves_a_true_report(
    example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run], tmp_path: Path,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    report = tmp_path / "stale.json"
    report.write_text('{"ok": true}\n')
    broken = manifest.read_text().replace("template: rootfs", "template: rootfz")
    manifest.write_text(broken)
    from javabase.cli import common, ship

    with open(os.devnull, "w") as sink:
        code = common.run(lambda: ship.build(str(manifest), ship.BuildFlags(report=str(report))), err=sink)
    assert code == 2
    data = json.loads(report.read_text())
    assert (data["ok"], data["exit_code"], data["images"]) == (False, 2, [])
    assert data["error"].endswith("images.glibc-root.template: unknown template 'rootfz'; did you mean 'rootfs'?")


def test_a_service_image_built_from_a_base_is_not_taken_for_the_base(
    engine: Engine, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    """A team's own image FROM a javabase image inherits all its labels; it is newer,
    and still not reused as the base."""
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    first = build(manifest)
    assert first.code == 0, first.err
    root = first.result("glibc-root")["image_id"]
    context = manifest.parent / "service"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {root}\nRUN echo a service > /service.txt\n")
    service = None
    for chunk in engine.build(path=str(context), decode=True, rm=True, network_mode="none"):
        assert "error" not in chunk, chunk
        service = chunk.get("aux", {}).get("ID", service)
    assert service is not None and service != root
    again = build(manifest)
    assert again.code == 0, again.err
    assert again.result("glibc-root")["status"] == "up-to-date", again.out
    assert again.result("glibc-root")["image_id"] == root
    engine.remove_image(service, force=True)
