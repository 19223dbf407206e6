"""Private registries on the real engine: TLS with a CA of the tests' own,
htpasswd and token auth, credentials from config.json, a credential helper and
the environment; wrong credentials and unknown CAs push nothing; no secret is
ever shown or stored."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker import APIClient as Engine

from javabase.cli import common, define, ship
from javabase.cli import registry as registry_cmds
from javabase.publish.credentials import Credential
from javabase.publish.registry import Registry
from javabase.settings import Environment
from paths import PROJECT_ROOT

from .conftest import FileServer, Run, remove_images
from .registries import SecureRegistry, TokenServer, running_token_server, secure_registry
from .test_build_push import ROOT_ONLY, rootfs

PASSWORD = "canary-" + secrets.token_hex(8)
IMMUTABLE = ROOT_ONLY.replace('tags: ["1"]', 'tags: ["1", "1.0"]\n    immutable_tags: ["1.0"]')


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRegistry]:
    with secure_registry(tmp_path_factory.mktemp("basic"), users={"ci": PASSWORD}) as started:
        yield started


def admin(registry: SecureRegistry, user: str = "ci", password: str = PASSWORD) -> Registry:
    return Registry(registry.host, Credential(user, password, "test"),
                    env=Environment.read({"JAVABASE_CERTS_DIR": str(registry.certs_dir)}))


def run_build(manifest: Path, registry: SecureRegistry, *images: str, debug: bool = False, **options: Any) -> Run:
    out, err = io.StringIO(), io.StringIO()
    report = manifest.parent / f"report-{secrets.token_hex(4)}.json"
    code = common.run(lambda: ship.build(str(manifest), ship.BuildFlags(
        list(images), registry=registry.host, report=str(report), **options), out=out), debug=debug, err=err)
    data = json.loads(report.read_text()) if report.exists() else {}
    return Run(code, out.getvalue(), err.getvalue(), data)


def use_config_auths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, password: str) -> None:
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"ci:{password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))


def use_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, password: str) -> None:
    """A credential helper executable the test writes: host on stdin, JSON out."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / "docker-credential-jbtest"
    helper.write_text(f"#!{sys.executable}\nimport json, sys\nhost = sys.stdin.read().strip()\n"
                      f"if sys.argv[1:] != ['get'] or host != {host!r}:\n"
                      "    print('credentials not found in native keychain'); sys.exit(1)\n"
                      f"print(json.dumps({{'Username': 'ci', 'Secret': {password!r}}}))\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    (config / "config.json").write_text(json.dumps({"credHelpers": {host: "jbtest"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def use_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, password: str) -> None:
    file = tmp_path / "password"
    file.write_text(password + "\n")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    monkeypatch.setenv("JAVABASE_REGISTRY_USER", "ci")
    monkeypatch.setenv("JAVABASE_REGISTRY_PASSWORD_FILE", str(file))


SOURCES: dict[str, Callable[[pytest.MonkeyPatch, Path, str, str], None]] = {
    "config-auths": use_config_auths, "helper": use_helper, "environment": use_env}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_tls_and_basic_auth_with_each_credential_source(
    source: str, basic: SecureRegistry, engine: Engine, example_files: Path, workspace: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("JAVABASE_CERTS_DIR", str(basic.certs_dir))
    SOURCES[source](monkeypatch, tmp_path, basic.host, PASSWORD)
    manifest = workspace(IMMUTABLE.format(**rootfs(example_files)))
    namespace = workspace.namespace  # type: ignore[attr-defined]

    first = run_build(manifest, basic, push=True)
    assert first.code == 0, first.out + first.err
    reader = admin(basic)
    assert reader.tags(f"{namespace}/glibc-root") == ["1", "1.0"]
    image_id = first.result("glibc-root")["image_id"]
    assert reader.manifest(f"{namespace}/glibc-root", "1.0").config_digest == image_id  # type: ignore[union-attr]

    again = run_build(manifest, basic, push=True)
    assert again.code == 0, again.err
    assert again.result("glibc-root")["already_in_registry"] == [f"{basic.host}/{namespace}/glibc-root:1",
                                                                 f"{basic.host}/{namespace}/glibc-root:1.0"]

    # The immutable check reads the registry with the same credentials.
    changed = workspace(IMMUTABLE.format(**rootfs(example_files)).replace('tags: ["1", "1.0"]',
                                                                           'tags: ["1", "1.0"]\n    network: true'))
    refused = run_build(changed, basic, push=True)
    assert refused.code == 7
    assert refused.report["notes"] == [f"nothing was pushed: immutable tag(s) {basic.host}/{namespace}/"
                                       "glibc-root:1.0 already hold other images"]
    remove_images(engine, f"{basic.host}/{namespace}/")


def test_lock_and_push_read_a_private_registry(
    basic: SecureRegistry, engine: Engine, example_files: Path, workspace: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("JAVABASE_CERTS_DIR", str(basic.certs_dir))
    monkeypatch.delenv("JAVABASE_REGISTRY", raising=False)  # the child manifest's registry is the run's
    use_env(monkeypatch, tmp_path, basic.host, PASSWORD)
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    built = run_build(manifest, basic)
    assert built.code == 0, built.err
    out, err = io.StringIO(), io.StringIO()
    assert common.run(lambda: ship.push(str(manifest), [], registry=basic.host, out=out), err=err) == 0, \
        err.getvalue()
    pushed = admin(basic).manifest_digest(f"{namespace}/glibc-root", "1")
    assert pushed is not None

    child = tmp_path / "child"
    child.mkdir()
    (child / "images.yaml").write_text(
        f"schema: 1\nregistry: {basic.host}\nimages:\n  app:\n    from: {basic.host}/{namespace}/glibc-root:1\n"
        "    template: layer\n    tags: ['1']\n")
    out = io.StringIO()
    assert common.run(lambda: define.lock(str(child / "images.yaml"), out=out), err=err) == 0, err.getvalue()
    lock = json.loads((child / "images.lock.json").read_text())
    assert lock["images"]["app"]["base_digest"] == pushed
    remove_images(engine, f"{basic.host}/{namespace}/")


def test_a_wrong_password_is_exit_6_and_pushes_nothing(
    basic: SecureRegistry, example_files: Path, workspace: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, engine: Engine,
) -> None:
    monkeypatch.setenv("JAVABASE_CERTS_DIR", str(basic.certs_dir))
    use_env(monkeypatch, tmp_path, basic.host, "not-" + PASSWORD)
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = run_build(manifest, basic, push=True)
    assert run.code == 6
    assert run.err == (f"error: registry {basic.host} refused access with the credentials of ci from "
                       f"JAVABASE_REGISTRY_PASSWORD_FILE ({tmp_path / 'password'}) (HTTP 401 on GET /v2/{namespace}/"
                       f"glibc-root/manifests/1); nothing was pushed: check them, or run `invoke doctor --registry "
                       f"{basic.host}`\n")
    assert [r for r in admin(basic).catalog() if r.startswith(namespace)] == []
    remove_images(engine, f"{basic.host}/{namespace}/")


def test_a_registry_behind_an_unknown_ca_is_one_line(
    basic: SecureRegistry, example_files: Path, workspace: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, engine: Engine,
) -> None:
    monkeypatch.setenv("JAVABASE_CERTS_DIR", str(tmp_path / "no-certs"))
    use_env(monkeypatch, tmp_path, basic.host, PASSWORD)
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    run = run_build(manifest, basic, push=True)
    assert run.code == 6
    assert run.err == (f"error: registry {basic.host}: TLS: the certificate was signed by a CA javabase does not "
                       f"know; put the CA that signed its certificate in {tmp_path / 'no-certs' / basic.host}/ca.crt "
                       "(or a bundle in SSL_CERT_FILE), then run again\n")
    remove_images(engine, f"{basic.host}/")


def test_doctor_says_how_the_registry_is_reached_and_what_is_allowed(
    basic: SecureRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("JAVABASE_CERTS_DIR", str(basic.certs_dir))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    use_config_auths(monkeypatch, tmp_path, basic.host, PASSWORD)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert common.run(lambda: registry_cmds.doctor(str(PROJECT_ROOT / "images.yaml"), basic.host, out=out)) == 0
    config = tmp_path / "docker-config" / "config.json"
    assert out.getvalue().splitlines() == [
        f"registry {basic.host}: answers over HTTPS (verified by {basic.certs_dir / basic.host / 'ca.crt'} + the "
        "system's CAs) (GET /v2/: HTTP 401)",
        f"credentials: ci from {config} auths.{basic.host}",
        "auth: basic",
        "pull on base/alpine-glibc: authorised",
        "push on base/alpine-glibc: authorised",
        "platform linux/amd64: builds (the engine's own)",  # images.yaml asks for both
        "platform linux/arm64: builds (emulated; a probe ran)",  # scripts/services.sh registered qemu
    ]
    use_config_auths(monkeypatch, tmp_path, basic.host, "wrong")
    out = io.StringIO()
    assert common.run(lambda: registry_cmds.doctor(str(PROJECT_ROOT / "images.yaml"), basic.host, out=out)) == 6
    assert out.getvalue().splitlines()[3].startswith(
        f"pull on base/alpine-glibc: refused: registry {basic.host} refused access with the credentials of ci from "
        f"{config} auths.{basic.host} (HTTP 401")


def test_token_auth_grants_push_to_ci_and_refuses_it_to_a_reader(
    example_files: Path, workspace: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    engine: Engine,
) -> None:
    server = TokenServer({"ci": (PASSWORD, ["pull", "push"]), "reader": (PASSWORD, ["pull"])})
    with running_token_server(server), secure_registry(tmp_path / "token-registry", token=server) as registry:
        monkeypatch.setenv("JAVABASE_CERTS_DIR", str(registry.certs_dir))
        use_env(monkeypatch, tmp_path, registry.host, PASSWORD)
        manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
        namespace = workspace.namespace  # type: ignore[attr-defined]
        first = run_build(manifest, registry, push=True)
        assert first.code == 0, first.out + first.err
        granted = {action for claims in server.issued for a in claims["access"]
                   if a["name"] == f"{namespace}/glibc-root" for action in a["actions"]}
        assert granted == {"pull", "push"}
        again = run_build(manifest, registry, push=True)
        assert again.code == 0 and again.result("glibc-root")["status"] == "up-to-date"

        monkeypatch.setenv("JAVABASE_REGISTRY_USER", "reader")
        other = workspace(ROOT_ONLY.format(**rootfs(example_files)).replace('tags: ["1"]', 'tags: ["2"]'))
        refused = run_build(other, registry, push=True)
        assert refused.code == 6
        assert refused.err == (  # the registry lets it pull: it is a reader, not a wrong password
            f"error: registry {registry.host}: reader may pull but not push on {namespace}/glibc-root (HTTP 401 on "
            f"POST /v2/{namespace}/glibc-root/blobs/uploads/; credentials from JAVABASE_REGISTRY_PASSWORD_FILE "
            f"({tmp_path / 'password'})); nothing was pushed: ask the registry's admins for push rights, or use "
            "an account that has them\n")
        reader = Registry(registry.host, Credential("ci", PASSWORD, "test"),
                          env=Environment.read({"JAVABASE_CERTS_DIR": str(registry.certs_dir)}))
        assert reader.tags(f"{namespace}/glibc-root") == ["1"]
        remove_images(engine, f"{registry.host}/")


def test_no_secret_is_printed_reported_logged_labelled_or_pushed(
    basic: SecureRegistry, engine: Engine, example_files: Path, workspace: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, file_server: FileServer,
) -> None:
    monkeypatch.setenv("JAVABASE_CERTS_DIR", str(basic.certs_dir))
    use_config_auths(monkeypatch, tmp_path, basic.host, PASSWORD)
    signature = "sig-" + secrets.token_hex(8)  # a presigned URL's secret
    canaries = [PASSWORD, base64.b64encode(f"ci:{PASSWORD}".encode()).decode(), signature]
    (file_server.root / "notice.txt").write_text("a file fetched with a presigned URL\n")
    presigned = f"{file_server.url}/notice.txt?X-Amz-Credential=ci&X-Amz-Signature={signature}"
    notice_sha = hashlib.sha256((file_server.root / "notice.txt").read_bytes()).hexdigest()
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)).replace(
        "        unpack: true\n", f"        unpack: true\n      - url: '{presigned}'\n        sha256: {notice_sha}\n"
        "        name: notice.txt\n") + "  broken:\n    from: glibc-root\n"
                         "    template: layer\n    run: [\"exit 3\"]\n    tags: [\"1\"]\n")
    namespace = workspace.namespace  # type: ignore[attr-defined]
    seen: list[str] = []
    run = run_build(manifest, basic, push=True, keep_going=True, debug=True)
    assert run.code == 7, run.err
    seen += [run.out, run.err, json.dumps(run.report)]
    use_config_auths(monkeypatch, tmp_path, basic.host, PASSWORD + "-wrong")
    wrong = run_build(manifest, basic, push=True, keep_going=True, debug=True)
    assert wrong.code == 6
    seen += [wrong.out, wrong.err, json.dumps(wrong.report)]
    doctor = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), "doctor",
                             "--registry", basic.host, "--debug"], capture_output=True, text=True,
                            env=os.environ.copy(), check=False)
    seen += [doctor.stdout, doctor.stderr]
    for folder in (manifest.parent / ".javabase", manifest.parent / "builds"):
        seen += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    image_id = run.result("glibc-root")["image_id"]
    seen += [json.dumps(engine.inspect_image(image_id)), json.dumps(engine.history(image_id))]
    use_config_auths(monkeypatch, tmp_path, basic.host, PASSWORD)
    reader = admin(basic)
    status, _, config_blob = reader.request("GET", f"/{namespace}/glibc-root/blobs/{image_id}",
                                            scope=f"repository:{namespace}/glibc-root:pull")
    assert status == 200
    seen.append(config_blob.decode(errors="replace"))
    for text in seen:
        for canary in canaries:
            assert canary not in text
    labelled = json.loads(engine.inspect_image(image_id)["Config"]["Labels"]["io.javabase.artifacts"])
    assert labelled[1] == [f"{file_server.url}/notice.txt?X-Amz-Credential=<redacted>&X-Amz-Signature=<redacted>",
                           notice_sha]
    remove_images(engine, f"{basic.host}/{namespace}/")


