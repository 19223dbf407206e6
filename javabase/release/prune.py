"""A clean engine and a bounded cache.

What javabase built (its own LABEL step is the image's last step, so an
image someone built FROM a javabase image is never one) that no tag points to
any more, beyond the `keep` newest per image name; removed children first,
without force, so the engine itself refuses an image a container uses. The
untagged intermediate images of each build go with it (the engine removes an
image's untagged parents). Never an image with a tag, never a container's.
(The artifact cache is kept in bounds by javabase.build.cache.)"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..decide.labels import IMAGE_LABEL, INPUT_LABEL
from ..engine import Backend, LocalImage
from ..errors import JavabaseError


@dataclass(frozen=True)
class Removal:
    image: LocalImage
    name: str
    why: str


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
    by_name: dict[str, list[LocalImage]] = {}
    for image in inspected:
        if javabase_built(image) and not image.tags:
            by_name.setdefault(image.labels.get(IMAGE_LABEL, "?"), []).append(image)
    sizes = {i.id: i.size for i in untagged}
    out = []
    for name, images in sorted(by_name.items()):
        for image in sorted(images, key=lambda i: (i.created, i.id), reverse=True)[keep:]:
            out.append(Removal(LocalImage(image.id, image.tags, image.labels, image.created, size=sizes[image.id]),
                               name, "no tag points to it"))
    return sorted(out, key=lambda r: (r.image.created, r.image.id), reverse=True)


def remove_images(backend: Backend, removals: Iterable[Removal]) -> list[str]:
    """Remove them, without force; return one line per image that could not go."""
    problems = []
    for removal in removals:
        try:
            backend.remove(removal.image.id, force=False)
        except JavabaseError as exc:
            problems.append(f"{removal.name} {removal.image.id[7:19]}: not removed ({exc})")
    return problems
