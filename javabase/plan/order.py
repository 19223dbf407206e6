"""Pure: manifest -> build order. Waves of images that do not depend on each
other, the units a build is made of (an image, or an image for one platform),
and selection of images with their ancestors (and optionally dependents)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..manifest.model import Image, Manifest


@dataclass(frozen=True)
class Plan:
    manifest: Manifest
    waves: tuple[tuple[str, ...], ...]
    registry: str
    platform: str | None = None  # --platform: of multi-platform images, only this platform is built

    @property
    def order(self) -> list[str]:
        return [name for wave in self.waves for name in wave]

    def image(self, name: str) -> Image:
        return self.manifest.images[name]

    @property
    def units(self) -> list[Unit]:
        """What is built: one unit per image, or per image and platform."""
        return [Unit(name, platform) for name in self.order for platform in self.platforms(name)]

    def platforms(self, name: str) -> tuple[str | None, ...]:
        """The platforms an image's units are built for here: None for a single-platform image."""
        platforms = self.image(name).platforms
        if not platforms:
            return (None,)
        return (self.platform,) if self.platform is not None else platforms

    def parent_unit(self, unit: Unit) -> Unit | None:
        parent = self.image(unit.name).parent
        return Unit(parent, unit.platform) if parent is not None else None


@dataclass(frozen=True)
class Unit:
    """One build: an image, for one platform of a multi-platform image."""

    name: str
    platform: str | None = None

    @property
    def key(self) -> str:
        return self.name if self.platform is None else f"{self.name}@{self.platform}"


def file_stem(key: str) -> str:
    """A unit key as a file name (its logs, its SBOM): a platform's `/` would make a
    directory, so jre25@linux/arm64 is jre25@linux-arm64."""
    return key.replace("/", "-")


def children_of(manifest: Manifest) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {name: [] for name in manifest.images}
    for name, image in manifest.images.items():
        if image.parent is not None:
            children[image.parent].append(name)
    return children


def ancestors(manifest: Manifest, name: str) -> list[str]:
    out = []
    parent = manifest.images[name].parent
    while parent is not None:
        out.append(parent)
        parent = manifest.images[parent].parent
    return out


def descendants(manifest: Manifest, name: str) -> list[str]:
    children = children_of(manifest)
    out: list[str] = []
    stack = list(children[name])
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(children[current])
    return out


def select(manifest: Manifest, names: Sequence[str], with_dependents: bool = False) -> set[str]:
    """The named images plus every ancestor they need; with_dependents adds what
    is built FROM them (and those images' ancestors, which are the named ones)."""
    if not names:
        return set(manifest.images)
    unknown = [n for n in names if n not in manifest.images]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(manifest.images), n=1)
            hints.append(f"{name!r}" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise UsageError(f"{manifest.shown}: no image named {', '.join(hints)}; "
                             f"images: {', '.join(manifest.images)}")
    chosen = set(names)
    if with_dependents:
        for name in names:
            chosen.update(descendants(manifest, name))
    for name in list(chosen):
        chosen.update(ancestors(manifest, name))
    return chosen


def make_plan(
    manifest: Manifest,
    names: Sequence[str] = (),
    with_dependents: bool = False,
    registry: str | None = None,
    platform: str | None = None,
) -> Plan:
    """The images to build (`names` and their ancestors, all without names), in
    waves; with `platform`, only that platform of multi-platform images. Raises
    UsageError for an unknown name, or a platform a chosen image is not built for."""
    chosen = select(manifest, names, with_dependents)
    if platform is not None:
        _check_platform(manifest, chosen, platform)
    depth: dict[str, int] = {}
    for name in manifest.images:
        depth[name] = len(ancestors(manifest, name))
    waves: list[list[str]] = []
    for name in sorted(chosen, key=lambda n: (depth[n], n)):
        while len(waves) <= depth[name]:
            waves.append([])
        waves[depth[name]].append(name)
    return Plan(manifest, tuple(tuple(w) for w in waves if w), registry or manifest.registry, platform)


def _check_platform(manifest: Manifest, chosen: set[str], platform: str) -> None:
    multi = sorted(n for n in chosen if manifest.images[n].platforms)
    if not multi:
        raise UsageError(f"--platform {platform}: none of the images is built for several platforms (no "
                         "`platforms:`); build them without --platform")
    lacking = [n for n in multi if platform not in manifest.images[n].platforms]
    if lacking:
        raise UsageError(f"--platform {platform}: {', '.join(lacking)} is not built for it (its platforms: "
                         f"{', '.join(manifest.images[lacking[0]].platforms)})")
