"""A clean engine and a bounded cache.

What javabase built (its own LABEL step is the image's last step, so an
image someone built FROM a javabase image is never one) that no tag points to
any more, beyond the `keep` newest per image (of one manifest); removed children first,
without force, so the engine itself refuses an image a container uses. The
untagged intermediate images of each build go with it (the engine removes an
image's untagged parents). Never an image with a tag, never a container's.
The space it frees is the layers no remaining image uses, each counted once.
(The artifact cache is kept in bounds by javabase.build.cache.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..decide.labels import IMAGE_LABEL, INPUT_LABEL, REPOSITORY_LABEL
from ..engine import Backend, LocalImage
from ..errors import JavabaseError


@dataclass(frozen=True)
class Removal:
    image: LocalImage
    name: str
    why: str
    frees: int = 0  # bytes of layers no remaining image uses that this removal is the first to hold


def javabase_built(image: LocalImage) -> bool:
    """Its last step is javabase's LABEL naming its own input digest."""
    digest = image.labels.get(INPUT_LABEL, "")
    return bool(digest) and "LABEL" in image.last_step and digest in image.last_step


def plan_images(backend: Backend, keep: int) -> list[Removal]:
    """What `prune` removes: untagged images javabase built, beyond the `keep`
    newest per image name, that no container uses. Newest first (children
    before their parents)."""
    in_use = backend.in_use()
    untagged = [i for i in backend.images(INPUT_LABEL) if not i.tags and i.id not in in_use]
    inspected = [found for i in untagged if (found := backend.image(i.id, history=True)) is not None]
    by_name: dict[tuple[str, str], list[LocalImage]] = {}
    for image in inspected:
        if javabase_built(image) and not image.tags:
            # Per image of one manifest: two manifests' jre25 are two images.
            key = (image.labels.get(IMAGE_LABEL, "?"), image.labels.get(REPOSITORY_LABEL, ""))
            by_name.setdefault(key, []).append(image)
    out = []
    for (name, _), images in sorted(by_name.items()):
        out += [Removal(image, name, "no tag points to it")
                for image in sorted(images, key=lambda i: (i.created, i.id), reverse=True)[keep:]]
    out.sort(key=lambda r: (r.image.created, r.image.id), reverse=True)
    gone = {r.image.id for r in out}
    return with_space(out, [layers for image_id, layers in backend.listed_layers().items() if image_id not in gone])


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The engine's name of each layer of an image, base first: a layer is the same
    layer in two images only when everything below it is the same too (the OCI
    image spec's ChainID: sha256 of "<ChainID below> <DiffID>")."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else
                      "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def with_space(removals: list[Removal], remaining: Iterable[Sequence[str]]) -> list[Removal]:
    """Each removal with the bytes it frees: its layers that no remaining image
    uses (`remaining`: the diff IDs of every image that stays), each layer counted
    once, with the first removal that holds it. Their sum is what the engine frees,
    as `docker system df` counts layers."""
    used = {chain for layers in remaining for chain in chain_ids(layers)}
    counted: set[str] = set()
    out = []
    for removal in removals:
        frees = 0
        for chain, size in zip(chain_ids(removal.image.layers), removal.image.layer_sizes, strict=False):
            if chain not in used and chain not in counted:
                counted.add(chain)
                frees += size
        out.append(Removal(removal.image, removal.name, removal.why, frees))
    return out


def remove_images(backend: Backend, removals: Iterable[Removal]) -> list[str]:
    """Remove them, without force; return one line per image that could not go."""
    problems = []
    for removal in removals:
        try:
            backend.remove(removal.image.id, force=False)
        except JavabaseError as exc:
            problems.append(f"{removal.name} {removal.image.id[7:19]}: not removed ({exc})")
    return problems
