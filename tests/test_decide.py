"""decide: the one place that says build or reuse, push or skip, and why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping

from conftest import BASE
from javabase.decide.inputs import compute_inputs
from javabase.decide.labels import BASE_DIGEST_LABEL, INPUT_LABEL, INPUTS_LABEL, NORMALISED_LABEL
from javabase.decide.prepare import expected_labels
from javabase.decide.rules import (
    AlreadyPushed,
    Build,
    Push,
    Refused,
    Reuse,
    Where,
    by_input_digest,
    decide_builds,
    decide_pushes,
    reuse_problem,
)
from javabase.engine import LocalImage
from javabase.manifest.model import Manifest
from javabase.plan.order import make_plan
from javabase.plan.render import render_all
from javabase.publish.registry import Remote

ID_A, ID_B, ID_C = ("sha256:" + c * 64 for c in "abc")


def inputs_of(manifest: Manifest) -> dict[str, object]:
    return compute_inputs(manifest, make_plan(manifest).order, render_all(manifest))  # type: ignore[return-value]


def test_an_image_with_the_same_inputs_is_reused_and_the_others_say_what_changed(
        valid: Callable[[str], Manifest]) -> None:
    old = valid(BASE)
    new = valid(BASE.replace("LANG: C.UTF-8", "LANG: en_US.UTF-8"))
    old_inputs, new_inputs = compute_inputs(old, ["root"], render_all(old)), compute_inputs(new, ["root"],
                                                                                           render_all(new))
    earlier = LocalImage(ID_A, labels={INPUT_LABEL: old_inputs["root"].digest,
                                       INPUTS_LABEL: json.dumps(dict(old_inputs["root"].parts))},
                         last_step=f'LABEL {INPUT_LABEL}="{old_inputs["root"].digest}"')
    local = by_input_digest([earlier])
    assert decide_builds(["root"], old_inputs, local, {}) == {"root": Reuse("root", ID_A, Where.LOCAL)}
    assert decide_builds(["root"], new_inputs, local, {"root": earlier}) == {
        "root": Build("root", "build: changed dockerfile")}
    assert decide_builds(["root"], new_inputs, local, {"root": None}) == {
        "root": Build("root", "build: no earlier build of this image")}
    assert decide_builds(["root"], old_inputs, local, {}, force=True) == {
        "root": Build("root", "rebuild forced (--force)")}


def test_a_changed_parent_changes_every_descendant(valid: Callable[[str], Manifest]) -> None:
    old = valid(BASE)
    new = valid(BASE.replace("packages: [bash]", "packages: [bash, curl]"))
    order = make_plan(old).order
    before, after = compute_inputs(old, order, render_all(old)), compute_inputs(new, order, render_all(new))
    assert {n for n in order if before[n].digest != after[n].digest} == {"root", "jre8", "jre17"}
    assert after["jre17"].changed_since(before["jre17"].parts) == ["parent root"]


def test_among_images_with_the_same_inputs_the_choice_is_deterministic() -> None:
    same = {INPUT_LABEL: "sha256:" + "1" * 64}
    images = [LocalImage(ID_B, labels=same, created=5.0), LocalImage(ID_C, labels=same, created=5.0),
              LocalImage(ID_A, labels=same, created=4.0)]
    assert [i.id for i in by_input_digest(images)["sha256:" + "1" * 64]] == [ID_C, ID_B, ID_A]
    assert [i.id for i in by_input_digest(list(reversed(images)))["sha256:" + "1" * 64]] == [ID_C, ID_B, ID_A]


def test_pushes_skip_tags_that_hold_the_image_and_refuse_immutable_ones_that_do_not() -> None:
    refs = ["r/a:1", "r/a:1.2", "r/a:latest"]
    remote = {"r/a:1": Remote("sha256:" + "9" * 64, ID_A), "r/a:1.2": Remote("sha256:" + "8" * 64, ID_B)}
    assert decide_pushes(ID_A, refs, remote, frozenset()) == [
        AlreadyPushed("r/a:1", "sha256:" + "9" * 64), Push("r/a:1.2", ID_A), Push("r/a:latest", ID_A)]
    assert decide_pushes(ID_A, refs, remote, frozenset({"r/a:1.2"})) == [
        AlreadyPushed("r/a:1", "sha256:" + "9" * 64), Refused("r/a:1.2", "sha256:" + "8" * 64),
        Push("r/a:latest", ID_A)]
    assert decide_pushes(ID_A, refs, remote, frozenset({"r/a:1.2"}), overwrite=True)[1] == Push(
        "r/a:1.2", ID_A, overwrites="sha256:" + "8" * 64)


def test_an_image_built_from_a_javabase_image_is_not_taken_for_it() -> None:
    """Children inherit every label; javabase's own image ends with its LABEL step."""
    digest = "sha256:" + "1" * 64
    labels = {INPUT_LABEL: digest}
    ours = LocalImage(ID_A, labels=labels, created=1.0, last_step=f'LABEL {INPUT_LABEL}="{digest}"')
    child = LocalImage(ID_B, labels=labels, created=2.0, last_step="/bin/sh -c echo service")
    assert reuse_problem(ours, labels, None) is None
    assert reuse_problem(child, labels, None) == "its last step is not javabase's LABEL (an image built FROM it?)"


