"""build-all on the real engine and registry: the offline example end to end,
failures and their dependents, checksum mismatches, an unreachable engine."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from docker import APIClient as Engine

from javabase.cli import common, ship
from javabase.settings import Environment
from paths import PROJECT_ROOT

from .conftest import FileServer, LocalRegistry, Run, run_java_version

ROOT_ONLY = """\
schema: 1
registry: repo.abc.com
namespace: example
images:
  glibc-root:
    from: scratch
    template: rootfs
    artifacts:
      - path: {rootfs}
        sha256: {rootfs_sha}
        dest: /
        unpack: true
    tags: ["1"]
"""


def example_manifest(example_files: Path) -> str:
    """The example's manifest; `workspace` links its files/ next to the manifest it writes."""
    return (example_files / "images.yaml").read_text()


def rootfs(example_files: Path) -> dict[str, str]:
    sha = (example_files / "files" / "glibc-rootfs.tar.gz.stamp").read_text().split()[1]
    return {"rootfs": "files/glibc-rootfs.tar.gz", "rootfs_sha": sha}


def test_offline_example_builds_in_order_runs_java_and_is_pushed(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], file_server: FileServer,
) -> None:
    manifest = workspace(example_manifest(example_files))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True)
    assert run.code == 0, run.err
    assert run.statuses() == {"glibc-root": "pushed", "jre25": "pushed", "jre25-slim": "pushed",
                              "app-base": "pushed"}
    # dependency order: each child started after its parent finished
    for child, parent in (("jre25", "glibc-root"), ("jre25-slim", "glibc-root"), ("app-base", "jre25")):
        assert run.result(child)["started"] >= run.result(parent)["finished"]
    # the JRE was downloaded over HTTP from 127.0.0.1, once per tarball
    assert sorted(p for p in file_server.requests if p.startswith("/OpenJDK")) == [
        "/OpenJDK-jre-25.0.2-slim.tar.gz", "/OpenJDK-jre-25.0.2.tar.gz"]
    # java runs in every JRE image
    for reference in (f"{registry.host}/{namespace}/jre25:25", f"{registry.host}/{namespace}/jre25-slim:25",
                      f"{registry.host}/{namespace}/app-base:1"):
        assert 'openjdk version "25.0.2"' in run_java_version(engine, reference)
    # the root's glibc post-install steps (as the alpine-glibc template's): the linker cache was
    # made, localhost resolves through nsswitch.conf, and C.UTF-8 gives Java a UTF-8 default charset
    settings = run_java_version(engine, f"{registry.host}/{namespace}/jre25:25", [
        "sh", "-c", "ls /etc/ld.so.cache && cat /etc/nsswitch.conf && java -XshowSettings:properties -version"])
    assert settings.startswith("/etc/ld.so.cache\nhosts: files dns\n")
    assert "    native.encoding = UTF-8" in settings and "    sun.jnu.encoding = UTF-8" in settings
    # what a platform team ships: every image ran its declared tests before it was tagged, runs as
    # app (UID 10001) although its own steps ran as root, and trusts the company CA (the OS store, cacerts)
    # (an image another test of the session built with the same inputs is reused, and was tested there)
    for name, count in (("glibc-root", 5), ("jre25", 6), ("jre25-slim", 6), ("app-base", 3)):
        built = run.result(name)["built_because"] is not None
        assert len(re.findall(rf"^\[{name} *\] test '[^']+': ok \(", run.out, re.MULTILINE)) == built * count, name
    assert run.result("jre25")["built_because"] is not None
    app = run_java_version(engine, f"{registry.host}/{namespace}/app-base:1", ["sh", "-c", "id; stat -c %u /opt/app"])
    assert app == "uid=10001(app) gid=10001(app) groups=10001(app)\n0\n"
    ca = (example_files / "files" / "company-ca.crt").read_text().strip()
    assert ca in run_java_version(engine, f"{registry.host}/{namespace}/jre25:25",
                                  ["cat", "/etc/ssl/certs/ca-certificates.crt"])
    assert "trustedCertEntry" in run_java_version(engine, f"{registry.host}/{namespace}/jre25:25", [
        "keytool", "-list", "-cacerts", "-storepass", "changeit", "-alias", "javabase-company-ca"])
    # the registry holds exactly what was pushed, with the digests the report gives
    assert registry.catalog(namespace) == sorted(f"{namespace}/{n}" for n in
                                                 ("glibc-root", "jre25", "jre25-slim", "app-base"))
    assert registry.reader.tags(f"{namespace}/jre25") == ["25", "25.0.2"]
    assert registry.reader.tags(f"{namespace}/jre25-slim") == ["25", "25.0.2-slim"]
    for item in run.report["images"]:
        assert sorted(item["pushed"]) == sorted(item["references"])
        for reference, digest in item["pushed"].items():
            repository, tag = reference.rsplit(":", 1)
            assert registry.reader.manifest_digest(repository.split("/", 1)[1], tag) == digest
    # provenance labels on the pushed image
    labels = engine.inspect_image(f"{registry.host}/{namespace}/jre25:25")["Config"]["Labels"]  # type: ignore[index]
    assert labels["org.opencontainers.image.title"] == "jre25"
    assert labels["org.opencontainers.image.version"] == "25.0.2"
    assert labels["org.opencontainers.image.base.name"] == f"repo.abc.com/{namespace}/glibc-root:1"
    assert labels["org.opencontainers.image.base.digest"] == run.result("glibc-root")["image_id"]
    assert labels["org.opencontainers.image.source"] == "https://git.abc.com/platform/javabase"
    assert set(labels) >= {"org.opencontainers.image.created", "org.opencontainers.image.revision"}
    # built FROM the exact parent image just built
    history = engine.history(run.result("app-base")["image_id"])
    assert run.result("jre25")["image_id"] in [h["Id"] for h in history]

    # a second run changes nothing: nothing built, nothing pushed, nothing downloaded
    requests_before = len(file_server.requests)
    again = build(manifest, push=True)
    assert again.code == 0, again.err
    assert set(again.statuses().values()) == {"up-to-date"}
    assert all(item["already_in_registry"] == item["references"] for item in again.report["images"])
    assert [item["image_id"] for item in again.report["images"]] == [
        item["image_id"] for item in run.report["images"]]
    assert "Step 1/" not in again.out
    assert len(file_server.requests) == requests_before


