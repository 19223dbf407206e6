"""Pure: what a run will do, and why. `plan`, `build`, `build-all` and `push`
all ask these functions, so what `plan` says is exactly what `build` does; the
doers (builder, pusher) only carry the actions out.

Builds: each image is built, or an image the engine already has with the same
input digest is reused. Pushes: per tag, the image is pushed, or the tag
already holds it, or (an immutable tag that holds another image) the whole
push is refused."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .backends.base import LocalImage
from .inputs import Inputs
from .labels import INPUT_LABEL, INPUTS_LABEL


class Where(StrEnum):
    LOCAL = "local engine"
    REGISTRY = "registry"


@dataclass(frozen=True)
class Build:
    name: str
    reason: str


@dataclass(frozen=True)
class Reuse:
    name: str
    image_id: str
    where: Where
    reason: str = "up to date: an image with the same inputs exists"


BuildAction = Build | Reuse


def by_input_digest(images: Iterable[LocalImage]) -> dict[str, LocalImage]:
    """javabase's local images by input digest. Where several carry the same
    digest the choice is deterministic: the newest, then the highest ID."""
    out: dict[str, LocalImage] = {}
    for image in sorted(images, key=lambda i: (i.created, i.id)):
        digest = image.labels.get(INPUT_LABEL)
        if digest:
            out[digest] = image
    return out


def decide_builds(
    order: Iterable[str],
    inputs: Mapping[str, Inputs],
    local: Mapping[str, LocalImage],
    previous: Mapping[str, LocalImage | None],
    force: bool = False,
) -> dict[str, BuildAction]:
    """Per image: reuse the local image with the same input digest, or build.
    `previous` is what each image's first tag points to now (to say what changed);
    it is needed only for images that are not reused."""
    out: dict[str, BuildAction] = {}
    for name in order:
        digest = inputs[name].digest
        if force:
            out[name] = Build(name, "rebuild forced (--force)")
        elif digest in local:
            out[name] = Reuse(name, local[digest].id, Where.LOCAL)
        else:
            out[name] = Build(name, _why(inputs[name], previous.get(name)))
    return out


def _why(inputs: Inputs, previous: LocalImage | None) -> str:
    old = previous.labels.get(INPUTS_LABEL) if previous is not None else None
    if old is None:
        return "build: no earlier build of this image"
    try:
        parts = json.loads(old)
    except ValueError:
        return "build: the earlier build's inputs label is unreadable"
    if not isinstance(parts, dict):
        return "build: the earlier build's inputs label is unreadable"
    return "build: changed " + ", ".join(inputs.changed_since(parts))


# -- pushes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Push:
    reference: str
    image_id: str
    overwrites: str | None = None  # --force over an immutable tag: the digest it held


@dataclass(frozen=True)
class AlreadyPushed:
    reference: str
    digest: str


@dataclass(frozen=True)
class Refused:
    """An immutable tag already holds another image."""

    reference: str
    holds: str


PushAction = Push | AlreadyPushed | Refused


@dataclass(frozen=True)
class Remote:
    """What a tag holds in the registry: manifest digest and config digest (image ID)."""

    digest: str
    config_digest: str | None


def decide_pushes(
    image_id: str,
    references: Iterable[str],
    remote: Mapping[str, Remote | None],
    immutable: frozenset[str] | set[str],
    force: bool = False,
) -> list[PushAction]:
    """Per tag of one image: push it, skip it (it already holds this very image),
    or refuse (an immutable tag holds another image and --force was not given)."""
    out: list[PushAction] = []
    for reference in references:
        there = remote.get(reference)
        if there is not None and there.config_digest == image_id:
            out.append(AlreadyPushed(reference, there.digest))
        elif there is not None and reference in immutable and not force:
            out.append(Refused(reference, there.digest))
        elif there is not None and reference in immutable:
            out.append(Push(reference, image_id, overwrites=there.digest))
        else:
            out.append(Push(reference, image_id))
    return out
