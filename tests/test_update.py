"""`invoke update`'s pure parts, without a network: Temurin's names and version
order, the API's answers read (and refused), the items and bases a manifest has,
the edits made in place, the end-of-life table refreshed, the key read. The
whole command against real servers is tests/e2e/test_update.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from javabase.errors import ArtifactError, ManifestError, UpstreamError
from javabase.manifest.load import load_manifest
from javabase.manifest.model import Manifest
from javabase.manifest.yamlsource import load
from javabase.release import adoptium, signature, yamledit
from javabase.release import update as upd
from javabase.release.adoptium import Query
from paths import PROJECT_ROOT

API = "https://api.example.invalid"


@pytest.mark.parametrize(("older", "newer"), [
    ("8u412b08", "8u502b07"), ("17.0.9_9", "17.0.11_9"), ("17.0.4_8", "17.0.4.1_1"), ("25.0.2", "25.0.3_9"),
    ("21.0.12_7", "21.0.12_8"), ("8u412-b08", "8u412b09"),
])
def test_temurin_versions_are_ordered_as_releases(older: str, newer: str) -> None:
    old, new = adoptium.version_key(older), adoptium.version_key(newer)
    assert old is not None and new is not None and old < new


def test_release_names_become_the_versions_file_names_use() -> None:
    assert adoptium.file_version("jdk-17.0.11+9") == "17.0.11_9"
    assert adoptium.file_version("jdk8u412-b08") == "8u412b08"
    assert adoptium.version_key("latest") is None


def committed() -> tuple[Manifest, Any]:
    path = PROJECT_ROOT / "images.yaml"
    return load_manifest(path), load(path.read_text(), "images.yaml")


def test_the_committed_manifests_temurin_items_are_found_with_what_to_ask_for() -> None:
    manifest, doc = committed()
    found, notes = upd.items(manifest, doc, set(manifest.images), None)
    assert notes == []
    assert {item.image: item.query for item in found} == {
        "jre8": Query(8, "jre", "linux", ("x64",)), "jre11": Query(11, "jre", "linux", ("x64",)),
        "jre17": Query(17, "jre", "linux", ("x64",)), "jre21": Query(21, "jre", "linux", ("x64",)),
        "jre25": Query(25, "jre", "linux", ("x64",)),
        "jre21-alpine": Query(21, "jre", "alpine-linux", ("x64", "aarch64")),
        "jre25-alpine": Query(25, "jre", "alpine-linux", ("x64", "aarch64"))}
    only17, _ = upd.items(manifest, doc, {"jre17", "jre21"}, 17)
    assert [item.image for item in only17] == ["jre17"]
    bases = upd.bases(manifest, doc, set(manifest.images))
    assert [(b.entry, b.images, b.tagged) for b in bases] == [
        ("alpine-glibc", ("alpine-glibc",), "alpine:3.22.6"),
        ("jre-alpine", ("jre21-alpine", "jre25-alpine"), "alpine:3.22.6")]


def test_a_base_past_its_end_of_life_is_reported_and_the_committed_ones_are_not(tmp_path: Path) -> None:
    manifest, doc = committed()
    assert upd.eol_lines(upd.bases(manifest, doc, set(manifest.images)), date(2026, 11, 30), upd.eol.TABLE) == []
    old = tmp_path / "images.yaml"
    old.write_text((PROJECT_ROOT / "images.yaml").read_text().replace("alpine:3.22.6@", "alpine:3.20.3@", 1))
    manifest, doc = load_manifest(old), load(old.read_text(), "images.yaml")
    lines = upd.eol_lines(upd.bases(manifest, doc, set(manifest.images)), date(2026, 11, 30), upd.eol.TABLE)
    assert lines == ["alpine-glibc: alpine:3.20.3 is alpine 3.20, past its end of life since 2026-04-01; alpine "
                     "3.22 replaces it (supported until 2027-05-01)"]


def package(arch: str, os_name: str, name: str, sha: str, image_type: str = "jre") -> dict[str, Any]:
    return {"architecture": arch, "os": os_name, "image_type": image_type, "jvm_impl": "hotspot",
            "heap_size": "normal", "project": "jdk",
            "package": {"name": name, "link": f"https://dl.invalid/{name}", "checksum": sha,
                        "signature_link": f"https://dl.invalid/{name}.sig"}}


def a_release(name: str, version: tuple[int, int, int, int], binaries: list[dict[str, Any]]) -> dict[str, Any]:
    major, minor, security, build = version
    return {"release_name": name, "release_type": "ga", "binaries": binaries, "vendor": "eclipse",
            "version_data": {"major": major, "minor": minor, "security": security, "build": build,
                             "semver": f"{major}.{minor}.{security}+{build}"}}


ALPINE = Query(21, "jre", "alpine-linux", ("x64", "aarch64"))


def test_the_newest_release_with_every_architecture_is_chosen() -> None:
    answer = [
        a_release("jdk-21.0.13+11", (21, 0, 13, 11), [package("x64", "alpine-linux", "new-x64.tar.gz", "a" * 64)]),
        a_release("jdk-21.0.12+8", (21, 0, 12, 8), [package("x64", "alpine-linux", "x.tar.gz", "b" * 64),
                                                    package("aarch64", "alpine-linux", "a.tar.gz", "c" * 64),
                                                    package("aarch64", "linux", "glibc.tar.gz", "d" * 64)]),
    ]
    asked: list[str] = []

    def get(url: str) -> Any:
        asked.append(url)
        return answer

    offer, notes = adoptium.newest(get, API, ALPINE)
    assert asked == [f"{API}/v3/assets/feature_releases/21/ga?heap_size=normal&image_type=jre&jvm_impl=hotspot&"
                     "os=alpine-linux&page_size=20&project=jdk&sort_method=DEFAULT&sort_order=DESC&vendor=eclipse"]
    assert notes == ["jdk-21.0.13+11 has no aarch64 jre for alpine-linux yet"]
    assert offer is not None and offer.release_name == "jdk-21.0.12+8" and offer.version == "21.0.12_8"
    assert {a: p.name for a, p in offer.packages.items()} == {"x64": "x.tar.gz", "aarch64": "a.tar.gz"}
    assert offer.home("jre") == "jdk-21.0.12+8-jre"
    assert adoptium.newest(lambda _url: None, API, ALPINE) == (
        None, ["the Adoptium API has no GA release of Temurin 21 jre for alpine-linux x64+aarch64"])


@pytest.mark.parametrize(("answer", "what"), [
    ({"releases": []}, "a dict where a list of releases belongs"),
    ([{"release_name": "jdk-21.0.1+1"}], "jdk-21.0.1+1.version_data is missing, not a dict"),
    ([a_release("jdk-22+36", (22, 0, 0, 36), [])], "jdk-22+36 is Java 22, asked for 21"),
    ([a_release("jdk-21.0.1+1", (21, 0, 1, 1), [package("x64", "alpine-linux", "x.tar.gz", "nope")])],
     "jdk-21.0.1+1.binaries[0].package.checksum 'nope' is not a sha256"),
    ([a_release("jdk-21.0.1+1", (21, 0, 1, 1), [package("x64", "alpine-linux", "../x", "a" * 64)])],
     "jdk-21.0.1+1.binaries[0].package: '../x' at 'https://dl.invalid/../x' is not a file name and an http(s) URL"),
])
def test_an_answer_of_another_shape_is_one_line(answer: Any, what: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        adoptium.newest(lambda _url: answer, API, ALPINE)
    assert str(caught.value) == (f"the Adoptium API answered something that is not its v3 format for "
                                 f"{adoptium.releases_url(API, ALPINE)} ({what}); nothing was changed")


def test_a_bump_edits_version_home_urls_sha256_and_the_items_own_tags() -> None:
    offer = adoptium.Offer("jdk-21.0.13+11", "21.0.13+11", (21, 0, 13, 0, 11, 0), {
        a: adoptium.Package(a, f"OpenJDK21U-jre_{a}_alpine-linux_hotspot_21.0.13_11.tar.gz", f"https://x/{a}", s, None)
        for a, s in (("x64", "a" * 64), ("aarch64", "b" * 64))})
    path = ("images", "jre-alpine", "versions", 0)
    item = upd.Item("jre21-alpine", path, "21.0.12_8", ALPINE, (
        upd.Tarball("linux/amd64", "u", "1" * 64, "x64"), upd.Tarball("linux/arm64", "u", "2" * 64, "aarch64")),
        True, (((*path, "tags", 1), "21.0.12_8-alpine"),))
    bump, note = upd.compare(item, offer)
    assert note is None and bump is not None
    assert bump.line() == "jre21-alpine: 21.0.12_8 -> 21.0.13_11 (jdk-21.0.13+11)"
    assert [(e.path[4:], e.value) for e in bump.edits(None)] == [
        (("version",), "21.0.13_11"), (("home",), "jdk-21.0.13+11-jre"),
        (("platforms", "linux/amd64", "url"), "https://x/x64"), (("platforms", "linux/amd64", "sha256"), "a" * 64),
        (("platforms", "linux/arm64", "url"), "https://x/aarch64"), (("platforms", "linux/arm64", "sha256"), "b" * 64),
        (("tags", 1), "21.0.13_11-alpine")]
    older = adoptium.Offer("jdk-21.0.11+9", "21.0.11+9", (21, 0, 11, 0, 9, 0), offer.packages)
    assert upd.compare(item, older) == (None, "jre21-alpine: the newest release the API offers, jdk-21.0.11+9, is not "
                                              "newer than 21.0.12_8 and its sha256 differs from the manifest's; not "
                                              "changed")


TEXT = """\
# a comment that stays
images:
  jre:
    versions:
      - version: '8u412b08'   # single-quoted, with a comment
        url: "https://example.invalid/a.tar.gz"
        sha256: aaaa
        tags: [x, "8u412b08-slim"]
  other:
    from: &base alpine:3.20
  again:
    from: *base