def test_failed_run_step_skips_dependents_and_keeps_going(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    text = ROOT_ONLY.format(**rootfs(example_files)) + """\
  broken:
    from: glibc-root
    template: layer
    run: ["echo about to fail && false"]
    tags: ["1"]
  broken-child:
    from: broken
    template: layer
    tags: ["1"]
  healthy:
    from: glibc-root
    template: layer
    run: ["echo fine"]
    tags: ["1"]
"""
    manifest = workspace(text)
    namespace = workspace.namespace  # type: ignore[attr-defined]

    stopped = build(manifest, push=True, jobs=1)
    assert stopped.code == 7
    assert stopped.result("broken")["status"] == "failed"
    assert stopped.result("broken-child")["reason"] == "skipped: broken failed"
    assert stopped.result("healthy")["reason"] == "not started: broken failed (--keep-going builds the rest)"
    assert registry.tagged(namespace) == {}
    assert stopped.report["notes"] == [
        "nothing was pushed: broken, healthy, broken-child did not build (with --keep-going the images that "
        "did build are pushed)"]

    run = build(manifest, push=True, keep_going=True, jobs=1)
    assert run.code == 7
    assert run.statuses() == {"glibc-root": "pushed", "broken": "failed", "broken-child": "skipped",
                              "healthy": "pushed"}
    assert run.result("broken")["reason"] == (
        "step 3/4 (RUN echo about to fail && false): The command '/bin/sh -c echo about to fail && false' "
        "returned a non-zero code: 1")
    assert run.result("broken-child")["reason"] == "skipped: broken failed"
    assert run.result("broken")["pushed"] == {} and run.result("broken-child")["pushed"] == {}
    assert list(registry.tagged(namespace)) == [f"{namespace}/glibc-root", f"{namespace}/healthy"]
    log = Path(run.result("broken")["log"]).read_text()
    assert "about to fail" in log
    assert run.err == (
        "error: 1 image(s) failed, 1 skipped; first failure: broken: step 3/4 (RUN echo about to fail && false): "
        "The command '/bin/sh -c echo about to fail && false' returned a non-zero code: 1; full log: "
        f"{run.result('broken')['log']}\n")


def test_checksum_mismatch_builds_and_pushes_nothing(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], file_server: FileServer,
) -> None:
    (file_server.root / "tampered.tar.gz").write_bytes(b"not the JRE you were promised")
    wrong = "0" * 63 + "1"
    text = ROOT_ONLY.format(**rootfs(example_files)) + f"""\
  jre:
    from: glibc-root
    template: jre
    versions:
      - version: "25.0.2"
        url: {file_server.url}/tampered.tar.gz
        sha256: "{wrong}"
    tags: ["{{major}}"]
"""
    manifest = workspace(text)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True)
    assert run.code == 4
    actual = hashlib.sha256(b"not the JRE you were promised").hexdigest()
    assert run.err == (
        f"error: images.yaml:18: images.jre.versions[0]: sha256 mismatch for {file_server.url}/tampered.tar.gz: "
        f"expected {wrong}, got {actual}; nothing was built or pushed - check the file or the sha256 in the "
        "manifest\n")
    assert (run.report["ok"], run.report["exit_code"]) == (False, 4)
    assert {image["status"] for image in run.report["images"]} == {"pending"}
    assert run.report["error"] == run.err.removeprefix("error: ").rstrip("\n")
    assert [t for i in engine.images() for t in (i.get("RepoTags") or []) if f"/{namespace}/" in t] == []
    assert registry.tagged(namespace) == {}
    cache = Path(os.environ["JAVABASE_CACHE"])
    assert not (cache / "sha256" / wrong).exists()
    assert list((cache / "tmp").iterdir()) == []


