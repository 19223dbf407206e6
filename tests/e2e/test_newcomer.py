"""A new user's first hour on the real engine and registry (#26): `inspect` says
what the image's own labels say and consults only the manifest that built it;
`plan`'s reasons stay true after a `docker pull` of another platform under a
tag, and the example's closing hint moves no tag; `prune --dry-run`'s figure is
what a real prune frees; a platform-independent file in a FROM scratch image
still gives each platform an image of its own platform."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docker import APIClient as Engine

from javabase.cli import common, define, release

from .conftest import EXAMPLE, LocalRegistry, Run, spare_engine
from .test_build_push import ROOT_ONLY, rootfs


def hint(report: dict[str, Any], image: str) -> str:
    """examples/offline/hint.py's command, which scripts/example.sh prints."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        from hint import hint as example_hint  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    return str(example_hint(report, image))


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


TINY = """\
schema: 1
registry: repo.abc.com
namespace: example
images:
  tiny:
    from: scratch
    template: layer
    platforms: [linux/amd64, linux/arm64]
    artifacts: [{{path: files/note.txt, sha256: {sha}, platform_independent: true}}]
    env: {{NOTE: first}}
    tags: ["1"]
"""


def tiny(workspace: Callable[[str], Path]) -> Path:
    """A multi-platform image with no RUN step: both platforms build without an emulator."""
    manifest = workspace(TINY.format(sha="0" * 64))
    note = manifest.parent / "files" / "note.txt"
    note.write_text("a note for every platform\n")
    manifest.write_text(manifest.read_text().replace("0" * 64, hashlib.sha256(note.read_bytes()).hexdigest()))
    return manifest


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI a user runs (its `create` and `run` pull what the engine lacks)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)


def tags_of(engine: Engine, prefix: str) -> dict[str, str]:
    return {tag: image["Id"] for image in engine.images() for tag in image.get("RepoTags") or []
            if tag.startswith(prefix)}


