"""Build order: waves, selection with ancestors, --dependents, and formats."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from javabase.errors import UsageError
from javabase.manifest.model import Manifest
from javabase.plan.order import make_plan
from javabase.plan.views import as_json, as_mermaid, as_text

TREE = """\
schema: 1
registry: repo.abc.com
namespace: base
images:
  root:
    from: scratch
    template: rootfs
    tags: ["1"]
  left:
    from: root
    template: layer
    tags: ["1"]
  right:
    from: root
    template: layer
    tags: ["1", latest]
  left-app:
    from: left
    template: layer
    tags: ["1"]
  right-app:
    from: right
    template: layer
    tags: ["1"]
"""


@pytest.fixture
def tree(valid: Callable[[str], Manifest]) -> Manifest:
    return valid(TREE)


def test_waves_follow_dependencies(tree: Manifest) -> None:
    assert make_plan(tree).waves == (("root",), ("left", "right"), ("left-app", "right-app"))


def test_selection_brings_its_ancestors(tree: Manifest) -> None:
    assert make_plan(tree, ["left-app"]).waves == (("root",), ("left",), ("left-app",))


def test_dependents_add_what_is_built_from_the_selection(tree: Manifest) -> None:
    assert make_plan(tree, ["right"], with_dependents=True).waves == (("root",), ("right",), ("right-app",))
    assert make_plan(tree, ["root"], with_dependents=True).order == make_plan(tree).order


def test_selection_without_dependents_leaves_children_out(tree: Manifest) -> None:
    assert make_plan(tree, ["right"]).order == ["root", "right"]


def test_unknown_image_is_one_line(tree: Manifest) -> None:
    with pytest.raises(UsageError) as caught:
        make_plan(tree, ["rigth"])
    assert str(caught.value) == (
        "images.yaml: no image named 'rigth' (did you mean 'right'?); "
        "images: root, left, right, left-app, right-app"
    )


def test_text_lists_references_parent_and_template(tree: Manifest) -> None:
    text = as_text(make_plan(tree, ["right"]))
    assert text == (
        "Build plan for images.yaml (2 images, 2 waves)\n"
        "wave 1:\n"
        "  root  [template rootfs]  FROM scratch\n"
        "    repo.abc.com/base/root:1\n"
        "wave 2:\n"
        "  right  [template layer]  FROM root (repo.abc.com/base/root:1)\n"
        "    repo.abc.com/base/right:1\n"
        "    repo.abc.com/base/right:latest\n"
    )


def test_json_uses_the_given_registry(tree: Manifest) -> None:
    data = json.loads(as_json(make_plan(tree, ["left"], registry="127.0.0.1:5000")))
    assert data["registry"] == "127.0.0.1:5000"
    assert [[i["name"] for i in w["images"]] for w in data["waves"]] == [["root"], ["left"]]
    assert data["waves"][1]["images"][0] == {
        "name": "left", "entry": "images.left", "template": "layer", "from": "root", "parent": "root",
        "references": ["127.0.0.1:5000/base/left:1"], "platforms": [],
    }


def test_mermaid_draws_the_graph(tree: Manifest) -> None:
    assert as_mermaid(make_plan(tree, ["left-app"])) == (
        "flowchart TD\n"
        '    root["root<br/>1"]\n'
        '    left["left<br/>1"]\n'
        '    left_app["left-app<br/>1"]\n'
        '    ext0(["scratch"]) --> root\n'
        "    root --> left\n"
        "    left --> left_app\n"
    )
