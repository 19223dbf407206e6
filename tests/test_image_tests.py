"""Declared image tests: the pure checks of what a command, a path or the image's
configuration gave, and the run with the in-memory backend: tests run between
build and tag, a failure fails the image with one line, skips its dependents,
pushes nothing and removes the untested image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_builder import builder, statuses

from fakes import FakeBackend, FakeRegistry
from javabase.build.image_tests import (
    PROBES,
    check_command,
    check_file,
    check_metadata,
    pass_before_tagging,
    probe_files,
)
from javabase.engine import LocalImage, PathInfo, Ran
from javabase.errors import StepError
from javabase.manifest.model import ImageTest, Manifest

COMMAND = ImageTest("java starts", "images.jre.tests[0]", 3, command=("java", "-version"),
                    stderr=(r'version "21\.',), excluded_stderr=("Picked up",))


@pytest.mark.parametrize(("ran", "failure"), [
    (Ran(0, "", 'openjdk version "21.0.12" 2025-07-15\n'), None),
    (Ran(None, "", ""), "'java -version' did not finish within 120 s and was killed"),
    (Ran(127, "", "sh: java: not found\n"), "exit code 127, expected 0 (sh: java: not found)"),
    (Ran(1, "", ""), "exit code 1, expected 0"),
    (Ran(0, "", 'openjdk version "17.0.20"\n'),
     "stderr does not match 'version \"21\\.' (it begins: openjdk version \"17.0.20\")"),
    (Ran(0, "", 'Picked up JAVA_TOOL_OPTIONS: -Xss1m\nopenjdk version "21.0.12"\n'),
     "stderr matches 'Picked up', which it must not (it begins: Picked up JAVA_TOOL_OPTIONS: -Xss1m)"),
])
def test_a_command_passes_or_says_why_not(ran: Ran, failure: str | None) -> None:
    assert check_command(COMMAND, ran) == failure


def test_a_long_output_line_is_cut_in_the_failure() -> None:
    assert check_command(COMMAND, Ran(2, "x" * 500, "")) == f"exit code 2, expected 0 ({'x' * 160}...)"


FILE = ImageTest("nsswitch", "k", 1, file="/etc/nsswitch.conf", mode=0o644, owner="0:0",
                 contains=(r"^hosts:\s+files dns",))


@pytest.mark.parametrize(("info", "failure"), [
    (PathInfo("file", 0o644, 0, 0, text=b"passwd: files\nhosts: files dns\n"), None),
    (None, "/etc/nsswitch.conf does not exist"),
    (PathInfo("file", 0o600, 0, 0), "/etc/nsswitch.conf has mode 0600, expected 0644"),
    (PathInfo("file", 0o644, 10001, 10001), "/etc/nsswitch.conf is owned by 10001:10001, expected 0:0"),
    (PathInfo("directory", 0o644, 0, 0), "/etc/nsswitch.conf is a directory, not a file whose text can be searched"),
    (PathInfo("file", 0o644, 0, 0, text=b"hosts: dns files\n"),
     "/etc/nsswitch.conf does not match '^hosts:\\s+files dns' (it begins: hosts: dns files)"),
])
def test_a_file_passes_or_says_why_not(info: PathInfo | None, failure: str | None) -> None:
    assert check_file(FILE, info) == failure


def test_a_file_that_must_not_exist() -> None:
    absent = ImageTest("no key", "k", 1, file="/root/.ssh/id_rsa", exists=False)
    assert check_file(absent, None) is None
    assert check_file(absent, PathInfo("file", 0o600, 0, 0)) == "/root/.ssh/id_rsa exists (a file), and must not"


META = ImageTest("runs as app", "k", 1, metadata=True, user="10001:10001", env=(("LANG", "C.UTF-8"),), workdir="/opt")


@pytest.mark.parametrize(("image", "failure"), [
    (LocalImage("i", user="10001:10001", env=(("PATH", "/bin"), ("LANG", "C.UTF-8")), workdir="/opt"), None),
    (LocalImage("i", env=(("LANG", "C.UTF-8"),), workdir="/opt"),
     "the image's user is 'root (none set)', expected '10001:10001'"),
    (LocalImage("i", user="10001:10001", workdir="/opt"), "the image does not set LANG (expected 'C.UTF-8')"),
    (LocalImage("i", user="10001:10001", env=(("LANG", "POSIX"),), workdir="/opt"),
     "the image sets LANG='POSIX', expected 'C.UTF-8'"),
    (LocalImage("i", user="10001:10001", env=(("LANG", "C.UTF-8"),)),
     "the image's workdir is '/ (none set)', expected '/opt'"),
])
def test_the_configuration_passes_or_says_why_not(image: LocalImage, failure: str | None) -> None:
    assert check_metadata(META, image) == failure


def test_the_probes_are_the_compiled_sources(tmp_path: Path) -> None:
    """javabase ships each probe's source and its class (Java 8 bytecode, so that every JRE runs it);
    javac --release 8 of the source gives the committed class."""
    import shutil
    import subprocess

    assert sorted(probe_files()) == ["/javabase-probes/FontMetric.class"]
    if shutil.which("javac") is None:
        pytest.fail("javac is needed (scripts/test.sh installs openjdk-17-jdk-headless)", pytrace=False)
    subprocess.run(["javac", "--release", "8", "-d", str(tmp_path), str(PROBES / "FontMetric.java")], check=True,
                   capture_output=True)
    class_file = (tmp_path / "FontMetric.class").read_bytes()
    assert class_file[6:8] == b"\x00\x34"  # major version 52: Java 8
    assert class_file == (PROBES / "FontMetric.class").read_bytes()


TREE = """\
schema: 1
registry: r:5000
images:
  root:
    from: scratch
    template: layer
    tests:
      - {name: smoke, command: [sh, -c, exit 1]}
      - {name: probes, command: [java, -cp, /javabase-probes, FontMetric]}
      - {name: nsswitch, file: /etc/nsswitch.conf}
    tags: ["1"]
  child: {from: root, template: layer, tags: ["1"]}
  other: {from: scratch, template: layer, tags: ["1"], tests: [{name: fine, command: ["true"]}]}
