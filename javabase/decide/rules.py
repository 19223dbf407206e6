"""Pure: what a run will do, and why. `plan`, `build`, `build-all` and `push`
all ask these functions, so what `plan` says is exactly what `build` does; the
doers (javabase.build.run, javabase.publish.pusher) only carry the actions out.

Builds: each image is built, or an image the engine already has with the same
input digest is reused. Pushes: per tag, the image is pushed, or the tag
already holds it, or (an immutable tag that holds another image) the whole
push is refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ..engine import LocalImage
from .inputs import Inputs
from .labels import BASE_DIGEST_LABEL, INPUT_LABEL, INPUTS_LABEL, NORMALISED_LABEL

# In place of the last step of a candidate that carries one of its own tags.
TAGGED = "(javabase's own tag)"


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


class Held(Protocol):
    """What a tag holds in the registry, as far as the decisions need it
    (javabase.publish.registry.Remote is one): manifest digest, config digest
    (the image ID) and the javabase input digest it was built from, when known."""

    @property
    def digest(self) -> str: ...

    @property
    def config_digest(self) -> str | None: ...

    @property
    def input_digest(self) -> str | None: ...

    @property
    def image(self) -> LocalImage | None:
        """The image's config as the engine would show it (labels, layers, last
        step), when it was read from the registry."""
        ...


def by_input_digest(images: Iterable[LocalImage]) -> dict[str, list[LocalImage]]:
    """Local images by the input digest they carry, in the order they are tried:
    the newest first, then the highest ID (deterministic)."""
    out: dict[str, list[LocalImage]] = {}
    for image in sorted(images, key=lambda i: (i.created, i.id), reverse=True):
        digest = image.labels.get(INPUT_LABEL)
        if digest:
            out.setdefault(digest, []).append(image)
    return out


Trust = Callable[[str, "Held", str], bool]  # (reference, what it holds, the run's input digest) -> verified


def decide_builds(
    order: Iterable[str],
    inputs: Mapping[str, Inputs],
    local: Mapping[str, Sequence[LocalImage]],
    previous: Mapping[str, LocalImage | None],
    force: bool = False,
    parent_of: Mapping[str, str | None] | None = None,
    expected: Mapping[str, Mapping[str, str]] | None = None,
    remote: Mapping[str, Sequence[tuple[str, Held | None]]] | None = None,
    trust: Trust | None = None,
) -> dict[str, BuildAction]:
    """Per image (parents before children): reuse a local image with the same
    input digest, or build. A local image is reused only when it is what javabase
    would have built (`reuse_problem`) and its parent is reused too; of several,
    the first that is. `previous` is what each image's first tag points to now,
    to say what changed. `remote` is what each image's tags hold in the registry
    (reference, Held or None): an image not reusable locally whose tag holds an
    image of the same inputs that passes the same checks (its config read from
    the registry) is reused from the registry (not built, not pulled), when its
    parent is reused too; with `trust` (a team's key), only when its signature
    and provenance verify too."""
    deciding = _Deciding(inputs, local, previous, parent_of or {}, expected or {}, remote or {}, trust)
    for name in order:
        deciding.out[name] = Build(name, "rebuild forced (--force)") if force else deciding.one(name)
    return deciding.out


class _Deciding:
    """The state of one decide_builds: the actions so far and the images chosen."""

    def __init__(self, inputs: Mapping[str, Inputs], local: Mapping[str, Sequence[LocalImage]],
                 previous: Mapping[str, LocalImage | None], parents: Mapping[str, str | None],
                 expected: Mapping[str, Mapping[str, str]], remote: Mapping[str, Sequence[tuple[str, Held | None]]],
                 trust: Trust | None) -> None:
        self.inputs, self.local, self.previous, self.parents = inputs, local, previous, parents
        self.expected, self.remote, self.trust = expected, remote, trust
        self.out: dict[str, BuildAction] = {}
        self.chosen: dict[str, LocalImage] = {}

    def one(self, name: str) -> BuildAction:
        parent = self.parents.get(name)
        candidates = self.local.get(self.inputs[name].digest, [])
        if parent is not None and isinstance(self.out.get(parent), Build):
            return Build(name, f"build: its parent {parent} is built anew" if candidates
                         else _why(self.inputs[name], self.previous.get(name)))
        problems = []
        for candidate in candidates:
            problem = reuse_problem(candidate, self.labels(name), self.chosen.get(parent or ""))
            if problem is None:
                self.chosen[name] = candidate
                return Reuse(name, candidate.id, Where.LOCAL)
            problems.append(f"{candidate.id[7:19]}: {problem}")
        found, why = self.in_registry(name, self.chosen.get(parent or ""))
        if found is not None:
            return found
        if problems or why:
            where = "image in the engine or the registry" if why else "local image"
            return Build(name, f"build: no {where} with these inputs is what javabase builds ("
                         + "; ".join(problems + why) + ")")
        return Build(name, _why(self.inputs[name], self.previous.get(name)))

    def labels(self, name: str) -> dict[str, str]:
        """The javabase labels the image must carry: at least its input digest."""
        return {INPUT_LABEL: self.inputs[name].digest, **self.expected.get(name, {})}

    def in_registry(self, name: str, parent: LocalImage | None) -> tuple[Reuse | None, list[str]]:
        """A tag that holds an image of these inputs that passes the checks; else why none does."""
        digest, problems = self.inputs[name].digest, []
        for reference, there in self.remote.get(name, ()):
            if there is None or there.input_digest != digest or not there.config_digest:
                continue
            image = there.image
            problem = ("its config could not be read" if image is None
                       else reuse_problem(image, self.labels(name), parent))
            if problem is None and self.trust is not None and not self.trust(reference, there, digest):
                problem = "its signature or provenance does not verify with the team's key"
            if problem is not None:
                problems.append(f"{reference}: {problem}")
                continue
            if image is not None:
                self.chosen[name] = image
            return Reuse(name, there.config_digest, Where.REGISTRY,
                         f"up to date in the registry: {reference} holds an image of these inputs"), []
        return None, problems


def reuse_problem(candidate: LocalImage, expected_labels: Mapping[str, str], parent: LocalImage | None) -> str | None:
    """Why `candidate` is not what javabase would build from these inputs, or None.
    Its javabase labels must all be there and equal, its last step must be the
    LABEL step javabase appends, or a folded commit whose comment names that
    LABEL (engine.last_step; not a step of an image built FROM it), and it
    must have been built FROM its parent: the parent's ID in its base-digest
    label, and the parent's layers at the bottom of its own."""
    for key, value in sorted(expected_labels.items()):
        if candidate.labels.get(key) != value:
            return ("it was not normalised (built without --reproducible)" if key == NORMALISED_LABEL
                    else f"label {key} differs")
    # Labels are inherited: an image built FROM this one carries them all. The
    # image javabase built ends with its own LABEL step naming the input digest.
    digest = expected_labels.get(INPUT_LABEL)
    if digest and not (candidate.last_step == TAGGED
                       or ("LABEL" in candidate.last_step and digest in candidate.last_step)):
        return "its last step is not javabase's LABEL (an image built FROM it?)"
    if parent is not None:
        if candidate.labels.get(BASE_DIGEST_LABEL) != parent.id:
            return f"it was not built FROM {parent.id[7:19]}"
        if tuple(candidate.layers[: len(parent.layers)]) != tuple(parent.layers):
            return "its layers do not start with its parent's"
    return None


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
    overwrites: str | None = None  # --overwrite-immutable: the digest the immutable tag held


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


def decide_pushes(
    image_id: str,
    references: Iterable[str],
    remote: Mapping[str, Held | None],
    immutable: frozenset[str] | set[str],
    overwrite: bool = False,
    index: bool = False,
) -> list[PushAction]:
    """Per tag of one image: push it, skip it (it already holds this very image),
    or refuse (an immutable tag holds another image and `overwrite`, --overwrite-immutable, is not given).
    For a multi-platform image (index) `image_id` is the index digest, and a tag
    holds the image when it holds that very index (the same per-platform images)."""
    out: list[PushAction] = []
    for reference in references:
        there = remote.get(reference)
        if there is not None and (there.digest if index else there.config_digest) == image_id:
            out.append(AlreadyPushed(reference, there.digest))
        elif there is not None and reference in immutable and not overwrite:
            out.append(Refused(reference, there.digest))
        elif there is not None and reference in immutable:
            out.append(Push(reference, image_id, overwrites=there.digest))
        else:
            out.append(Push(reference, image_id))
    return out