def test_the_first_candidate_that_javabase_built_is_reused(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(BASE)
    inputs = compute_inputs(manifest, ["root"], render_all(manifest))
    digest = inputs["root"].digest
    labels = {INPUT_LABEL: digest}
    ours = LocalImage(ID_A, labels=labels, created=1.0, last_step=f'LABEL {INPUT_LABEL}="{digest}"')
    child = LocalImage(ID_B, labels=labels, created=2.0, last_step="/bin/sh -c echo service")
    local = by_input_digest([ours, child])
    assert decide_builds(["root"], inputs, local, {}, expected={"root": labels}) == {
        "root": Reuse("root", ID_A, Where.LOCAL)}
    assert decide_builds(["root"], inputs, by_input_digest([child]), {}, expected={"root": labels}) == {
        "root": Build("root", f"build: no local image with these inputs is what javabase builds ({ID_B[7:19]}: "
                              "its last step is not javabase's LABEL (an image built FROM it?))")}


def config_of(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def pushed(name: str, digest: str, parents: Mapping[str, str | None], last_step: str = "") -> Remote:
    """What javabase pushes for `name`: its config (the image ID) built FROM its
    parent's, ending with the LABEL step that names its input digest."""
    chain = [name]
    while (parent := parents.get(chain[-1])) is not None:
        chain.append(parent)
    labels = {INPUT_LABEL: digest, **({BASE_DIGEST_LABEL: config_of(chain[1])} if len(chain) > 1 else {})}
    image = LocalImage(config_of(name), labels=labels, created=1.0,
                       last_step=last_step or f'LABEL {INPUT_LABEL}="{digest}"',
                       layers=tuple(config_of(n + "/layer") for n in reversed(chain)))
    return Remote("sha256:" + "9" * 64, config_of(name), digest, image=image)


def test_the_registry_is_a_cache_for_images_this_engine_lacks(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(BASE)
    order = make_plan(manifest).order
    inputs = compute_inputs(manifest, order, render_all(manifest))
    parents = {n: manifest.images[n].parent for n in order}
    remote = {name: [(f"r/{name}:1", pushed(name, inputs[name].digest, parents))] for name in order}
    actions = decide_builds(order, inputs, {}, {}, parent_of=parents, remote=remote)
    assert actions["jre8"] == Reuse("jre8", config_of("jre8"), Where.REGISTRY,
                                    "up to date in the registry: r/jre8:1 holds an image of these inputs")
    stale = {**remote, "root": [("r/root:1", Remote("sha256:" + "9" * 64, ID_B, "sha256:" + "0" * 64))]}
    actions = decide_builds(order, inputs, {}, {}, parent_of={n: manifest.images[n].parent for n in order},
                            remote=stale)
    assert actions["root"] == Build("root", "build: no earlier build of this image")
    assert actions["jre8"] == Build("jre8", "build: no earlier build of this image")


def test_a_registry_image_is_reused_only_when_it_is_what_javabase_builds_and_the_team_trusts_it(
        valid: Callable[[str], Manifest]) -> None:
    """Labels are public: anyone who can push can copy them onto an image of their own."""
    manifest = valid(BASE)
    order = make_plan(manifest).order
    inputs = compute_inputs(manifest, order, render_all(manifest))
    parents = {n: manifest.images[n].parent for n in order}
    remote = {name: [(f"r/{name}:1", pushed(name, inputs[name].digest, parents))] for name in order}
    forged = {**remote, "root": [("r/root:1", pushed("root", inputs["root"].digest, parents,
                                                     last_step="/bin/sh -c echo mine"))]}
    actions = decide_builds(order, inputs, {}, {}, parent_of=parents, remote=forged)
    assert actions["root"] == Build("root", "build: no image in the engine or the registry with these inputs is "
                                            "what javabase builds (r/root:1: its last step is not javabase's LABEL "
                                            "(an image built FROM it?))")
    unread = {**remote, "root": [("r/root:1", Remote("sha256:" + "9" * 64, ID_A, inputs["root"].digest))]}
    assert decide_builds(order, inputs, {}, {}, parent_of=parents, remote=unread)["root"] == Build(
        "root", "build: no image in the engine or the registry with these inputs is what javabase builds "
                "(r/root:1: its config could not be read)")
    asked: list[tuple[str, str]] = []

    def trust(reference: str, there: object, digest: str) -> bool:
        asked.append((reference, digest))
        return reference != "r/jre8:1"

    actions = decide_builds(order, inputs, {}, {}, parent_of=parents, remote=remote, trust=trust)
    assert actions["root"].reason == "up to date in the registry: r/root:1 holds an image of these inputs"
    assert actions["jre8"] == Build("jre8", "build: no image in the engine or the registry with these inputs is "
                                            "what javabase builds (r/jre8:1: its signature or provenance does not "
                                            "verify with the team's key)")
    assert ("r/root:1", inputs["root"].digest) in asked


def test_a_reproducible_run_reuses_only_normalised_images_and_any_run_reuses_those(
        valid: Callable[[str], Manifest]) -> None:
    """--frozen implies --reproducible: an image an earlier run built without it is
    not what such a run builds (its times and mtimes are the build's), so it is built
    again; the normalised image serves every later run."""
    manifest = valid(BASE)
    plan = make_plan(manifest, ["root"])
    inputs = compute_inputs(manifest, plan.units, render_all(manifest))
    digest = inputs["root"].digest
    step = f'LABEL {INPUT_LABEL}="{digest}"'
    plain_labels = expected_labels(plan, plan.units, inputs)["root"]
    plain = LocalImage(ID_A, labels=plain_labels, created=2.0, last_step=step)
    normalised = LocalImage(ID_B, labels={**plain_labels, NORMALISED_LABEL: "true"}, created=1.0, last_step=step)
    wanted = expected_labels(plan, plan.units, inputs, normalised=True)
    assert decide_builds(["root"], inputs, by_input_digest([plain]), {}, expected=wanted) == {
        "root": Build("root", f"build: no local image with these inputs is what javabase builds ({ID_A[7:19]}: it "
                              "was not normalised (built without --reproducible))")}
    both = by_input_digest([plain, normalised])
    assert decide_builds(["root"], inputs, both, {}, expected=wanted) == {"root": Reuse("root", ID_B, Where.LOCAL)}
    assert decide_builds(["root"], inputs, by_input_digest([normalised]), {},
                         expected={"root": plain_labels}) == {"root": Reuse("root", ID_B, Where.LOCAL)}
