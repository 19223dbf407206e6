"""What decide needs to know, gathered from the engine: the candidates for
reuse (local images with a unit's input digest, inspected in full), what each
unit's first tag points to now, the tags a unit gets in the engine, and the
labels a javabase build of its inputs carries. `plan_actions` gathers them and
asks javabase.decide.rules, for `plan`, `build`, `push` and `save` alike.

Reads the engine through the Backend passed in; never writes to it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..engine import Backend, LocalImage
from ..manifest.references import platform_reference
from ..plan.order import Plan, Unit
from .inputs import Inputs, compute_inputs
from .labels import (
    ARTIFACTS_LABEL,
    IMAGE_LABEL,
    INPUT_LABEL,
    INPUTS_LABEL,
    NORMALISED_LABEL,
    REPOSITORY_LABEL,
    stable_labels,
)
from .rules import TAGGED, BuildAction, Held, Trust, by_input_digest, decide_builds


def local_images(backend: Backend) -> dict[str, list[LocalImage]]:
    """Images in the engine with a javabase input digest, by digest (one engine call)."""
    return by_input_digest(backend.images(INPUT_LABEL))


def unit_tags(plan: Plan, unit: Unit, registry: str, native: str) -> list[str]:
    """The tags a unit gets in the engine. A multi-platform image's references
    go to its image for the engine's own platform (or its first platform), so
    that `docker run` works here; its other platforms get the references with
    -OS-ARCH appended. Only the references are ever pushed, as one index."""
    references = plan.manifest.references(plan.image(unit.name), registry)
    platforms = plan.image(unit.name).platforms
    if unit.platform is None or unit.platform == (native if native in platforms else platforms[0]):
        return references
    return [platform_reference(ref, unit.platform) for ref in references]


def registry_references(plan: Plan, unit: Unit, registry: str) -> list[str]:
    """Every reference the registry may hold a unit under: its image's tags (for
    one platform of a multi-platform image, the index they hold) and, for such a
    platform, its per-platform tag (what `build --platform` pushes)."""
    references = plan.manifest.references(plan.image(unit.name), registry)
    return references if unit.platform is None else [*references, platform_reference(references[0], unit.platform)]


def previous_builds(backend: Backend, plan: Plan, tags: dict[str, list[str]], inputs: dict[str, Inputs],
                    local: dict[str, list[LocalImage]], listed: dict[str, list[LocalImage]]
                    ) -> dict[str, LocalImage | None]:
    """For every unit that has no local image with its inputs: its previous build,
    so that decide can say what changed. That is what its first tag points to now,
    unless that is another platform's image (`docker pull --platform linux/arm64`
    of a multi-platform tag re-points the engine's tag): then the newest image
    javabase built of this image for this platform, among `listed` (every local
    image with an input digest)."""
    def previous(unit: Unit) -> LocalImage | None:
        found = backend.image(tags[unit.key][0])
        if unit.platform is not None and found is not None and not _of_platform(found.platform, unit.platform):
            found = _newest_build(plan, unit, [i for images in listed.values() for i in images])
        return found

    units = [unit for unit in plan.units if inputs[unit.key].digest not in local]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="inspect") as pool:  # an engine call each
        return {unit.key: found for unit, found in zip(units, pool.map(previous, units), strict=True)}


def _of_platform(platform: str, wanted: str) -> bool:
    """OS/ARCH[/VARIANT] as the engine says it, against a platform of the manifest."""
    return platform == wanted or platform.startswith(wanted + "/")


def _newest_build(plan: Plan, unit: Unit, images: list[LocalImage]) -> LocalImage | None:
    """The newest image javabase built for `unit`: its image and repository labels
    (when it has one) and the platform its inputs label records."""
    repository = plan.manifest.repository(plan.image(unit.name))
    mine = []
    for image in images:
        try:
            platform = json.loads(image.labels.get(INPUTS_LABEL, "{}")).get("platform")
        except (ValueError, AttributeError):
            continue
        if (image.labels.get(IMAGE_LABEL) == unit.name and platform == unit.platform
                and image.labels.get(REPOSITORY_LABEL, repository) == repository):
            mine.append(image)
    return max(mine, key=lambda i: (i.created, i.id), default=None)


def candidates(backend: Backend, units: list[Unit], tags: dict[str, list[str]], inputs: dict[str, Inputs],
               local: dict[str, list[LocalImage]]) -> dict[str, list[LocalImage]]:
    """The local images the plan could reuse, inspected in full (layers), a few at
    a time. The step that made an image is read (one more engine call) only when
    the image does not carry one of its own tags: an image javabase tagged is not
    an image someone built FROM it."""
    wanted: list[tuple[str, bool]] = []
    for unit in units:
        own = set(tags[unit.key])
        wanted += [(image.id, not own & set(image.tags)) for image in local.get(inputs[unit.key].digest, [])]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="inspect") as pool:
        found = [image for image in pool.map(lambda item: backend.image(item[0], history=item[1]), wanted)
                 if image is not None]
    tagged = {image_id for image_id, history in wanted if not history}
    return by_input_digest(replace(image, last_step=TAGGED) if image.id in tagged else image for image in found)


def expected_labels(plan: Plan, units: list[Unit], inputs: dict[str, Inputs], normalised: bool = False
                    ) -> dict[str, dict[str, str]]:
    """The labels a javabase build of each unit's inputs carries (time, revision
    and artifact URLs aside: a URL is provenance, not content); with `normalised`
    (a --reproducible run), NORMALISED_LABEL too: such a run reuses only images a
    run like it normalised."""
    out = {}
    for unit in units:
        labels = {k: v for k, v in stable_labels(plan.manifest, plan.image(unit.name)).items()
                  if k != ARTIFACTS_LABEL}
        out[unit.key] = {**labels, INPUT_LABEL: inputs[unit.key].digest, INPUTS_LABEL: inputs[unit.key].label}
        if normalised:
            out[unit.key][NORMALISED_LABEL] = "true"
    return out


@dataclass(frozen=True)
class Decided:
    """What plan_actions found: per unit key its inputs, tags and action, and the
    local images by input digest."""

    inputs: dict[str, Inputs]
    local: dict[str, list[LocalImage]]
    actions: dict[str, BuildAction]
    tags: dict[str, list[str]]

    def local_image(self, image_id: str) -> LocalImage | None:
        """The candidate with this ID, as inspected, or None."""
        return next((i for found in self.local.values() for i in found if i.id == image_id), None)


def plan_actions(backend: Backend, plan: Plan, rendered: dict[str, str], registry: str, force: bool = False,
                 remote: Mapping[str, Sequence[tuple[str, Held | None]]] | None = None,
                 trust: Trust | None = None, normalised: bool = False) -> Decided:
    """The decision for every unit of the plan; `remote` is what the tags of the
    single-platform images hold in the registry, when it is consulted; `trust`
    says whether an image there verifies with the team's key (when there is one);
    `normalised`: the run builds with --reproducible, and reuses only images that
    were normalised."""
    units = plan.units
    native = backend.native if any(u.platform for u in units) else ""
    inputs = compute_inputs(plan.manifest, units, rendered)
    tags = {u.key: unit_tags(plan, u, registry, native) for u in units}
    listed = {} if force else local_images(backend)
    local = {} if force else candidates(backend, units, tags, inputs, listed)
    previous = {} if force else previous_builds(backend, plan, tags, inputs, local, listed)
    parent_of = {u.key: parent.key if (parent := plan.parent_unit(u)) else None for u in units}
    actions = decide_builds([u.key for u in units], inputs, local, previous, force, parent_of,
                            expected_labels(plan, units, inputs, normalised), remote, trust)
    return Decided(inputs, local, actions, tags)
