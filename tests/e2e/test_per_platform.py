"""Every platform on its own runner: the generated `--per platform` pipeline's
jobs run as separate `javabase` processes on fresh engines that share only the
registry (arm64 under qemu here, since this machine has no arm64 engine), the
index jobs join the platforms, and a second pass on empty engines builds and
pulls nothing. A platform the engine cannot run is found before any build."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from javabase.cli import common, define
from javabase.cli import registry as registry_cmds

from .conftest import LocalRegistry, Run, SpareEngine, spare_engine
from .test_platforms import multi_files  # noqa: F401 - the fixture

JAVABASE = Path(sys.executable).parent / "javabase"
FIRST_TAG = {"glibc-root": "1", "jre25": "25", "app-base": "1"}


def multi_workspace(workspace: Callable[[str], Path], multi_files: Path) -> Path:  # noqa: F811
    manifest = workspace(without_the_jvm_under_qemu((multi_files / "images.yaml").read_text()))
    name = "glibc-rootfs-arm64.tar.gz"
    os.link(multi_files / "files" / name, manifest.parent / "files" / name)
    return manifest


def without_the_jvm_under_qemu(text: str) -> str:
    """The two-platform example without what runs the JVM at build or test time (the
    JREs' and app-base's tests, the company CA's import into cacerts), and with one
    JRE: under qemu those take minutes, and this test is about the jobs, not the
    images' content, which test_platforms.py checks on the example as it is."""
    data = yaml.safe_load(text)
    del data["defaults"]["certificates"]
    root = data["images"]["glibc-root"]
    root["tests"] = [t for t in root["tests"] if "company CA" not in t["name"]]
    jre = data["images"]["jre"]
    jre["versions"] = [v for v in jre["versions"] if "name" not in v]  # jre25, not jre25-slim
    for name in ("jre", "app-base"):
        del data["images"][name]["tests"]
    return str(yaml.safe_dump(data, sort_keys=False))


def pipeline_jobs(manifest: Path) -> list[tuple[str, str]]:
    """(job id, its command) of the generated per-platform GitHub workflow, in `needs` order."""
    out = io.StringIO()
    assert common.run(lambda: define.ci(str(manifest.name), "github", "platform", None, out=out)) == 0
    jobs = yaml.safe_load(out.getvalue())["jobs"]
    order: list[str] = []
    while len(order) < len(jobs):
        order += [job for job, body in jobs.items() if job not in order
                  and all(need in order for need in body.get("needs", []))]
    return [(job, jobs[job]["steps"][-1]["run"]) for job in order]


def run_job(command: str, engine: SpareEngine, registry: LocalRegistry, workdir: Path) -> dict[str, Any]:
    """One job's command as its own process (the installed `javabase` program) on
    `engine`, pushing to the test registry; its report."""
    words = command.split()
    assert words[0] == ".venv/bin/invoke", command
    report = workdir / f"report-{os.urandom(4).hex()}.json"
    env = {**os.environ, "DOCKER_HOST": engine.host, "JAVABASE_REGISTRY": registry.host,
           "SOURCE_DATE_EPOCH": "1700000000"}  # a CI checkout's commit time: the workdir is no checkout
    done = subprocess.run([str(JAVABASE), *words[1:], "--report", str(report)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return dict(json.loads(report.read_text()))


def built(reports: list[dict[str, Any]]) -> list[str]:
    return sorted(image["name"] for report in reports for image in report["images"] if image["built_because"])


def test_per_platform_jobs_on_fresh_engines_join_into_one_index_and_a_second_pass_does_nothing(
    registry: LocalRegistry, multi_files: Path, workspace: Callable[[str], Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = multi_workspace(workspace, multi_files)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    monkeypatch.chdir(manifest.parent)
    assert common.run(lambda: define.lock(str(manifest), out=io.StringIO())) == 0
    jobs = pipeline_jobs(manifest)
    assert [job for job, _ in jobs][:3] == ["linux-amd64-img-glibc-root", "linux-arm64-img-glibc-root",
                                            "img-glibc-root"]
    reports = []
    with spare_engine() as amd64, spare_engine() as arm64, spare_engine() as fresh:
        for job, command in jobs:
            # the arm64 runner; app-base's arm64 job on a fresh one, which pulls its parent by digest
            engine = fresh if job == "linux-arm64-img-app-base" else arm64 if job.startswith("linux-arm64-") \
                else amd64
            reports.append(run_job(command, engine, registry, manifest.parent))
        assert built(reports) == sorted(f"{n}@linux/{a}" for n in FIRST_TAG for a in ("amd64", "arm64"))
        pulled = [t for i in fresh.api.images() for t in i.get("RepoDigests") or []]
        assert [d.split("@")[0] for d in pulled] == [f"{registry.host}/{namespace}/jre25"]  # its parent, by digest
    for name, tag in FIRST_TAG.items():  # one index per tag, each platform's config of its architecture
        index = registry.reader.manifest(f"{namespace}/{name}", tag)
        assert index is not None and index.config_digest is None
        platforms = [(m["platform"]["architecture"], m["digest"]) for m in json.loads(index.body)["manifests"]]
        assert [arch for arch, _ in platforms] == ["amd64", "arm64"]
        for arch, digest in platforms:
            child = registry.reader.manifest(f"{namespace}/{name}", digest)
            assert child is not None and child.config_digest is not None
            config = registry.reader.image_config(f"{namespace}/{name}", child.config_digest)
            assert config is not None and config.platform == f"linux/{arch}"
            assert registry.reader.manifest_digest(f"{namespace}/{name}", f"{tag}-linux-{arch}") == digest
    second = []
    with spare_engine() as amd64, spare_engine() as arm64:
        monkeypatch.setenv("DOCKER_HOST", amd64.host)
        planned = io.StringIO()  # plan --push says, per platform, what build will do
        assert common.run(lambda: define.plan(str(manifest), fmt="json", registry=registry.host, push=True,
                                              out=planned)) == 0
        actions = {f"{i['name']}@{p}": a for w in json.loads(planned.getvalue())["waves"] for i in w["images"]
                   for p, a in i["actions"].items()}
        assert len(actions) == 6 and all(a.startswith("up to date in the registry: ") for a in actions.values())
        for job, command in jobs:
            second.append(run_job(command, arm64 if job.startswith("linux-arm64-") else amd64, registry,
                                  manifest.parent))
        assert built(second) == []
        assert amd64.api.images(all=True) == [] and arm64.api.images(all=True) == []  # nothing pulled either
    assert {i["status"] for r in second for i in r["images"]} == {"up-to-date (registry)"}


S390X = "[linux/amd64, linux/s390x]"


def test_a_platform_the_engine_cannot_run_is_one_line_from_doctor_and_build_before_any_build(
    registry: LocalRegistry, multi_files: Path, workspace: Callable[[str], Path],  # noqa: F811
    build: Callable[..., Run],
) -> None:
    """No qemu-s390x is registered here: an emulator that is missing, as a
    disabled or absent qemu-aarch64 is on another host."""
    text = (multi_files / "images.yaml").read_text().replace("[linux/amd64, linux/arm64]", S390X)
    text = without_the_jvm_under_qemu(text.replace("linux/arm64:", "linux/s390x:"))
    manifest = multi_workspace(workspace, multi_files)
    manifest.write_text(text.replace("namespace: example", f"namespace: {workspace.namespace}"))  # type: ignore
    problem = ("linux/s390x: this engine cannot run linux/s390x programs (no binfmt_misc entry qemu-s390x on the "
               "engine's host); register an emulator: `update-binfmts --enable qemu-s390x` on the engine's host, "
               "`docker run --privileged --rm tonistiigi/binfmt --install s390x` elsewhere, or build linux/s390x on "
               "a runner of that architecture (`invoke ci --per platform`)")
    out = io.StringIO()
    code = common.run(lambda: registry_cmds.doctor(str(manifest), registry.host, out=out))
    assert code == 5 and out.getvalue().splitlines()[-2:] == [
        "platform linux/amd64: builds (the engine's own)", f"platform linux/s390x: cannot be built here: {problem}"]
    stopped = build(manifest, push=True)
    assert stopped.code == 7
    assert {i["status"] for i in stopped.report["images"]} == {"failed", "skipped"}
    assert all(i["reason"] == problem for i in stopped.report["images"] if i["status"] == "failed")
    assert not any(i["built_because"] and i["image_id"] for i in stopped.report["images"])
    assert registry.catalog(workspace.namespace) == []  # type: ignore[attr-defined]
    half = build(manifest, push=True, keep_going=True)
    assert half.code == 7
    assert {i["name"]: i["status"] for i in half.report["images"] if i["name"].endswith("amd64")} == {
        f"{n}@linux/amd64": "built" for n in FIRST_TAG}
    assert registry.tagged(workspace.namespace) == {}  # type: ignore[attr-defined]  # no index names a missing one
    assert "glibc-root was not published: its linux/s390x image did not build" in half.out
