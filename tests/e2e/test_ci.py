"""CI at scale on real engines: a fresh runner finds everything in the
registry and does nothing; a generated pipeline fans out over two engines that
share only the registry."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from javabase.cli import common, define, ship

from .conftest import LocalRegistry, Run, SpareEngine, spare_engine
from .test_build_push import example_manifest


@pytest.fixture
def fresh_engine() -> Iterator[SpareEngine]:
    with spare_engine() as engine:
        yield engine


def build_on(engine: SpareEngine, manifest: Path, registry: LocalRegistry, images: list[str],
             monkeypatch: pytest.MonkeyPatch, **options: object) -> Run:
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    out, err = io.StringIO(), io.StringIO()
    report = manifest.parent / f"report-{os.urandom(4).hex()}.json"
    flags = ship.BuildFlags(images, registry=registry.host, report=str(report), **options)  # type: ignore[arg-type]
    code = common.run(lambda: ship.build(str(manifest), flags, out=out), err=err)
    data = json.loads(report.read_text()) if report.exists() else {}
    return Run(code, out.getvalue(), err.getvalue(), data)


def ours(engine: SpareEngine, registry: LocalRegistry) -> list[str]:
    return sorted(t for i in engine.api.images(all=True) for t in (i.get("RepoTags") or []) + (
        i.get("RepoDigests") or []) if t.startswith(registry.host))


def test_a_fresh_runner_builds_pulls_and_pushes_nothing(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
    fresh_engine: SpareEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = workspace(example_manifest(example_files))
    first = build(manifest, push=True)
    assert first.code == 0, first.err
    monkeypatch.setenv("DOCKER_HOST", fresh_engine.host)
    planned = io.StringIO()
    assert common.run(lambda: define.plan(str(manifest), fmt="json", registry=registry.host, push=True,
                                              out=planned)) == 0
    actions = {i["name"]: i["action"] for w in json.loads(planned.getvalue())["waves"] for i in w["images"]}
    assert all(a.startswith("up to date in the registry: ") for a in actions.values()), actions
    again = build_on(fresh_engine, manifest, registry, [], monkeypatch, push=True)
    assert again.code == 0, again.err
    for name, action in actions.items():  # plan said exactly what build did
        assert f"[{name}" in again.out and f"{action} (" in again.out
    assert set(again.statuses().values()) == {"up-to-date (registry)"}
    assert [(i["name"], i["already_in_registry"]) for i in again.report["images"]] == [
        (i["name"], i["references"]) for i in again.report["images"]], again.out
    assert ours(fresh_engine, registry) == []
    assert fresh_engine.api.images(all=True) == []


def run_job(command: str, engine: SpareEngine, registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch,
            workdir: Path) -> Run:
    """One `.venv/bin/invoke build[-all] ...` line of a generated pipeline, run in-process."""
    words = command.split()
    assert words[0] == ".venv/bin/invoke" and words[1] in ("build", "build-all"), command
    images = [words[i + 1] for i, w in enumerate(words) if w == "--image"]
    manifest = workdir / words[words.index("--manifest") + 1]
    assert "--push" in words and "--frozen" in words
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # a CI checkout's commit time: the workdir is no checkout
    return build_on(engine, manifest, registry, images, monkeypatch, push=True, frozen=True,
                    expect_up_to_date="--expect-up-to-date" in words)


def test_the_generated_pipeline_fans_out_over_two_engines_and_builds_each_image_once(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, build: Callable[..., Run],
) -> None:
    import yaml

    from javabase.publish.registry import Remote

    manifest = workspace(example_manifest(example_files))
    monkeypatch.chdir(manifest.parent)
    assert common.run(lambda: define.lock(str(manifest), out=io.StringIO())) == 0
    out = io.StringIO()
    assert common.run(lambda: define.ci("images.yaml", "github", "image", None, out=out)) == 0
    jobs = yaml.safe_load(out.getvalue())["jobs"]
    order: list[str] = []
    while len(order) < len(jobs):  # the jobs in `needs` order, as the CI would run them
        order += [job for job, body in jobs.items() if job not in order
                  and all(need in order for need in body.get("needs", []))]
    assert order[-1] == "complete" and jobs["complete"]["needs"] == order[:-1]
    with spare_engine() as first, spare_engine() as second:
        engines = [first, second]
        for attempt in ("first pass", "second pass"):
            built: list[str] = []
            for index, job in enumerate(order):
                command = jobs[job]["steps"][-1]["run"]
                run = run_job(command, engines[index % 2], registry, monkeypatch, manifest.parent)
                assert run.code == 0, f"{attempt} {job}: {run.out}{run.err}"
                built += [image["name"] for image in run.report["images"] if image["built_because"]]
            if attempt == "first pass":
                assert sorted(built) == ["app-base", "glibc-root", "jre25", "jre25-slim"]
            else:
                assert built == []
    reader = registry.reader
    namespace = workspace.namespace  # type: ignore[attr-defined]

    def held(name: str, tag: str) -> Remote:
        found = reader.manifest(f"{namespace}/{name}", tag)
        assert found is not None
        return found

    first_tag = {"glibc-root": "1", "jre25": "25", "jre25-slim": "25", "app-base": "1"}
    for child, parent in (("jre25", "glibc-root"), ("jre25-slim", "glibc-root"), ("app-base", "jre25")):
        config_digest = held(child, first_tag[child]).config_digest
        _, _, body = reader.request("GET", f"/{namespace}/{child}/blobs/{config_digest}", scope="")
        labels = json.loads(body)["config"]["Labels"]
        assert labels["org.opencontainers.image.base.digest"] == held(parent, first_tag[parent]).config_digest


def test_the_last_job_fails_when_the_pipeline_left_work_undone(
    example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    from .test_build_push import ROOT_ONLY, rootfs

    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    undone = build(manifest, push=True, expect_up_to_date=True)
    assert undone.code == 12
    assert undone.err == ("error: --expect-up-to-date: glibc-root had to be built or pushed; the jobs before this "
                          "one did not build and push everything (see the table above)\n")
    done = build(manifest, push=True, expect_up_to_date=True)
    assert done.code == 0, done.err
