"""Only what changed is rebuilt, and independent images build at the same time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .conftest import Run
from .test_build_push import ROOT_ONLY, rootfs

TREE = """\
  left:
    from: glibc-root
    template: layer
    run: ["echo left v1"]
    tags: ["1"]
  left-child:
    from: left
    template: layer
    run: ["echo left child"]
    tags: ["1"]
  right:
    from: glibc-root
    template: layer
    run: ["echo right"]
    tags: ["1"]
"""


def test_a_change_rebuilds_that_image_and_its_dependents_only(
    example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    base = ROOT_ONLY.format(**rootfs(example_files))
    manifest = workspace(base + TREE)
    first = build(manifest)
    assert first.code == 0, first.err
    assert {first.statuses()[n] for n in ("left", "left-child", "right")} == {"built"}

    unchanged = build(manifest)
    assert set(unchanged.statuses().values()) == {"up-to-date"}
    assert "Step 1/" not in unchanged.out

    manifest = workspace(base + TREE.replace("echo left v1", "echo left v2"))
    one = build(manifest)
    assert one.statuses() == {"glibc-root": "up-to-date", "left": "built", "left-child": "built",
                              "right": "up-to-date"}
    assert one.result("left")["reason"] is None
    assert "[left      ] build: changed dockerfile" in one.out
    assert "[left-child] build: changed parent left" in one.out
    assert one.result("right")["image_id"] == first.result("right")["image_id"]

    manifest = workspace(base.replace("    tags: [\"1\"]\n", "    env: {ROOT: v2}\n    tags: [\"1\"]\n", 1)
                         + TREE.replace("echo left v1", "echo left v2"))
    parent = build(manifest)
    assert set(parent.statuses().values()) == {"built"}
    assert "[right     ] build: changed parent glibc-root" in parent.out


def test_independent_images_build_at_the_same_time(
    example_files: Path, workspace: Callable[[str], Path], build: Callable[..., Run],
) -> None:
    text = ROOT_ONLY.format(**rootfs(example_files)) + """\
  slow-a:
    from: glibc-root
    template: layer
    run: ["sleep 2 && echo a"]
    tags: ["1"]
  slow-b:
    from: glibc-root
    template: layer
    run: ["sleep 2 && echo b"]
    tags: ["1"]
  failing:
    from: glibc-root
    template: layer
    run: ["sleep 1 && false"]
    tags: ["1"]
"""
    run = build(workspace(text), jobs=3, keep_going=True)
    assert run.code == 7
    statuses = run.statuses()
    assert statuses.pop("glibc-root") in ("built", "up-to-date")  # same inputs as other tests' roots
    assert statuses == {"slow-a": "built", "slow-b": "built", "failing": "failed"}
    a, b, failing = run.result("slow-a"), run.result("slow-b"), run.result("failing")
    assert a["started"] < b["finished"] and b["started"] < a["finished"]
    assert failing["started"] < a["finished"] and a["started"] < failing["finished"]