"""


def test_edits_replace_exactly_the_scalars_in_their_quoting() -> None:
    edited = yamledit.apply(TEXT, [
        yamledit.Edit(("images", "jre", "versions", 0, "version"), "8u502b07"),
        yamledit.Edit(("images", "jre", "versions", 0, "url"), "https://example.invalid/b.tar.gz"),
        yamledit.Edit(("images", "jre", "versions", 0, "sha256"), "bbbb"),
        yamledit.Edit(("images", "jre", "versions", 0, "tags", 1), "8u502b07-slim")])
    assert edited == TEXT.replace("'8u412b08'", "'8u502b07'").replace("a.tar.gz", "b.tar.gz").replace(
        "aaaa", "bbbb").replace('"8u412b08-slim"', '"8u502b07-slim"')


def test_a_scalar_behind_an_alias_or_missing_is_not_edited() -> None:
    with pytest.raises(yamledit.EditError) as caught:
        yamledit.apply(TEXT, [yamledit.Edit(("images", "again", "from"), "alpine:3.22")])
    assert str(caught.value) == "images.again.from: is a YAML anchor or alias; write the value out to let it be edited"
    with pytest.raises(yamledit.EditError) as caught:
        yamledit.apply(TEXT, [yamledit.Edit(("images", "jre", "home"), "x")])
    assert str(caught.value) == "images.jre.home: not a single value in the manifest; cannot edit it in place"


@pytest.mark.parametrize(("value", "style", "text"), [
    ("17.0.11_9", None, "17.0.11_9"), ("17.0", None, '"17.0"'), ("a #b", None, '"a #b"'), ("yes", None, '"yes"'),
    ("it's", "'", "'it''s'"), ('say "x"', '"', '"say \\"x\\""'),
])
def test_a_new_value_is_written_in_the_old_style_where_it_reads_back_the_same(value: str, style: str | None,
                                                                               text: str) -> None:
    assert yamledit.render_scalar(value, style) == text


def test_the_end_of_life_table_is_refreshed_from_endoflife_dates_format() -> None:
    answers = {
        "https://eol.invalid/api/alpine.json": [{"cycle": "3.23", "eol": "2027-11-01"},
                                                {"cycle": "3.9", "eol": "2020-11-01"},
                                                {"cycle": "3.24", "eol": False}],
        "https://eol.invalid/api/debian.json": [{"cycle": "13", "codename": "Trixie", "eol": "2028-08-09",
                                                 "extendedSupport": "2030-06-30"},
                                                {"cycle": "12", "codename": "Bookworm", "eol": "2026-06-10",
                                                 "extendedSupport": False}]}
    table = upd.refresh_table(answers.__getitem__, "https://eol.invalid/", date(2026, 12, 1))
    assert table == {"checked": "2026-12-01", "sources": {n: f"https://eol.invalid/api/{n}.json"
                                                          for n in ("alpine", "debian")},
                     "distributions": {"alpine": [{"release": "3.9", "eol": "2020-11-01"},
                                                  {"release": "3.23", "eol": "2027-11-01"}],
                                       "debian": [{"release": "12", "eol": "2026-06-10", "codename": "bookworm"},
                                                  {"release": "13", "eol": "2030-06-30", "codename": "trixie"}]}}
    with pytest.raises(UpstreamError) as caught:
        upd.refresh_table(lambda _url: {"message": "Product not found"}, "https://eol.invalid", date(2026, 12, 1))
    assert str(caught.value) == "https://eol.invalid/api/alpine.json is not a list of release cycles"


def test_the_table_checked_last_is_used(tmp_path: Path) -> None:
    assert upd.current_table(tmp_path) == upd.eol.TABLE
    (tmp_path / "eol.json").write_text('{"checked": "2099-01-01", "distributions": {"alpine": []}}')
    assert upd.current_table(tmp_path) == {"checked": "2099-01-01", "distributions": {"alpine": []}}
    (tmp_path / "eol.json").write_text('{"checked": "2099-01-01"')
    assert upd.current_table(tmp_path) == upd.eol.TABLE


SIGNED = """\
schema: 1
registry: repo.abc.com
update:
  adoptium:
    signing_key: {key}
    fingerprint: 3B04 D753 C905 0D9A 5D34 3F39 843C 48A5 65F8 F04B