def test_the_examples_hint_moves_no_tag_and_plan_stays_true_after_a_pull_of_another_platform(
    engine: Engine, registry: LocalRegistry, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    manifest = tiny(workspace)
    namespace = workspace.namespace  # type: ignore[attr-defined]
    run = build(manifest, push=True)
    assert run.code == 0, run.out + run.err
    reference = f"{registry.host}/{namespace}/tiny:1"
    ids = {row["platform"]: row["image_id"] for row in run.report["images"]}
    assert tags_of(engine, reference) == {reference: ids["linux/amd64"], f"{reference}-linux-arm64": ids["linux/arm64"]}

    # What scripts/example.sh prints: the reference javabase keeps for the other platform.
    said = hint(run.report, "tiny")
    assert said == f"docker run --rm --platform linux/arm64 {reference}-linux-arm64 java -version"
    before = tags_of(engine, reference)
    made = docker("create", *said.split()[3:])  # what `run` does before it starts the container
    assert made.returncode == 0, made.stderr
    docker("rm", made.stdout.strip())
    assert tags_of(engine, reference) == before

    # inspect of that reference: the image's platform, and all the platforms of the manifest that built it.
    info = inspected(f"{reference}-linux-arm64", str(manifest))
    assert (info["platform"], info["platforms"]) == ("linux/arm64", ["linux/amd64", "linux/arm64"])

    # The old hint's form: the tag is the engine's own platform's image, so the engine
    # pulls the arm64 one from the registry and re-points the tag to it.
    made = docker("create", "--platform", "linux/arm64", reference, "java", "-version")
    assert made.returncode == 0, made.stderr
    docker("rm", made.stdout.strip())
    assert tags_of(engine, reference)[reference] == ids["linux/arm64"]

    # plan's reasons stay true: each platform's build is compared with that platform's last build.
    manifest.write_text(manifest.read_text().replace("NOTE: first", "NOTE: second"))
    out = io.StringIO()
    assert common.run(lambda: define.plan(str(manifest), fmt="json", registry=registry.host, out=out)) == 0
    actions = json.loads(out.getvalue())["waves"][0]["images"][0]["actions"]
    assert actions == {"linux/amd64": "build: changed dockerfile", "linux/arm64": "build: changed dockerfile"}
    again = build(manifest, push=True)
    assert again.code == 0, again.out + again.err
    assert {row["platform"]: row["built_because"] for row in again.report["images"]} == actions


CHAIN = """\
  mid:
    from: glibc-root
    template: layer
    run: ["head -c 2000000 /dev/zero > /mid.bin && echo REV > /rev"]
    tags: ["1"]
  leaf:
    from: mid
    template: layer
    run: ["head -c 1000000 /dev/urandom > /leaf.bin"]
    tags: ["1"]
"""


def test_prune_dry_runs_figure_is_what_a_real_prune_frees(
    example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with spare_engine() as spare:  # an engine of its own: the space it frees is measured, nothing else moves
        monkeypatch.setenv("DOCKER_HOST", spare.host)
        manifest = workspace(ROOT_ONLY.format(**rootfs(example_files)) + CHAIN)
        for revision in ("r1", "r2", "r3"):
            manifest.write_text(manifest.read_text().replace("echo REV", f"echo {revision}").replace(
                "echo r1 ", f"echo {revision} ").replace("echo r2 ", f"echo {revision} "))
            run = build(manifest)
            assert run.code == 0, run.out + run.err
        # Two old leaves go (their old parents, untagged, with them); each old leaf holds
        # what no remaining image uses: its parent's 2 MB and its own 1 MB. Their whole
        # size (the root, 6.5 MB, is shared with every image) is not what is freed.
        before = spare.api.df()["LayersSize"]
        out = io.StringIO()
        assert common.run(lambda: release.prune(str(manifest), keep=0, dry_run=True, out=out)) == 0
        lines = out.getvalue().splitlines()
        assert [line.split(" (")[0].split()[:3] for line in lines[:-1]] == [["would", "remove", "leaf"]] * 2
        assert all(" (frees 3.0 MB): no tag points to it" in line for line in lines[:-1]), lines
        figure = float(re.fullmatch(r"images: 2 to remove, about (\d+\.\d) MB would be freed \(keeping 0 untagged "
                                    r"per image\)", lines[-1]).group(1))  # type: ignore[union-attr]
        assert spare.api.df()["LayersSize"] == before  # a dry run removes nothing
        out = io.StringIO()
        assert common.run(lambda: release.prune(str(manifest), keep=0, out=out)) == 0, out.getvalue()
        freed = before - spare.api.df()["LayersSize"]
        assert freed > 5_900_000
        assert abs(figure - freed / 1e6) <= 0.05, (figure, freed, out.getvalue())
        assert out.getvalue().splitlines()[-1] == (
            f"images: 2 removed, about {figure:.1f} MB freed (keeping 0 untagged per image)")


def test_a_platform_independent_file_in_a_scratch_image_gives_each_platform_its_own_image(
    engine: Engine, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    # The classic builder's layer cache does not tell platforms apart on a FROM scratch
    # step: built for linux/amd64 first, the same COPY for linux/arm64 hits that cache.
    manifest = tiny(workspace)
    multi = manifest.read_text()
    manifest.write_text(multi.replace("platforms: [linux/amd64, linux/arm64]", "platforms: [linux/amd64]"))
    first = build(manifest)
    assert first.code == 0, first.out + first.err
    manifest.write_text(multi.replace("platforms: [linux/amd64, linux/arm64]", "platforms: [linux/arm64]"))
    run = build(manifest)
    assert run.code == 0, run.out + run.err
    arm = engine.inspect_image(run.result("tiny@linux/arm64")["image_id"])
    assert f"{arm['Os']}/{arm['Architecture']}" == "linux/arm64"
    assert ("[tiny@linux/arm64] the engine's layer cache gave a linux/amd64 image for linux/arm64; building it "
            "again without the cache") in run.out.splitlines()