"""


def test_a_failing_test_fails_its_image_skips_its_dependents_and_nothing_is_tagged_or_pushed(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    backend = FakeBackend(answers={"sh -c exit 1": Ran(1, "", "no\n")})
    registry = FakeRegistry()
    run = builder(valid(TREE), backend, tmp_path, registry=registry)
    report = run.run()
    assert statuses(run) == {"root": "failed", "other": "built", "child": "skipped"}
    assert report.results["root"].reason == "test 'smoke' failed: exit code 1, expected 0 (no) (and 1 more test(s) " \
                                            "failed; see the log)"
    # every test ran (in its order), the probes only where the command names them
    assert [(title, command, files) for title, command, files in backend.ran if title == "root"] == [
        ("root", ("sh", "-c", "exit 1"), ()),
        ("root", ("java", "-cp", "/javabase-probes", "FontMetric"), ("/javabase-probes/FontMetric.class",))]
    assert "test 'nsswitch': FAILED: /etc/nsswitch.conf does not exist" in report.results["root"].log
    assert not any(ref.startswith("r:5000/root") for ref in backend.tags)
    assert report.notes == ["nothing was pushed: root, child did not build (with --keep-going the images that did "
                            "build are pushed)"]
    assert registry.manifests_put == []
    # the untested image is gone: a second run builds and tests it again instead of reusing it
    assert report.results["root"].image_id not in backend.stored
    again = builder(valid(TREE), backend, tmp_path, registry=registry).run()
    assert again.results["root"].changed == "build: no earlier build of this image"


def test_passing_tests_let_the_image_be_tagged(valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    backend = FakeBackend(paths={"/etc/nsswitch.conf": PathInfo("file", 0o644, 0, 0, text=b"hosts: files dns\n")})
    run = builder(valid(TREE.replace("exit 1", "exit 0")), backend, tmp_path)
    run.run()
    assert statuses(run) == {"root": "built", "other": "built", "child": "built"}
    assert backend.tags["r:5000/root:1"] == run.results["root"].image_id


def test_an_image_that_something_tags_already_is_not_removed(valid: Callable[[str], Manifest]) -> None:
    backend = FakeBackend(answers={"sh -c exit 1": Ran(1, "", "")})
    image = valid(TREE).images["root"]
    image_id = backend.add_image(b"x", labels={"org.opencontainers.image.title": "root"})
    backend.tag(image_id, "r:5000/root:1")
    lines: list[str] = []
    with pytest.raises(StepError) as caught:
        pass_before_tagging(backend, image, image_id, lines.append)
    assert str(caught.value) == "test 'smoke' failed: exit code 1, expected 0 (and 1 more test(s) failed; see the log)"
    assert image_id in backend.stored
    assert lines[0] == "test 'smoke': FAILED: exit code 1, expected 0"
    assert len(lines) == 3