def test_the_environments_credential_stays_with_the_runs_registry(
    basic: SecureRegistry, example_files: Path, workspace: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, engine: Engine,
) -> None:
    """`invoke lock` of a base in another registry asks that registry's token
    service anonymously, though JAVABASE_REGISTRY_USER is set for the team's."""
    server = TokenServer({"": ("", ["pull"]), "ci": (PASSWORD, ["pull", "push"])})
    with running_token_server(server), secure_registry(tmp_path / "bases", token=server) as bases:
        certs = tmp_path / "certs.d"
        shutil.copytree(basic.certs_dir, certs)
        shutil.copytree(bases.certs_dir / bases.host, certs / bases.host)
        monkeypatch.setenv("JAVABASE_CERTS_DIR", str(certs))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
        upload = Registry(bases.host, Credential("ci", PASSWORD, "test"),
                          env=Environment.read({"JAVABASE_CERTS_DIR": str(certs)}))
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        upload.upload_blob("library/base", config_digest, lambda: config)
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)}, "layers": []}).encode()
        digest = upload.put_manifest("library/base", "1", body, "application/vnd.oci.image.manifest.v1+json")
        server.asked.clear()
        use_env(monkeypatch, tmp_path, basic.host, PASSWORD)
        child = tmp_path / "child"
        child.mkdir()
        (child / "images.yaml").write_text(f"schema: 1\nregistry: {basic.host}\nimages:\n  app:\n"
                                           f"    from: {bases.host}/library/base:1\n    template: layer\n"
                                           "    tags: ['1']\n")
        err = io.StringIO()
        assert common.run(lambda: define.lock(str(child / "images.yaml"), out=io.StringIO()), err=err) == 0, \
            err.getvalue()
        assert json.loads((child / "images.lock.json").read_text())["images"]["app"]["base_digest"] == digest
        assert server.asked and set(server.asked) == {""}  # anonymous only: the CI user went nowhere else
