"""Generated CI pipelines: jobs need exactly their parents, the output validates
against the public schemas, the committed ones are not stale."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from conftest import BASE
from javabase.cli import common, define
from javabase.manifest.model import Manifest
from javabase.plan.order import make_plan
from javabase.plan.pipeline import github, gitlab
from paths import PROJECT_ROOT

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def test_each_image_job_needs_exactly_its_parents_job(valid: Callable[[str], Manifest]) -> None:
    jobs = yaml.safe_load(github(make_plan(valid(BASE))))["jobs"]
    assert {job: body.get("needs", []) for job, body in jobs.items()} == {
        "img-root": [], "img-jre8": ["img-root"], "img-jre17": ["img-root"],
        "complete": ["img-root", "img-jre17", "img-jre8"]}
    assert jobs["img-jre8"]["steps"][-1]["run"] == (
        ".venv/bin/invoke build --image jre8 --push --frozen --manifest images.yaml")
    assert jobs["complete"]["steps"][-1]["run"] == (
        ".venv/bin/invoke build-all --push --frozen --manifest images.yaml --expect-up-to-date")


def test_a_manifest_that_signs_gives_its_jobs_the_signing_key_secret(valid: Callable[[str], Manifest]) -> None:
    unsigned = yaml.safe_load(github(make_plan(valid(BASE))))
    assert set(unsigned["env"]) == {"JAVABASE_REGISTRY_USER", "JAVABASE_REGISTRY_PASSWORD"}
    signed = github(make_plan(replace(valid(BASE), signing_key=Path("keys/cosign.pub"))))
    assert yaml.safe_load(signed)["env"] == {
        name: "${{ secrets." + name + " }}" for name in ("JAVABASE_REGISTRY_USER", "JAVABASE_REGISTRY_PASSWORD",
                                                         "JAVABASE_SIGNING_KEY", "JAVABASE_SIGNING_KEY_PASSWORD")}
    assert ("# The signing key comes from GitHub's repository secrets too: JAVABASE_SIGNING_KEY and "
            "JAVABASE_SIGNING_KEY_PASSWORD.\n") in signed


def test_names_that_differ_only_in_their_separators_get_jobs_of_their_own(
        valid: Callable[[str], Manifest]) -> None:
    manifest = valid(BASE.replace("  jre:\n", "  a.b: {from: root, template: layer, tags: ['1']}\n"
                                             "  a-b: {from: root, template: layer, tags: ['1']}\n"
                                             "  a_b: {from: root, template: layer, tags: ['1']}\n  jre:\n"))
    jobs = yaml.safe_load(github(make_plan(manifest)))["jobs"]
    assert {"img-a_-b", "img-a-b", "img-a_b"} <= set(jobs)
    assert jobs["img-a_-b"]["steps"][-1]["run"].startswith(".venv/bin/invoke build --image a.b ")


def test_a_manifest_path_with_shell_characters_is_one_word(valid: Callable[[str], Manifest]) -> None:
    document = yaml.safe_load(gitlab(make_plan(valid(BASE)), manifest="base images/$(id).yaml"))
    assert document["img-root"]["script"][-1] == (
        ".venv/bin/invoke build --image root --push --frozen --manifest 'base images/$(id).yaml'")


def test_per_wave_jobs_need_the_wave_before(valid: Callable[[str], Manifest]) -> None:
    document = yaml.safe_load(gitlab(make_plan(valid(BASE)), per="wave"))
    assert document["wave-2"] == {"stage": "build", "needs": ["wave-1"], "tags": ["saas-linux-small-amd64"],
                                  "script": [
        "bash scripts/bootstrap.sh --runtime",
        ".venv/bin/invoke build --image jre17 --image jre8 --push --frozen --manifest images.yaml"]}
    # GitLab's own runners: a Python image with a Docker engine beside it
    assert document["default"] == {"image": "python:3.11-bookworm", "services": ["docker:27-dind"]}
    assert document["variables"] == {"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": ""}


MULTI = BASE.replace("  jre:\n", "  jre:\n    platforms: [linux/amd64, linux/arm64]\n").replace(
    "  root:\n", "  root:\n    platforms: [linux/amd64, linux/arm64]\n").replace(
    ".tar.gz\n", ".tar.gz\n        platform_independent: true\n")  # one file is enough for a pipeline


def test_per_platform_each_platform_runs_natively_and_its_index_job_needs_them_all(
        valid: Callable[[str], Manifest]) -> None:
    manifest = valid(MULTI)
    jobs = yaml.safe_load(github(make_plan(manifest), per="platform"))["jobs"]
    assert {job: (body["runs-on"], body.get("needs", [])) for job, body in jobs.items()} == {
        "linux-amd64-img-root": ("ubuntu-24.04", []),
        "linux-arm64-img-root": ("ubuntu-24.04-arm", []),
        "img-root": ("ubuntu-latest", ["linux-amd64-img-root", "linux-arm64-img-root"]),
        "linux-amd64-img-jre17": ("ubuntu-24.04", ["linux-amd64-img-root"]),  # its parent's platform job only
        "linux-arm64-img-jre17": ("ubuntu-24.04-arm", ["linux-arm64-img-root"]),
        "img-jre17": ("ubuntu-latest", ["linux-amd64-img-jre17", "linux-arm64-img-jre17"]),
        "linux-amd64-img-jre8": ("ubuntu-24.04", ["linux-amd64-img-root"]),
        "linux-arm64-img-jre8": ("ubuntu-24.04-arm", ["linux-arm64-img-root"]),
        "img-jre8": ("ubuntu-latest", ["linux-amd64-img-jre8", "linux-arm64-img-jre8"]),
        "complete": ("ubuntu-latest", list(jobs)[:-1])}
    assert jobs["linux-arm64-img-jre8"]["steps"][-1]["run"] == (
        ".venv/bin/invoke build --image jre8 --platform linux/arm64 --push --frozen --manifest images.yaml")
    assert jobs["img-jre8"]["steps"][-1]["run"] == (
        ".venv/bin/invoke publish --image jre8 --frozen --manifest images.yaml")
    assert not any("qemu" in str(body) for body in jobs.values())  # native runners: no emulator
    emulated = yaml.safe_load(github(make_plan(manifest), per="image"))["jobs"]["img-jre8"]["steps"]
    assert emulated[2] == {"uses": "docker/setup-qemu-action@v3", "with": {"platforms": "arm64"}}


def test_the_manifest_names_its_own_runners(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(MULTI + "ci:\n  runners:\n    github: {linux/arm64: graviton, default: build-box}\n"
                             "    gitlab: {linux/arm64: arm-runner}\n")
    jobs = yaml.safe_load(github(make_plan(manifest), per="platform"))["jobs"]
    assert (jobs["linux-arm64-img-root"]["runs-on"], jobs["img-root"]["runs-on"],
            jobs["linux-amd64-img-root"]["runs-on"]) == ("graviton", "build-box", "ubuntu-24.04")
    document = yaml.safe_load(gitlab(make_plan(manifest), per="platform"))
    assert (document["linux-arm64-img-root"]["tags"], document["img-root"]["tags"]) == (
        ["arm-runner"], ["saas-linux-small-amd64"])


@pytest.mark.parametrize(("fmt", "schema"), [("github", "vendor.github-workflows"), ("gitlab", "vendor.gitlab-ci")])
@pytest.mark.parametrize("per", ["image", "wave", "platform"])
def test_the_output_validates_against_the_public_schema(fmt: str, schema: str, per: str, tmp_path: Path) -> None:
    out = tmp_path / "pipeline.yml"
    assert common.run(lambda: define.ci(str(PROJECT_ROOT / "images.yaml"), fmt, per, str(out),
                                            out=io.StringIO())) == 0
    result = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(out)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stale_committed_pipeline_is_exit_3(tmp_path: Path) -> None:
    stale = tmp_path / "workflow.yml"
    shutil.copy(PROJECT_ROOT / "ci" / "github-workflow.yml", stale)
    stale.write_text(stale.read_text().replace("img-jre17", "img-jre16"))
    err = io.StringIO()
    code = common.run(lambda: define.ci(str(PROJECT_ROOT / "images.yaml"), "github", "image", str(stale),
                                            check=True, out=io.StringIO()), err=err)
    assert code == 3
    assert err.getvalue() == (f"error: {stale}: differs from what the manifest generates\n"
                              "error: the pipeline is stale; run `invoke ci` with the same options and commit the "
                              "result\n")


def test_ci_check_reads_the_committed_file_and_its_options_by_default(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(PROJECT_ROOT / "images.yaml", tmp_path / "images.yaml")
    shutil.copy(PROJECT_ROOT / "images.lock.json", tmp_path / "images.lock.json")
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    assert common.run(lambda: define.ci(None, "gitlab", check=True, out=io.StringIO()), err=err) == 3
    assert err.getvalue().startswith("error: ci/gitlab-ci.yml: missing\n")
    assert common.run(lambda: define.ci(None, "gitlab", "platform", "ci/gitlab-ci.yml", out=io.StringIO())) == 0
    out = io.StringIO()
    assert common.run(lambda: define.ci(None, "gitlab", check=True, out=out)) == 0  # --per platform, from its header
    assert out.getvalue() == "ci/gitlab-ci.yml: up to date with images.yaml\n"


def test_docs_ci_shows_the_committed_workflow() -> None:
    readme = (PROJECT_ROOT / "docs" / "ci.md").read_text()
    shown = re.search(r"```yaml\n(# Generated by javabase from images.yaml: `invoke ci --format github.*?)```",
                      readme, re.DOTALL)
    assert shown is not None
    assert shown.group(1) == (PROJECT_ROOT / "ci" / "github-workflow.yml").read_text()


@pytest.mark.parametrize(("fmt", "schema"), [("github", "vendor.github-workflows"), ("gitlab", "vendor.gitlab-ci")])
@pytest.mark.parametrize("job", ["update", "update-check"])
def test_the_scheduled_update_job_validates_against_the_public_schema(fmt: str, schema: str, job: str,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "scheduled.yml"
    assert common.run(lambda: define.ci(str(PROJECT_ROOT / "images.yaml"), fmt, output=str(out), job=job,
                                        cron="0 3 * * 1-5", out=io.StringIO())) == 0
    result = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(out)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load(out.read_text())
    check = " --check" if job == "update-check" else ""
    if fmt == "github":
        assert document["on"] == {"schedule": [{"cron": "0 3 * * 1-5"}], "workflow_dispatch": {}}
        steps = document["jobs"][job]["steps"]
        assert steps[2] == {"run": f".venv/bin/invoke update{check} --manifest {PROJECT_ROOT / 'images.yaml'}"}
        assert len(steps) == (4 if job == "update" else 3)
        assert document["permissions"]["contents"] == ("write" if job == "update" else "read")
    else:
        body = document[f"javabase-{job}"]
        assert body["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
        assert body["script"][1] == f".venv/bin/invoke update{check} --manifest {PROJECT_ROOT / 'images.yaml'}"
        assert ("merge_request.create" in body["script"][-1]) == (job == "update")


def test_an_unknown_job_or_a_cron_that_is_not_one_is_exit_9() -> None:
    for job, cron, message in (("nightly", "0 3 * * *", "--job 'nightly' is not one of: build, update, update-check"),
                               ("update", "daily", "--cron 'daily' is not a cron expression of five fields (minute "
                                                   "hour day month weekday)")):
        err = io.StringIO()
        code = common.run(lambda job=job, cron=cron: define.ci(str(PROJECT_ROOT / "images.yaml"), job=job, cron=cron,
                                                               out=io.StringIO()), err=err)
        assert (code, err.getvalue()) == (9, f"error: {message}\n")
