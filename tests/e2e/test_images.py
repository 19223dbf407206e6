"""Images a platform team can ship, on the real engine and registry: a company CA
that an HTTPS call inside the container trusts (and fails without), a bundle
split into its certificates, text rendered with a font, and each field report
as a build that fails with one line and tags nothing: a glibc loader that is
musl's, a root without fonts, a LANG whose locale does not exist, a test
command that exits 1. `invoke test` runs the tests on built images."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from docker import APIClient as Engine

from javabase.build.backends.docker_sdk import connect
from javabase.build.image_tests import probe_files
from javabase.cli import common, ship
from paths import PROJECT_ROOT

from .conftest import LocalRegistry, Run

ROOT = """\
schema: 1
registry: repo.abc.com
namespace: example
images:
  glibc-root:
    from: scratch
    template: rootfs
    artifacts:
      - path: files/{rootfs}
        sha256: {sha}
        dest: /
        unpack: true
    env:
      PATH: /usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
    run: ["ldconfig"]
{extra}    tags: ["1"]
"""


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def variant(example_files: Path, target: Path, keep: Callable[[tarfile.TarInfo], bool],
            add: Iterable[tuple[tarfile.TarInfo, bytes | None]] = ()) -> str:
    """The example's rootfs without the entries `keep` refuses and with `add`, written to target; its sha256."""
    with tarfile.open(example_files / "files" / "glibc-rootfs.tar.gz") as source, \
            gzip.open(target, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as out:
        for member in source:
            if keep(member):
                out.addfile(member, source.extractfile(member) if member.isreg() else None)
        for info, data in add:
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    return sha_of(target)


def entry(name: str, data: bytes | None = None, link: str = "", mode: int = 0o755) -> tuple[tarfile.TarInfo,
                                                                                            bytes | None]:
    info = tarfile.TarInfo(name)
    if link:
        info.type, info.linkname = tarfile.SYMTYPE, link
    elif data is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(data)
    info.mode = mode
    return info, data


@pytest.fixture(scope="session")
def musl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's musl package, unpacked: the libc that Alpine's libc6-compat puts behind glibc's loader path."""
    work = tmp_path_factory.mktemp("musl")
    subprocess.run(["apt-get", "download", "musl"], cwd=work, check=True, capture_output=True)
    deb = next(work.glob("musl_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
    return work / "root"


def failed_without_tags(run: Run, engine: Engine, registry: LocalRegistry, namespace: str) -> None:
    """Exit 7, nothing in the registry and no tag of the run in the engine."""
    assert run.code == 7, run.err
    assert run.err.count("\n") == 1
    assert registry.tagged(namespace) == {}
    assert [t for i in engine.images() for t in i.get("RepoTags") or [] if f"/{namespace}/" in t] == []


MUSL_LOADER = ("/lib64/ld-linux-x86-64.so.2",
               "glibc: /lib64/ld-linux-x86-64.so.2 leads to /lib/x86_64-linux-musl/libc.so, not to glibc's loader (it "
               "says: musl libc (x86_64)); link it to glibc's ld.so")
MUSL_LIBC = ("/lib/libc.so.6",
             "glibc: the linker cache gives /lib/libc.so.6, which is musl's (/lib/x86_64-linux-musl/libc.so); run "
             "glibc's ldconfig on glibc's directories only")


@pytest.mark.parametrize(("link", "why"), [MUSL_LOADER, MUSL_LIBC], ids=["loader", "linker-cache"])
def test_musl_behind_a_glibc_name_fails_the_build_with_one_line(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], musl: Path, tmp_path: Path, link: str, why: str,
) -> None:
    """What Alpine's libc6-compat does to sgerrand's glibc 2.35 (sgerrand/alpine-pkg-glibc#175, #181,
    #183): /lib64/ld-linux-x86-64.so.2, or /lib/libc.so.6 that ldconfig then indexes, is musl's. The
    template's check says which and stops the build."""
    libc = (musl / "lib" / "x86_64-linux-musl" / "libc.so").read_bytes()
    sha = variant(example_files, tmp_path / "files" / "musl.tar.gz", lambda m: m.name != link.lstrip("/"),
                  [entry("lib/x86_64-linux-musl"), entry("lib/x86_64-linux-musl/libc.so", libc),
                   entry("lib/ld-musl-x86_64.so.1", link="x86_64-linux-musl/libc.so"),
                   entry(link.lstrip("/"), link="/lib/ld-musl-x86_64.so.1")])
    manifest = workspace(ROOT.format(rootfs="musl.tar.gz", sha=sha, extra=""))
    run = build(manifest, push=True)
    failed_without_tags(run, engine, registry, workspace.namespace)  # type: ignore[attr-defined]
    assert run.result("glibc-root")["reason"].endswith(f"): {why}")
    assert run.err.startswith("error: 1 image(s) failed, 0 skipped; first failure: glibc-root: step 5/")


def test_fonts_without_a_font_fail_the_build_and_with_one_text_is_measured_and_drawn(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], tmp_path: Path,
) -> None:
    sha = variant(example_files, tmp_path / "files" / "no-fonts.tar.gz",
                  lambda m: not m.name.startswith("usr/share/fonts/"))
    manifest = workspace(ROOT.format(rootfs="no-fonts.tar.gz", sha=sha, extra="    fonts: true\n"))
    run = build(manifest, push=True)
    failed_without_tags(run, engine, registry, workspace.namespace)  # type: ignore[attr-defined]
    assert run.result("glibc-root")["reason"].endswith(
        "): fonts: fontconfig (fc-list) finds no font in this image; install fontconfig and a font package")

    # The example's root brings Debian's fontconfig and DejaVu: FontMetric (javabase's probe) measures
    # and draws text in its JRE image, run through the backend as an image test runs it.
    manifest = workspace((example_files / "images.yaml").read_text())
    run = build(manifest, "jre25")
    assert run.code == 0, run.err
    backend = connect(os.environ["DOCKER_HOST"])
    ran = backend.run(run.result("jre25")["image_id"], ["java", "-cp", "/javabase-probes", "FontMetric"],
                      probe_files(), 120)
    assert ran.exit_code == 0, ran.stderr
    lines = dict(line.split("=", 1) for line in ran.stdout.splitlines())
    assert "DejaVu Sans" in lines["families"].split(",")
    assert int(lines["width"]) > 50 and int(lines["drawn"]) > 100
    assert engine.containers(all=True, filters={"ancestor": run.result("jre25")["image_id"]}) == []


def test_a_lang_whose_locale_does_not_exist_fails_the_jre_and_nothing_is_pushed(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run],
) -> None:
    """Java takes sun.jnu.encoding (file names, arguments) from the locale: with a LANG the root
    cannot load it falls back to ASCII, and the example's encoding test catches it."""
    text = (example_files / "images.yaml").read_text().replace("    LANG: C.UTF-8\n", "    LANG: xx_XX.UTF-8\n")
    manifest = workspace(text)
    run = build(manifest, push=True)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    assert run.code == 7, run.err
    assert run.statuses() == {"glibc-root": "built", "jre25": "failed", "jre25-slim": "failed",
                              "app-base": "skipped"}
    why = ("test 'file.encoding and sun.jnu.encoding are UTF-8' failed: stderr does not match "
           "'sun\\.jnu\\.encoding = UTF-8' (it begins: Property settings:)")
    assert run.result("jre25")["reason"] == run.result("jre25-slim")["reason"] == why
    assert run.err.startswith(f"error: 2 image(s) failed, 1 skipped; first failure: jre25: {why}; full log: ")
    assert registry.tagged(namespace) == {}
    assert [t for i in engine.images() for t in i.get("RepoTags") or [] if f"/{namespace}/jre25" in t] == []


