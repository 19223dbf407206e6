"""A new user's first hour on the real engine and registry (#26): `inspect` says
what the image's own labels say and consults only the manifest that built it;
`plan`'s reasons stay true after a `docker pull` of another platform under a
tag, and the example's closing hint moves no tag; `prune --dry-run`'s figure is
what a real prune frees."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docker import APIClient as Engine

from javabase.cli import common, release

from .conftest import LocalRegistry, Run
from .test_build_push import ROOT_ONLY, rootfs


def inspected(reference: str, manifest: str | None = None) -> dict[str, Any]:
    out = io.StringIO()
    assert common.run(lambda: release.inspect(reference, manifest, "json", out=out)) == 0
    return dict(json.loads(out.getvalue()))


def test_inspect_shows_the_images_own_labels_and_consults_only_the_manifest_that_built_it(
    engine: Engine, registry: LocalRegistry, example_files: Path, workspace: Callable[[str], Path],
    build: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)))
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True)
    assert run.code == 0, run.out + run.err
    reference = f"{registry.host}/{namespace}/glibc-root:1"
    said = (f"its labels name images.yaml of repo.abc.com/{namespace}/glibc-root, entry glibc-root")

    # Another project's images.yaml with an image of the same name, a few lines lower.
    other = tmp_path / "other"
    other.mkdir()
    (other / "files").mkdir()
    (other / "files" / "glibc-rootfs.tar.gz").write_bytes((tmp_path / "files" / "glibc-rootfs.tar.gz").read_bytes())
    (other / "images.yaml").write_text("# another team's manifest\n\n" + manifest.read_text().replace(
        f"namespace: {namespace}", "namespace: base"))
    monkeypatch.chdir(other)
    for where in ("this engine", "the registry"):
        info = inspected(reference)
        assert (info["where"], info["image"], info["manifest"], info["repository"], info["entry"], info["consulted"],
                info["note"]) == (where, "glibc-root", "images.yaml", f"repo.abc.com/{namespace}/glibc-root",
                                  "glibc-root", None,
                                  f"images.yaml did not build this image, so it was not consulted: {said}")
        assert info["platforms"] == ["linux/amd64"]
        # The manifest that built it, named from here: its line and key.
        named = inspected(reference, str(manifest))
        assert (named["entry"], named["consulted"], named["note"]) == (
            f"{manifest}:5 (images.glibc-root)", str(manifest), None)
        if where == "this engine":
            engine.remove_image(reference)  # then the registry's copy is read

    # From a directory below the manifest that built it: found above, and consulted.
    build(manifest)
    below = manifest.parent / "builds"
    monkeypatch.chdir(below)
    info = inspected(reference)
    assert (info["entry"], info["consulted"], info["note"]) == (
        f"{manifest}:5 (images.glibc-root)", str(manifest), None)
    text = io.StringIO()
    assert common.run(lambda: release.inspect(reference, None, "text", out=text)) == 0
    assert text.getvalue().splitlines()[:5] == [
        f"{reference}  (this engine)", "  image: glibc-root", "  manifest: images.yaml",
        f"  repository: repo.abc.com/{namespace}/glibc-root", f"  entry: {manifest}:5 (images.glibc-root)"]

