"""Pure: the labels that say which manifest built an image, and the rule that a
manifest is consulted about an image only when it is the one that built it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import BASE
from javabase.decide.labels import (
    ENTRY_LABEL,
    MANIFEST_LABEL,
    REPOSITORY_LABEL,
    built_by,
    manifest_name,
    stable_labels,
)
from javabase.manifest.load import load_manifest
from javabase.manifest.model import Manifest


def test_an_image_names_its_manifest_in_values_that_do_not_depend_on_the_checkout(
        valid: Callable[[str], Manifest]) -> None:
    manifest = valid(BASE)
    labels = stable_labels(manifest, manifest.images["jre17"])
    assert {k: labels[k] for k in (MANIFEST_LABEL, REPOSITORY_LABEL, ENTRY_LABEL)} == {
        MANIFEST_LABEL: "images.yaml", REPOSITORY_LABEL: "repo.abc.com/base/jre17", ENTRY_LABEL: "jre"}
    multi = valid(BASE.replace("defaults:\n", "defaults:\n  platforms: [linux/amd64, linux/arm64]\n").replace(
        "        url: https://example.invalid/jre8.tar.gz\n", "        url: https://example.invalid/jre8.tar.gz\n"
        "        platform_independent: true\n").replace(
        "        url: https://example.invalid/jre17.tar.gz\n", "        url: https://example.invalid/jre17.tar.gz\n"
        "        platform_independent: true\n"))
    # A platform's image does not depend on which other platforms the manifest asks for:
    # adding one builds only it, and the index is extended (#24).
    assert stable_labels(multi, multi.images["jre17"]) == labels


def test_only_the_manifest_that_built_an_image_is_consulted(
        valid: Callable[[str], Manifest], write_manifest: Callable[[str], Path]) -> None:
    ours = valid(BASE)
    labels = stable_labels(ours, ours.images["jre17"])
    assert built_by(ours, labels) == ours.images["jre17"]
    theirs = valid(BASE.replace("namespace: base", "namespace: other"))  # the same names, another namespace
    assert built_by(theirs, labels) is None
    renamed = write_manifest(BASE).rename(write_manifest(BASE).parent / "images-b.yaml")
    assert built_by(load_manifest(renamed), labels) is None
    assert built_by(ours, {k: v for k, v in labels.items() if k != MANIFEST_LABEL}) is None  # built before the labels


def test_a_manifest_file_name_is_labelled_as_a_plain_word(tmp_path: Path) -> None:
    weird = Manifest(path=tmp_path / "my images ${X}.yaml", shown="", registry="r", namespace=None, source=None,
                     mirrors={}, images={})
    assert manifest_name(weird) == "my_images___X_.yaml"