def test_a_test_command_that_exits_1_fails_the_image_skips_its_dependents_and_invoke_test_says_so(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run],
) -> None:
    sha = (example_files / "files" / "glibc-rootfs.tar.gz.stamp").read_text().split()[1]
    failing = ("    tests:\n      - name: the team's smoke test\n        command: [sh, -c, 'echo no >&2; exit 1']\n")
    child = "  child:\n    from: glibc-root\n    template: layer\n    tags: [\"1\"]\n"
    manifest = workspace(ROOT.format(rootfs="glibc-rootfs.tar.gz", sha=sha, extra=failing) + child)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True)
    failed_without_tags(run, engine, registry, namespace)
    assert run.statuses() == {"glibc-root": "failed", "child": "skipped"}
    assert run.err == ("error: 1 image(s) failed, 1 skipped; first failure: glibc-root: test \"the team's smoke "
                       f"test\" failed: exit code 1, expected 0 (no); full log: {run.result('glibc-root')['log']}\n")
    # the image that failed is gone: the next run builds (and tests) it again, it does not reuse it
    assert engine.images(filters={"label": f"io.javabase.input-digest={run.result('glibc-root')['input_digest']}"}) \
        == []
    again = build(manifest)
    assert again.code == 7 and again.result("glibc-root")["built_because"] == "build: no earlier build of this image"

    # invoke test on images built before: the fixed manifest builds; then the test, changed, fails there
    manifest.write_text(manifest.read_text().replace("exit 1", "exit 0"))
    assert build(manifest).code == 0
    out, err = io.StringIO(), io.StringIO()
    code = common.run(lambda: ship.test(str(manifest), ["glibc-root"], registry=registry.host, out=out), err=err)
    assert (code, err.getvalue()) == (0, "")
    assert out.getvalue().splitlines()[-1] == "1 test(s) passed in 1 image(s)"
    manifest.write_text(manifest.read_text().replace("exit 0", "exit 3"))
    out, err = io.StringIO(), io.StringIO()
    code = common.run(lambda: ship.test(str(manifest), [], registry=registry.host, out=out), err=err)
    assert code == 7
    assert err.getvalue() == ("error: 1 of 1 test(s) failed; first: glibc-root: test \"the team's smoke test\": "
                              "exit code 3, expected 0 (no)\n")
    assert "child: no tests declared" in out.getvalue()