def test_unreachable_engine_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), "build-all"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 5
    assert result.stderr == (
        f"error: cannot reach the Docker engine at DOCKER_HOST=unix://{tmp_path}/no-engine.sock (no socket "
        "there); start one with `scripts/services.sh start` and `eval \"$(scripts/services.sh env)\"`, or set "
        "DOCKER_HOST\n")


def test_build_one_image_builds_its_ancestors_and_push_pushes_it_later(
    registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    import io

    from javabase.cli import common, ship

    text = ROOT_ONLY.format(**rootfs(example_files)) + """\
  middle:
    from: glibc-root
    template: layer
    run: ["echo middle"]
    tags: ["1"]
  leaf:
    from: middle
    template: layer
    run: ["echo leaf"]
    tags: ["1", "stable"]
  sibling:
    from: glibc-root
    template: layer
    run: ["echo sibling"]
    tags: ["1"]
"""
    manifest = workspace(text)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, "leaf")
    assert run.code == 0, run.err
    assert [item["name"] for item in run.report["images"]] == ["glibc-root", "middle", "leaf"]
    assert registry.tagged(namespace) == {}

    out, err = io.StringIO(), io.StringIO()
    code = common.run(lambda: ship.push(str(manifest), ["leaf"], registry=registry.host, out=out), err=err)
    assert code == 0, err.getvalue()
    assert registry.catalog(namespace) == [f"{namespace}/leaf"]
    assert registry.reader.tags(f"{namespace}/leaf") == ["1", "stable"]

    err = io.StringIO()
    code = common.run(lambda: ship.push(str(manifest), ["sibling"], registry=registry.host, out=out), err=err)
    assert code == 9  # usage: the image was never built
    assert err.getvalue() == (f"error: sibling: {registry.host}/{namespace}/sibling:1 is not built on this engine; "
                              f"run `invoke build --image sibling --registry {registry.host}` first\n")


