"""The keys that say how an image behaves when it runs: certificates, the
non-root user, fonts, jvm_options and tests; what they expand to, what they
render, and every problem as one line with file, line and key."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from conftest import SHA_A, SHA_B
from javabase.decide.inputs import compute_inputs
from javabase.decide.labels import stable_labels
from javabase.manifest import eol
from javabase.manifest.model import Account, ImageTest, Manifest
from javabase.plan.render import render_all

Problems = Callable[[str], list[str]]
C64 = "c" * 64

MANIFEST = f"""\
schema: 1
registry: repo.abc.com
defaults:
  certificates:
    - path: certs/company-ca.crt
      sha256: {SHA_A}
  user: {{name: app, uid: 10001}}
  tests:
    - name: runs as the non-root UID
      command: [id, -u]
      stdout: ['^10001$']
images:
  root:
    from: alpine:3.22.6@sha256:{C64}
    template: jre
    packages: [ca-certificates]
    fonts: true
    tags: ["1"]
  jre:
    from: root
    template: jre
    versions:
      - version: 21.0.12_8
        home: jdk-21.0.12+8-jre
        url: https://example.invalid/jre21.tar.gz
        sha256: {SHA_B}
    jvm_options: [-XX:MaxRAMPercentage=75.0, -XX:+ExitOnOutOfMemoryError]
    tests:
      - name: java -version prints its version
        command: [java, -version]
        stderr: ['version "{{major}}[.]']
      - name: runs as the non-root UID
        metadata: {{user: "10001:10001", env: {{LANG: C.UTF-8}}, workdir: /opt}}
      - name: nsswitch
        file: /etc/nsswitch.conf
        mode: "0644"
        owner: "0:0"
        contains: ['^hosts:\\s+files dns']
    tags: ["{{major}}"]