images:
  jre:
    from: scratch
    template: jre
    versions:
      - version: 17.0.11_9
        source: {source}
        url: https://mirror.abc.com/jre17.tar.gz
        sha256: {sha}
    tags: ["{{major}}"]
"""


def test_the_signing_key_and_source_are_checked(write_manifest: Callable[[str], Path],
                                                 problems: Callable[[str], list[str]]) -> None:
    text = SIGNED.format(key="keys/adoptium.asc", source="adoptium", sha="a" * 64)
    path = write_manifest(text)
    manifest, doc = load_manifest(path), load(text, "images.yaml")
    config = upd.config(doc, manifest.directory, None)
    assert config.api == adoptium.DEFAULT_API and config.key is not None
    assert config.key.fingerprint == "3B04D753C9050D9A5D343F39843C48A565F8F04B"
    assert config.key.spaced == "3B04 D753 C905 0D9A 5D34 3F39 843C 48A5 65F8 F04B"
    found, _ = upd.items(manifest, doc, {"jre17"}, None)  # a mirror's URL: recognised by `source`
    assert [(i.image, i.query) for i in found] == [("jre17", Query(17, "jre", "linux", ("x64",)))]
    outside = SIGNED.format(key="../adoptium.asc", source="adoptium", sha="a" * 64)
    with pytest.raises(ManifestError) as caught:
        upd.config(load(outside, "images.yaml"), manifest.directory, None)
    assert caught.value.lines() == ["images.yaml:5: update.adoptium.signing_key: '../adoptium.asc' leaves the "
                                    "manifest's directory; put the key next to the manifest (or below it)"]
    assert problems(SIGNED.format(key="k.asc", source="maybe", sha="a" * 64)) == [
        "images.yaml:13: images.jre.versions[0].source: 'maybe' is not one of: adoptium, pinned"]
    assert problems(text.replace("    fingerprint: 3B04 D753 C905 0D9A 5D34 3F39 843C 48A5 65F8 F04B\n", "")) == [
        "images.yaml:4: update.adoptium: 'signing_key' needs 'fingerprint' too"]


def test_a_pinned_item_is_left_alone(write_manifest: Callable[[str], Path]) -> None:
    text = SIGNED.format(key="k.asc", source="pinned", sha="a" * 64)
    manifest = load_manifest(write_manifest(text))
    assert upd.items(manifest, load(text, "images.yaml"), {"jre17"}, None) == ([], [])


def test_an_armored_key_is_read_and_a_damaged_one_is_one_line() -> None:
    packets = b"\x99\x00\x0dhello packets"
    armored = (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n" + base64.encodebytes(packets)
               + b"=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n")
    assert signature.dearmor(armored, "k.asc") == packets
    assert signature.dearmor(packets, "k.gpg") == packets
    with pytest.raises(ArtifactError) as caught:
        signature.dearmor(b"not a key", "k.asc")
    assert str(caught.value) == ("k.asc is not an OpenPGP public key (neither binary nor an ASCII-armored PUBLIC KEY "
                                 "BLOCK); export it with `gpg --export --armor FINGERPRINT`")


def test_without_gpgv_the_signature_cannot_be_checked_and_says_so(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signature, "GPGV", "gpgv-that-is-not-installed")
    (tmp_path / "k.gpg").write_bytes(b"\x99\x00\x01x")
    key = signature.SigningKey(tmp_path / "k.gpg", "keys/k.gpg", "A" * 40)
    with pytest.raises(ArtifactError) as caught:
        signature.verify(tmp_path / "k.gpg", b"sig", key, "jdk-17.0.11+9 x64 (f.tar.gz)")
    assert str(caught.value) == ("gpgv is not installed, so jdk-17.0.11+9 x64 (f.tar.gz) cannot be checked against "
                                 "keys/k.gpg; install Debian's gpgv (apt-get install gpgv) and run again; nothing was "
                                 "changed")


def test_a_signing_key_that_cannot_be_read_fails_before_any_request(write_manifest: Callable[[str], Path]) -> None:
    import io

    from javabase.cli import common
    from javabase.cli import update as updating

    path = write_manifest(SIGNED.format(key="keys/missing.asc", source="adoptium", sha="a" * 64))
    err = io.StringIO()
    flags = updating.Flags(api="http://127.0.0.1:9", eol_api="off")  # a request would be exit 15
    assert common.run(lambda: updating.update(str(path), flags, out=io.StringIO()), err=err) == 4
    assert err.getvalue() == ("error: cannot read the signing key keys/missing.asc: No such file or directory; fix "
                              "update.adoptium.signing_key in the manifest\n")


def test_a_registry_that_cannot_be_reached_is_one_line_and_nothing_changes(
        write_manifest: Callable[[str], Path]) -> None:
    import io
    import socket

    from javabase.cli import common
    from javabase.cli import update as updating

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    text = (f"schema: 1\nregistry: repo.abc.com\nimages:\n  app:\n"
            f"    from: 127.0.0.1:{port}/library/alpine:3.22@sha256:{'a' * 64}\n    template: layer\n    tags: ['1']\n")
    path = write_manifest(text)
    err = io.StringIO()
    flags = updating.Flags(api="http://127.0.0.1:9", eol_api="off")
    assert common.run(lambda: updating.update(str(path), flags, out=io.StringIO()), err=err) == 6
    assert err.getvalue() == (f"error: cannot reach the registry 127.0.0.1:{port} ([Errno 111] Connection refused); "
                              "is it running? `scripts/services.sh start` starts one on $JAVABASE_REGISTRY_ADDR "
                              "(default 127.0.0.1:5000)\n")
    assert path.read_text() == text and not (path.parent / "images.lock.json").exists()