def test_a_registry_that_refuses_the_lookup_gets_nothing_pushed(
    engine: Engine, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fail closed: the immutable-tag and up-to-date checks need to read the registry;
    when it answers 401 nothing is pushed, --force or not, and the exit code is 6."""
    from .conftest import running_registry

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))  # where the message says it looked
    with running_registry(tmp_path / "locked", users={"ci": "s3cret"}) as locked:
        manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)).replace(
            'tags: ["1"]', 'tags: ["1"]\n    immutable_tags: ["1"]'))
        for force in (False, True):
            out, err = io.StringIO(), io.StringIO()
            code = common.run(lambda f=force, o=out: ship.build(str(manifest), ship.BuildFlags(
                push=True, registry=locked.host, force=f), out=o), err=err)
            assert code == 6, err.getvalue()
            namespace = workspace.namespace  # type: ignore[attr-defined]
            config = Environment.read().docker_config
            assert err.getvalue() == (
                f"error: registry {locked.host} refused access with anonymous access (no credentials for it in "
                f"{config} (auths, credHelpers, credsStore) and JAVABASE_REGISTRY_USER (not set)) (HTTP 401 on GET "
                f"/v2/{namespace}/glibc-root/manifests/1); nothing was pushed: set JAVABASE_REGISTRY_USER and "
                f"JAVABASE_REGISTRY_PASSWORD (CI) or log in with `docker login {locked.host}`\n")
        data = tmp_path / "locked" / "data"
        assert not (data / "docker" / "registry" / "v2" / "repositories").exists()
        for image in engine.images(name=f"{locked.host}/{namespace}/glibc-root"):
            engine.remove_image(image["Id"], force=True)


def test_a_real_java_program_runs_in_the_jre_image(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], tmp_path: Path,
) -> None:
    """Not only `java -version`: a program that resolves localhost, writes and reads
    a zip, and prints its default locale and charset, compiled here with javac."""
    probe = PROJECT_ROOT / "tests" / "data" / "java" / "Probe.java"
    subprocess.run(["javac", "--release", "11", "-d", str(tmp_path / "files"), str(probe)], check=True)
    sha = hashlib.sha256((tmp_path / "files" / "Probe.class").read_bytes()).hexdigest()
    manifest = workspace(example_manifest(example_files) + (
        "  probe:\n    from: jre25\n    template: layer\n    artifacts:\n"
        f"      - {{path: files/Probe.class, sha256: {sha}, dest: /opt/probe/}}\n    tags: [\"1\"]\n"))
    run = build(manifest)
    assert run.code == 0, run.err
    namespace = workspace.namespace  # type: ignore[attr-defined]
    output = run_java_version(engine, f"{registry.host}/{namespace}/probe:1", ["java", "-cp", "/opt/probe", "Probe"])
    assert output.splitlines() == ["localhost=127.0.0.1", "zip=5 chars", "locale=en", "charset=UTF-8",
                                   "file.encoding=UTF-8"]


def test_env_and_labels_in_the_image_are_the_yaml_strings_exactly(
    engine: Engine, example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    """$, quotes and backslashes reach the image as written; ${NAME} is a reference
    the parser replaces on purpose; the manifest's own title label is kept."""
    text = ROOT_ONLY.format(**rootfs(example_files)) + (
        "    env:\n"
        "      JAVA_TOOL_OPTIONS: '-Da=$b -Dc=\"d\" -De=\\f'\n"
        "      PATH: '/opt/bin:${PATH}'\n"
        "    labels:\n"
        "      org.opencontainers.image.title: 'JRE \"25\" for $TEAM'\n"
        "      team.note: '100% $$ ${1} `x`'\n")
    run = build(workspace(text))
    assert run.code == 0, run.err
    config = engine.inspect_image(run.result("glibc-root")["image_id"])["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["JAVA_TOOL_OPTIONS"] == '-Da=$b -Dc="d" -De=\\f'
    assert env["PATH"] == "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert config["Labels"]["org.opencontainers.image.title"] == 'JRE "25" for $TEAM'
    assert config["Labels"]["team.note"] == "100% $$ ${1} `x`"
    assert config["Labels"]["io.javabase.image"] == "glibc-root"