def test_invoke_test_names_what_is_not_built(
    example_files: Path, workspace: Callable[[str], Path], registry: LocalRegistry,
) -> None:
    manifest = workspace((example_files / "images.yaml").read_text())
    namespace = workspace.namespace  # type: ignore[attr-defined]
    err = io.StringIO()
    code = common.run(lambda: ship.test(str(manifest), ["jre25"], registry=registry.host, out=io.StringIO()),
                      err=err)
    assert code == 9
    assert err.getvalue() == (f"error: not built on this engine: jre25 ({registry.host}/{namespace}/jre25:25); "
                              "run `invoke build` first. Nothing was tested\n")


@pytest.fixture(scope="session")
def tls_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tls-probe")
    subprocess.run(["javac", "--release", "11", "-d", str(out), str(PROJECT_ROOT / "tests" / "data" / "java" /
                                                                     "TlsProbe.java")], check=True)
    return out / "TlsProbe.class"


def test_an_https_call_inside_the_container_trusts_the_company_ca_only_with_certificates(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], tls_probe: Path, tmp_path: Path,
) -> None:
    """The server (jdk.httpserver, on the container's own loopback) presents a certificate the
    company CA signed; the client uses the JVM's default trust store. The CA comes as a bundle
    with another CA: both certificates go in, each under its own alias."""
    import trustme
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509 import load_pem_x509_certificate

    company, other = trustme.CA(organization_name="ABC Company"), trustme.CA(organization_name="Other")
    server = company.issue_cert("localhost")
    files = tmp_path / "files"
    (files / "company-bundle.pem").write_bytes(other.cert_pem.bytes() + company.cert_pem.bytes())
    (files / "server.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"server", serialization.load_pem_private_key(server.private_key_pem.bytes(), None),
        load_pem_x509_certificate(server.cert_chain_pems[0].bytes()), None,
        serialization.BestAvailableEncryption(b"s3rver")))
    (files / "TlsProbe.class").write_bytes(tls_probe.read_bytes())
    probe = ("    artifacts:\n"
             f"      - {{path: files/TlsProbe.class, sha256: {sha_of(tls_probe)}, dest: /opt/tls/}}\n"
             f"      - {{path: files/server.p12, sha256: {sha_of(files / 'server.p12')}, dest: /opt/tls/}}\n")
    call = "        command: [java, -cp, /opt/tls, TlsProbe, /opt/tls/server.p12, s3rver]\n"
    manifest = workspace((example_files / "images.yaml").read_text() + (
        "  tls-trusting:\n    from: jre25\n    template: layer\n" + probe +
        "    certificates:\n"
        f"      - {{path: files/company-bundle.pem, sha256: {sha_of(files / 'company-bundle.pem')}}}\n"
        "    tests:\n      - name: an HTTPS call to a server the company CA signed\n" + call +
        "        stdout: ['^status=200 body=hello from the company$']\n"
        "      - name: each certificate of the bundle has its alias\n"
        "        command: [sh, -c, 'keytool -list -cacerts -storepass changeit | grep ^javabase-']\n"
        "        stdout: ['^javabase-company-bundle-1,', '^javabase-company-bundle-2,', '^javabase-company-ca,']\n"
        "    tags: [\"1\"]\n"
        "  tls-plain:\n    from: jre25\n    template: layer\n" + probe +
        "    tests:\n      - name: without the CA the call fails\n" + call +
        "        exit_code: 1\n"
        "        stdout: ['^failed=javax[.]net[.]ssl[.]SSLHandshakeException: .*PKIX path building failed']\n"
        "    tags: [\"1\"]\n"))
    run = build(manifest, "tls-trusting", "tls-plain", push=True)
    assert run.code == 0, run.err
    for name in ("tls-trusting", "tls-plain"):
        assert run.result(name)["status"] == "pushed"
    # the same calls, run here through the backend: what the tests saw
    backend = connect(os.environ["DOCKER_HOST"])
    words = call.split("[")[1].rstrip("]\n").split(", ")
    trusting = backend.run(run.result("tls-trusting")["image_id"], words, {}, 120)
    plain = backend.run(run.result("tls-plain")["image_id"], words, {}, 120)
    assert (trusting.exit_code, trusting.stdout) == (0, "status=200 body=hello from the company\n")
    assert plain.exit_code == 1 and "PKIX path building failed" in plain.stdout
    # the OS trust store has both certificates too, and the labels list every CA with the image that brought it
    bundle = backend.run(run.result("tls-trusting")["image_id"], ["cat", "/etc/ssl/certs/ca-certificates.crt"], {},
                         60)
    assert company.cert_pem.bytes().decode().strip() in bundle.stdout
    assert other.cert_pem.bytes().decode().strip() in bundle.stdout
    labels = engine.inspect_image(run.result("tls-trusting")["image_id"])["Config"]["Labels"]
    assert [(source, owner) for source, _, owner in json.loads(labels["io.javabase.certificates"])] == [
        ("company-ca.crt", "glibc-root"), ("company-bundle.pem", "tls-trusting")]