"""


def test_defaults_give_every_image_its_user_and_tests_and_the_outside_built_one_the_ca(
        valid: Callable[[str], Manifest]) -> None:
    manifest = valid(MANIFEST)
    root, jre = manifest.images["root"], manifest.images["jre21"]
    assert [(c.filename, c.dest, c.certificate, c.alias) for c in root.certificates] == [
        ("company-ca.crt", "/tmp/javabase/certificates/", True, "javabase-company-ca")]
    assert jre.certificates == ()  # it inherits the CA from root, which it is built FROM
    assert [(owner.name, cert.filename) for owner, cert in manifest.trusted(jre)] == [("root", "company-ca.crt")]
    assert root.account == jre.account == Account("app", 10001, "app", 10001, "/home/app")
    assert root.user == jre.user == "10001:10001"
    assert (root.fonts, root.font_packages, root.network_mode) == (True, ("fontconfig", "ttf-dejavu"), "default")
    assert dict(jre.env)["JAVA_TOOL_OPTIONS"] == "-XX:MaxRAMPercentage=75.0 -XX:+ExitOnOutOfMemoryError"
    # the image's test of the same name replaces the default's, in the image's place
    assert [t.name for t in jre.tests] == ["java -version prints its version", "runs as the non-root UID",
                                           "nsswitch"]
    version, metadata, nsswitch = jre.tests
    assert (version.kind, version.command, version.stderr, version.key, version.line) == (
        "command", ("java", "-version"), ('version "21[.]',), "images.jre.tests[0]", 29)
    assert (metadata.kind, metadata.user, metadata.env, metadata.workdir) == (
        "metadata", "10001:10001", (("LANG", "C.UTF-8"),), "/opt")
    assert (nsswitch.kind, nsswitch.mode, nsswitch.owner, nsswitch.contains) == (
        "file", 0o644, "0:0", ("^hosts:\\s+files dns",))
    assert [t.name for t in root.tests] == ["runs as the non-root UID"]


def test_the_jre_template_renders_the_ca_import_the_fonts_and_the_user(valid: Callable[[str], Manifest]) -> None:
    rendered = render_all(valid(MANIFEST))
    root, jre = rendered["root/Dockerfile"], rendered["jre21/Dockerfile"]
    assert "RUN apk add --no-cache ca-certificates fontconfig ttf-dejavu" in root.splitlines()
    assert "COPY company-ca.crt /tmp/javabase/certificates/" in root.splitlines()
    assert "update-ca-certificates" in root and root.count("-importcert") == 1
    assert "[ -n \"$(fc-list 2>/dev/null)\" ]" in root
    assert "echo 'app:x:10001:10001::/home/app:/sbin/nologin' >> /etc/passwd" in root
    assert root.splitlines()[-1] == "USER 10001:10001"
    # the child: its own steps as root, the CA its parent brought into its new JRE, no second account
    lines = jre.splitlines()
    assert lines[lines.index("FROM ${JAVABASE_PARENT}") + 2] == "USER 0"
    assert "-importcert" in jre and "COPY company-ca.crt" not in jre and "/etc/passwd" not in jre
    assert lines[-1] == "USER 10001:10001"
    assert "java" not in "".join(line for line in lines if line.startswith("RUN ["))  # java -version is a test now


def test_a_child_without_a_user_of_its_own_runs_as_its_parent_again(valid: Callable[[str], Manifest]) -> None:
    text = MANIFEST.replace("  user: {name: app, uid: 10001}\n", "") + textwrap.indent(textwrap.dedent("""\
        app:
          from: jre21
          template: layer
          tags: ["1"]
        """), "  ")
    text = text.replace("    fonts: true\n", "    fonts: true\n    user: {name: app, uid: 10001}\n")
    rendered = render_all(valid(text))
    for name in ("jre21", "app"):
        lines = rendered[f"{name}/Dockerfile"].splitlines()
        assert "USER 0" in lines and lines[-1] == "USER 10001:10001", name


def test_certificates_tests_and_fonts_are_inputs_and_labels(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(MANIFEST)
    before = compute_inputs(manifest, list(manifest.images), render_all(manifest))
    assert before["jre21"].parts["tests"] and "artifact company-ca.crt" in before["root"].parts
    labels = stable_labels(manifest, manifest.images["jre21"])
    assert labels["io.javabase.certificates"] == f'[["company-ca.crt", "{SHA_A}", "root"]]'
    assert labels["io.javabase.tests"] == ('["java -version prints its version", "runs as the non-root UID", '
                                           '"nsswitch"]')
    # a new CA or a changed test rebuilds the image and, through it, what is built FROM it
    for changed, rebuilt in ((MANIFEST.replace(f"sha256: {SHA_A}", f"sha256: {C64}"), {"root", "jre21"}),
                             (MANIFEST.replace("'^10001$'", "'^10002$'"), {"root", "jre21"}),
                             (MANIFEST.replace("owner: \"0:0\"", "owner: \"0:1\""), {"jre21"})):
        other = valid(changed)
        after = compute_inputs(other, list(other.images), render_all(other))
        assert {n for n in after if after[n].digest != before[n].digest} == rebuilt


@pytest.mark.parametrize(("change", "expected"), [
    (("  user: {name: app, uid: 10001}", "  user: {name: app, uid: 0}"),
     "images.yaml:7: defaults.user.uid: 0 is less than the minimum of 1"),
    (("  user: {name: app, uid: 10001}", "  user: {name: App, uid: 1}"),
     "images.yaml:7: defaults.user.name: 'App' is not a user name (lower-case letters, digits, '_' and '-', up to "
     "32, not starting with a digit or '-')"),
    (("  user: {name: app, uid: 10001}", "  user: {name: app, uid: 1, home: '/home/a b'}"),
     "images.yaml:7: defaults.user.home: home '/home/a b' has a space or tab, which would make it several "
     "arguments of its instruction"),
    (("  user: {name: app, uid: 10001}", "  user: {name: app, uid: 1, home: /home/../etc}"),
     "images.yaml:7: defaults.user.home: home '/home/../etc' is not a directory of its own; give an absolute path "
     "such as /home/app, without . or .. components"),
    (("  user: {name: app, uid: 10001}", "  user: {name: app, uid: 1, home: /}"),
     "images.yaml:7: defaults.user.home: home '/' is not a directory of its own; give an absolute path such as "
     "/home/app, without . or .. components"),
    (("  user: {name: app, uid: 10001}", "  user: [app]"),
     "images.yaml:7: defaults.user: expected a string or a mapping, got a list"),
    (("certs/company-ca.crt", "certs/company-ca.der"),
     "images.yaml:5: defaults.certificates[0]: certificate file 'company-ca.der' does not end in .crt or .pem; "
     "give it a `name` that does (its alias is the name without it)"),
    (("certs/company-ca.crt", "../company-ca.crt"),
     "images.yaml:5: defaults.certificates[0].path: path '../company-ca.crt' leaves the manifest's directory; put "
     "the file next to the manifest (or below it) and name it relative to the manifest"),
    (("    fonts: true\n", "    fonts: [font-noto, 'x y']\n"),
     "images.yaml:17: images.root.fonts[1]: package 'x y' is not a package name (optionally =version)"),
    (("-XX:+ExitOnOutOfMemoryError", "Xmx1g"),
     "images.yaml:27: images.jre.jvm_options[1]: JVM option 'Xmx1g' must start with '-' and hold no space "
     "(JAVA_TOOL_OPTIONS is split at spaces); one option per item"),
    (("      - name: nsswitch\n", "      - name: nsswitch\n        command: [cat]\n"),
     "images.yaml:34: images.jre.tests[2]: test 'nsswitch' has command and file of command, file and metadata; "
     "give exactly one"),
    (("        mode: \"0644\"\n", "        mode: \"0644\"\n        exit_code: 1\n"),
     "images.yaml:37: images.jre.tests[2].exit_code: exit_code is for a command test, and test 'nsswitch' is a "
     "file test"),
    (("        contains: ['^hosts:\\s+files dns']", "        contains: ['^hosts:(']"),
     "images.yaml:38: images.jre.tests[2].contains[0]: '^hosts:(' is not a regular expression: missing ), "
     "unterminated subpattern at position 7; fix it, or escape the character with a backslash"),
    (("        file: /etc/nsswitch.conf\n", "        file: /etc/nsswitch.conf\n        exists: false\n"),
     "images.yaml:34: images.jre.tests[2]: test 'nsswitch' says the file must not exist, and gives what it must be "
     "like; drop mode, owner and contains, or exists: false"),
    (("        file: /etc/nsswitch.conf\n", "        file: etc/nsswitch.conf\n"),
     "images.yaml:35: images.jre.tests[2].file: file 'etc/nsswitch.conf' is not an absolute path; start it with /"),
    (("      - name: nsswitch\n", "      - name: java -version prints its version\n"),
     "images.yaml:34: images.jre.tests[2].name: test 'java -version prints its version' is declared twice here; "
     "rename one"),
    (("        mode: \"0644\"\n", "        mode: \"rw\"\n"),
     "images.yaml:36: images.jre.tests[2].mode: 'rw' is not an octal mode such as '0644'"),
    # wrong types are the schema's to report, and nothing after it trips over them
    (("        command: [java, -version]\n", "        command: [java, -version]\n        exit_code: x\n"),
     "images.yaml:31: images.jre.tests[0].exit_code: expected a whole number, got 'x'"),
    (("        command: [java, -version]\n", "        command: [java, -version]\n        timeout: true\n"),
     "images.yaml:31: images.jre.tests[0].timeout: expected a whole number, got true (a boolean)"),
    (("  user: {name: app, uid: 10001}", "  user: {name: app, uid: true}"),
     "images.yaml:7: defaults.user.uid: expected a whole number, got true (a boolean)"),
    (("stderr: ['version \"{major}[.]']", "stderr: ['version \"{majr}[.]']"),
     "images.yaml:31: images.jre.tests[0].stderr[0]: unknown placeholder {majr}; available here: {entry}, {home}, "
     "{major}, {name}, {version} (write ${majr} for a Docker variable)"),
])
def test_each_problem_is_one_line_with_its_key(problems: Problems, change: tuple[str, str], expected: str) -> None:
    assert change[0] in MANIFEST
    assert problems(MANIFEST.replace(*change)) == [expected]


def test_fonts_on_the_alpine_glibc_line_are_refused_with_the_reports(problems: Problems) -> None:
    text = MANIFEST.replace("    template: jre\n    packages: [ca-certificates]\n    fonts: true\n",
                            "    template: alpine-glibc\n    packages: [ca-certificates]\n") \
        .replace("    jvm_options:", "    fonts: true\n    jvm_options:")
    assert problems(text) == [
        "images.yaml:26: images.jre.fonts: fonts cannot work on the alpine-glibc line: Alpine's fontconfig is "
        "built for musl, and a glibc JVM finds no font or loads it and crashes (AdoptOpenJDK/openjdk-docker#520, "
        "bell-sw/Liberica#25); give fonts to an image with a musl JRE (the jre*-alpine ones) or a Debian root"]


def test_fonts_as_a_list_on_a_template_without_a_package_manager_is_refused(problems: Problems) -> None:
    text = MANIFEST.replace("    template: jre\n    packages: [ca-certificates]\n    fonts: true\n",
                            "    template: layer\n    fonts: [font-noto]\n")
    assert problems(text) == [
        "images.yaml:16: images.root.fonts: template 'layer' installs no packages; write `fonts: true` (the image "
        "then only checks that fontconfig finds a font, which its base must bring)"]


def test_jvm_options_and_an_env_of_the_same_variable_are_refused(problems: Problems) -> None:
    text = MANIFEST.replace("    jvm_options:", "    env: {JAVA_TOOL_OPTIONS: -Xss1m}\n    jvm_options:")
    assert problems(text) == [
        "images.yaml:28: images.jre.jvm_options: env sets JAVA_TOOL_OPTIONS too, which jvm_options writes; give the "
        "options in one place"]


def test_validate_warns_about_a_base_past_its_end_of_life(write_manifest: Callable[[str], Path]) -> None:
    import io

    from javabase.cli.define import validate

    path = write_manifest(MANIFEST.replace("alpine:3.22.6@", "alpine:3.20.10@"))
    out, err = io.StringIO(), io.StringIO()
    assert validate(str(path), out, err, today=date(2026, 11, 30)) == 0
    assert out.getvalue() == "images.yaml: ok, 2 images\n"
    assert err.getvalue() == (
        "warning: images.yaml:14: images.root.from: alpine 3.20 is past its end of life (security support ended "
        "2026-04-01); move to alpine 3.22 (supported until 2027-05-01)\n")
    out, err = io.StringIO(), io.StringIO()
    assert validate(str(write_manifest(MANIFEST)), out, err, today=date(2026, 11, 30)) == 0
    assert err.getvalue() == ""


def test_the_committed_manifest_is_on_supported_bases() -> None:
    from javabase.manifest.load import load_manifest
    from paths import PROJECT_ROOT

    manifest = load_manifest(PROJECT_ROOT / "images.yaml")
    assert eol.warnings(manifest, date(2026, 11, 30)) == []


def test_an_image_test_record_says_its_kind() -> None:
    assert ImageTest("a", "k", 1, command=("x",)).kind == "command"
    assert ImageTest("a", "k", 1, file="/x").kind == "file"
    assert ImageTest("a", "k", 1, metadata=True).kind == "metadata"


CERTS = """\
schema: 1
registry: r:5000
images:
  root:
    from: scratch
    template: layer
    certificates:
      - path: {name}
        sha256: {sha}
    tags: ["1"]
