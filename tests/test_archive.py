"""What `load` hands the engine: only the images javabase's index lists, each
byte checked as it is copied, no tag of the archive's own; every malformed
shape of an archive is exit 13, not a bug."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from javabase.cli import common
from javabase.errors import ArchiveError, Exit
from javabase.release import archive as archive_module
from javabase.release.archive import INDEX, prepare_load

LAYER = b"a layer's bytes"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image(tag: str) -> tuple[bytes, bytes]:
    layer = tag.encode() + LAYER
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(layer)]}, "tag": tag}).encode()
    return config, layer


def archive(path: Path, index: Any, extra: list[tuple[str, bytes]] = (), listing_extra: list[Any] = ()) -> Path:
    ours, theirs = image("ours"), image("theirs")
    listing = [{"Config": f"{sha(c)[7:]}.json", "RepoTags": tags, "Layers": [f"{sha(layer)[7:]}/layer.tar"]}
               for (c, layer), tags in ((ours, ["r.example/base/ours:1"]), (theirs, ["alpine:3.20"]))]
    with tarfile.open(path, "w") as tar:
        for name, data in [(f"{sha(c)[7:]}.json", c) for c, _ in (ours, theirs)] + [
                (f"{sha(layer)[7:]}/layer.tar", layer) for _, layer in (ours, theirs)] + [
                ("manifest.json", json.dumps([*listing, *listing_extra]).encode()),
                (INDEX, json.dumps(index).encode()), *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def index_of(**changes: Any) -> dict[str, Any]:
    entry = {"name": "ours", "references": ["r.example/base/ours:1"], "image_id": sha(image("ours")[0]),
             "input_digest": "sha256:" + "1" * 64, "immutable": [], "labels": {}, "publish": ["r.example/base/ours:1"],
             "platform": None, **changes}
    return {"format": 1, "images": [entry]}


def test_the_engine_gets_the_listed_image_only_and_no_tag_of_the_archive(tmp_path: Path) -> None:
    source = archive(tmp_path / "a.tar", index_of())
    entries = prepare_load(source, tmp_path / "out.tar")
    assert [e.name for e in entries] == ["ours"]
    with tarfile.open(tmp_path / "out.tar") as out:
        names = sorted(out.getnames())
        listing = json.load(out.extractfile("manifest.json"))  # type: ignore[arg-type]
    config, layer = image("ours")
    assert names == sorted([f"{sha(config)[7:]}.json", f"{sha(layer)[7:]}/layer.tar", "manifest.json"])
    assert listing == [{"Config": f"{sha(config)[7:]}.json", "RepoTags": None,
                        "Layers": [f"{sha(layer)[7:]}/layer.tar"]}]


@pytest.mark.parametrize(("index", "message"), [
    ([], "not an archive `invoke save` wrote (no javabase-index.json of format 1)"),
    ({"format": 1, "images": {"x": 1}}, "javabase-index.json lists no images; the archive is damaged"),
    ({"format": 1, "images": ["x"]}, "javabase-index.json is not javabase's index; the archive is damaged"),
    (index_of(references="r.example/base/ours:1"), "javabase-index.json is not javabase's index; the archive is "
                                                    "damaged"),
    (index_of(references=["alpine:3.20"]), "'ours' in javabase-index.json has references that are not "
                                            "HOST/NAME:TAG ('alpine:3.20'); the archive was changed or is not "
                                            "javabase's: nothing was loaded"),
    (index_of(references=["r.example/base/ours:1 --evil"]), "'ours' in javabase-index.json has references that "
                                                            "are not HOST/NAME:TAG ('r.example/base/ours:1 --evil'); "
                                                            "the archive was changed or is not javabase's: nothing "
                                                            "was loaded"),
    (index_of(immutable=["r.example/base/other:1"]), "'ours' in javabase-index.json names immutable tags it does "
                                                     "not publish; the archive was changed or is not javabase's: "
                                                     "nothing was loaded"),
    (index_of(image_id="ours"), "'ours' in javabase-index.json has an image ID or input digest that is not "
                                "sha256:<64 hex>; the archive was changed or is not javabase's: nothing was loaded"),
])
def test_a_malformed_index_is_exit_13(tmp_path: Path, index: Any, message: str) -> None:
    source = archive(tmp_path / "a.tar", index)
    with pytest.raises(ArchiveError) as caught:
        prepare_load(source, tmp_path / "out.tar")
    assert str(caught.value) == f"{source}: {message}"
    assert caught.value.exit_code == 13


def test_a_manifest_json_of_another_shape_is_exit_13(tmp_path: Path) -> None:
    config = image("ours")[0]
    source = archive(tmp_path / "a.tar", index_of(), listing_extra=[{"Config": f"{sha(config)[7:]}.json",
                                                                     "Layers": 7}])
    with pytest.raises(ArchiveError) as caught:
        prepare_load(source, tmp_path / "out.tar")
    assert str(caught.value).startswith(f"{source}: cannot be read as a `docker save` archive (")
    assert str(caught.value).endswith("; it is damaged or truncated: copy it again. Nothing was loaded")


INPUTS = "sha256:" + "1" * 64


def platform_image(tag: str, platform: str) -> tuple[bytes, bytes]:
    os_name, arch = platform.split("/")
    layer = tag.encode() + LAYER
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(layer)]}, "os": os_name,
                         "architecture": arch, "config": {"Labels": {"io.javabase.image": "tiny",
                                                                     "io.javabase.input-digest": INPUTS}}}).encode()
    return config, layer


def two_platforms(path: Path, edit: Callable[[list[dict[str, Any]]], None]) -> Path:
    """An archive of one image for linux/amd64 and linux/arm64, its index's entries changed by `edit`."""
    images = {p: platform_image(p, p) for p in ("linux/amd64", "linux/arm64")}
    entries = [{"name": f"tiny@{p}", "references": [f"r.example/base/tiny:1-{p.split('/')[1]}"],
                "image_id": sha(config), "input_digest": INPUTS, "immutable": [], "labels": {},
                "publish": ["r.example/base/tiny:1"], "platform": p} for p, (config, _) in images.items()]
    edit(entries)
    listing = [{"Config": f"{sha(c)[7:]}.json", "RepoTags": None, "Layers": [f"{sha(layer)[7:]}/layer.tar"]}
               for c, layer in images.values()]
    with tarfile.open(path, "w") as tar:
        for name, data in [*[(f"{sha(c)[7:]}.json", c) for c, _ in images.values()],
                           *[(f"{sha(layer)[7:]}/layer.tar", layer) for _, layer in images.values()],
                           ("manifest.json", json.dumps(listing).encode()),
                           (INDEX, json.dumps({"format": 1, "images": entries}).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def swapped(entries: list[dict[str, Any]]) -> None:  # amd64's bytes said to be arm64's, and the other way round
    entries[0]["image_id"], entries[1]["image_id"] = entries[1]["image_id"], entries[0]["image_id"]


def twice(entries: list[dict[str, Any]]) -> None:  # one image listed twice: the second's tags win
    entries.append({**entries[0], "references": ["r.example/base/tiny:latest"]})


def same_tag(entries: list[dict[str, Any]]) -> None:  # one engine tag given to both
    entries[1]["references"] = entries[0]["references"]


def another_image(entries: list[dict[str, Any]]) -> None:  # arm64 published under another image's tag
    entries[1]["name"], entries[1]["publish"] = "other@linux/arm64", ["r.example/base/tiny:1"]


def named_otherwise(entries: list[dict[str, Any]]) -> None:  # its name says one platform, its platform another
    entries[1]["name"] = "tiny@linux/amd64\nok    tiny"


def renamed(entries: list[dict[str, Any]]) -> None:  # tiny's images listed as another image's, in its repository
    for entry in entries:
        entry["name"] = entry["name"].replace("tiny@", "jdk@")
        for key in ("references", "publish"):
            entry[key] = [reference.replace("/tiny:", "/jdk:") for reference in entry[key]]


def other_inputs(entries: list[dict[str, Any]]) -> None:  # said to be built from other inputs
    entries[0]["input_digest"] = "sha256:" + "2" * 64


CHANGED = "the archive was changed or is not javabase's: nothing was loaded"


@pytest.mark.parametrize(("edit", "message"), [
    (swapped, f"'tiny@linux/amd64' in javabase-index.json is an image of linux/arm64, not linux/amd64; {CHANGED}"),
    (twice, f"javabase-index.json lists 'tiny@linux/amd64' twice; {CHANGED}"),
    (same_tag, f"javabase-index.json gives r.example/base/tiny:1-amd64 to 'tiny@linux/amd64' and "
               f"'tiny@linux/arm64'; {CHANGED}"),
    (another_image, f"javabase-index.json publishes r.example/base/tiny:1 as 'tiny@linux/amd64' and "
                    f"'other@linux/arm64'; {CHANGED}"),
    (renamed, f"'jdk@linux/amd64' in javabase-index.json is the image its build named 'tiny'; {CHANGED}"),
    (other_inputs, f"'tiny@linux/amd64' in javabase-index.json has input digest {'sha256:' + '2' * 64}, and its "
                   f"build recorded {INPUTS}; {CHANGED}"),
    (named_otherwise, "'tiny@linux/amd64\\nok    tiny' in javabase-index.json has a name that is not IMAGE@PLATFORM "
                      f"of its platform (linux/arm64); {CHANGED}"),
])
def test_an_index_whose_entries_disagree_with_their_images_or_each_other_is_exit_13(
        tmp_path: Path, edit: Callable[[list[dict[str, Any]]], None], message: str) -> None:
    """What the index says of an image (name, platform, tags) is not signed:
    it must agree with the image's config (which is) and with the other
    entries, or one image ends up under another's tags or platform."""
    assert [e.name for e in prepare_load(two_platforms(tmp_path / "ok.tar", lambda _e: None), tmp_path / "o")] == [
        "tiny@linux/amd64", "tiny@linux/arm64"]
    source = two_platforms(tmp_path / "a.tar", edit)
    with pytest.raises(ArchiveError) as caught:
        prepare_load(source, tmp_path / "out.tar")
    assert (str(caught.value), caught.value.exit_code) == (f"{source}: {message}", 13)


@pytest.mark.parametrize("member", [INDEX, "manifest.json"])
def test_json_nested_deeper_than_python_reads_is_exit_13(tmp_path: Path, member: str) -> None:
    source = archive(tmp_path / "a.tar", index_of())
    deep = tmp_path / "deep.tar"
    with tarfile.open(source) as tar, tarfile.open(deep, "w") as out:
        for info in tar.getmembers():
            data = b"[" * 100_000 + b"]" * 100_000 if info.name == member else tar.extractfile(info).read()  # type: ignore[union-attr]
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchiveError) as caught:
        prepare_load(deep, tmp_path / "out.tar")
    assert str(caught.value) == f"{deep}: {member} is not JSON; the archive is damaged: copy it again"


@pytest.mark.parametrize("config", [b"[" * 100_000 + b"]" * 100_000, b"[]", b'{"config": []}',
                                    b'{"config": {"Labels": 5}}'])
def test_a_config_of_another_shape_is_exit_13(tmp_path: Path, config: bytes) -> None:
    """The config is anything that hashes to the image ID the index names."""
    source = archive(tmp_path / "a.tar", index_of(image_id=sha(config)), extra=[(f"{sha(config)[7:]}.json", config)],
                     listing_extra=[{"Config": f"{sha(config)[7:]}.json", "Layers": []}])
    with pytest.raises(ArchiveError) as caught:
        prepare_load(source, tmp_path / "out.tar")
    assert str(caught.value).startswith(f"{source}: cannot be read as a `docker save` archive (")


def test_a_file_that_is_not_a_tar_archive_is_one_line(tmp_path: Path) -> None:
    """tarfile says why in several lines (one per compression it tried): a person gets one."""
    source = tmp_path / "release.tar"
    source.write_bytes(b"not a tar archive")
    err = io.StringIO()
    assert common.run(lambda: len(prepare_load(source, tmp_path / "out.tar")), err=err) == 13
    assert err.getvalue() == (
        f"error: {source}: cannot be read as a `docker save` archive (file could not be opened successfully: - method "
        "gz: ReadError('not a gzip file') - method bz2: ReadError('not a bzip2 file') - method xz: ReadError('not an "
        "lzma file') - method tar: ReadError('truncated header')); it is damaged or truncated: copy it again. Nothing "
        "was loaded\n")

    def bug() -> int:
        raise ValueError("two\n  lines")

    err = io.StringIO()
    assert common.run(bug, err=err) == Exit.INTERNAL  # a bug's message is one line too
    assert err.getvalue() == "error: internal error: ValueError: two lines (run again with --debug for the traceback)\n"


def test_an_index_larger_than_any_save_writes_is_refused_before_it_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON is read whole into memory: an index (or a config) of gigabytes would take the loading machine's."""
    source = archive(tmp_path / "a.tar", index_of())
    with tarfile.open(source) as tar:
        size = tar.getmember(INDEX).size
    monkeypatch.setattr(archive_module, "JSON_LIMIT", size - 1)
    with pytest.raises(ArchiveError) as caught:
        prepare_load(source, tmp_path / "out.tar")
    assert str(caught.value) == (f"{source}: {INDEX} is {size} bytes, more than any `invoke save` writes "
                                 f"({size - 1}); the archive was changed or is not javabase's: nothing was loaded")
    monkeypatch.setattr(archive_module, "JSON_LIMIT", 1 << 20)
    monkeypatch.setattr(archive_module, "CONFIG_LIMIT", len(image("ours")[0]) - 1)
    with pytest.raises(ArchiveError) as caught:
        prepare_load(archive(tmp_path / "b.tar", index_of()), tmp_path / "out.tar")
    assert str(caught.value).endswith(f": the config of ours is more than {len(image('ours')[0]) - 1} bytes, more "
                                      "than any image's; the archive was changed or is not javabase's: nothing was "
                                      "loaded")


def test_a_layer_listed_for_two_images_is_checked_against_each_ones_diff_id(tmp_path: Path) -> None:
    """A layer copied for one image was not checked again for the next one that
    lists it: the engine got, for the second image, a layer that is not the one
    its config names (and not a byte it was promised is checked first)."""
    ours_layer, theirs = image("ours")[1], image("theirs")[0]
    index = index_of()
    index["images"].append({**index["images"][0], "name": "theirs", "image_id": sha(theirs),
                            "references": ["r.example/base/theirs:1"], "publish": ["r.example/base/theirs:1"]})
    member = f"{sha(ours_layer)[7:]}/layer.tar"
    source = archive(tmp_path / "a.tar", index, listing_extra=[{"Config": f"{sha(theirs)[7:]}.json",
                                                                 "Layers": [member]}])
    with pytest.raises(ArchiveError) as caught:
        prepare_load(source, tmp_path / "out.tar")
    [expected] = json.loads(theirs)["rootfs"]["diff_ids"]
    assert str(caught.value) == (f"{source}: layer {member} of theirs does not hash to {expected}; the archive was "
                                 "changed or damaged: nothing was loaded")