"""


@pytest.mark.parametrize(("content", "why"), [
    (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIE\n"
     b"-----END PRIVATE KEY-----\n",
     "holds a private key, which would be baked into the image for everyone who pulls it; give the CA's certificate "
     "alone. Nothing was built"),
    (b"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
     "holds a private key, which would be baked into the image for everyone who pulls it; give the CA's certificate "
     "alone. Nothing was built"),
    (b"0\x82\x01\x0a\x02\x82",
     "holds no PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----); convert a DER file with "
     "`openssl x509 -inform der`. Nothing was built"),
])
def test_a_certificate_file_with_a_key_or_without_a_certificate_stops_the_run_before_any_build(
        valid: Callable[[str], Manifest], tmp_path: Path, content: bytes, why: str) -> None:
    import hashlib

    from test_builder import builder

    from fakes import FakeBackend
    from javabase.errors import ArtifactError

    (tmp_path / "ca.crt").write_bytes(content)
    manifest = valid(CERTS.format(name="ca.crt", sha=hashlib.sha256(content).hexdigest()))
    backend = FakeBackend()
    with pytest.raises(ArtifactError) as caught:
        builder(manifest, backend, tmp_path).run()
    assert str(caught.value) == f"images.yaml:8: images.root.certificates[0]: ca.crt {why}"
    assert caught.value.exit_code == 4
    assert backend.built == []


def test_inspect_lists_the_cas_an_image_trusts_and_its_tests(valid: Callable[[str], Manifest]) -> None:
    from fakes import FakeBackend
    from javabase.decide.labels import build_labels
    from javabase.release.inspection import as_text, describe

    manifest = valid(MANIFEST)
    labels = build_labels(manifest, manifest.images["jre21"], created="2026-11-30T00:00:00Z", revision="abc",
                          parent_id=None, input_digest="sha256:" + "1" * 64, inputs_label="{}")
    backend = FakeBackend()
    image_id = backend.add_image(b"jre", labels=labels)
    backend.tag(image_id, "repo.abc.com/jre21:21")
    info = describe(backend, "repo.abc.com/jre21:21", manifest, lambda host: None)  # type: ignore[arg-type,return-value]
    assert info["certificates"] == [{"source": "company-ca.crt", "sha256": SHA_A, "from": "root"}]
    assert info["tests"] == ["java -version prints its version", "runs as the non-root UID", "nsswitch"]
    text = as_text(info).splitlines()
    assert f"  certificate: company-ca.crt sha256:{SHA_A} (from root)" in text
    assert "  test: nsswitch" in text
