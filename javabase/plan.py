"""Pure: manifest -> build order. Waves of images that do not depend on each
other, selection of images with their ancestors (and optionally dependents),
and renderings of the plan for people (text), machines (json) and READMEs
(mermaid)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import UsageError
from .model import Image, Manifest


@dataclass(frozen=True)
class Plan:
    manifest: Manifest
    waves: tuple[tuple[str, ...], ...]
    registry: str

    @property
    def order(self) -> list[str]:
        return [name for wave in self.waves for name in wave]

    def image(self, name: str) -> Image:
        return self.manifest.images[name]

    @property
    def units(self) -> list[Unit]:
        """What is built: one unit per image, or per image and platform."""
        return [Unit(name, platform) for name in self.order for platform in (self.image(name).platforms or (None,))]

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
) -> Plan:
    chosen = select(manifest, names, with_dependents)
    depth: dict[str, int] = {}
    for name in manifest.images:
        depth[name] = len(ancestors(manifest, name))
    waves: list[list[str]] = []
    for name in sorted(chosen, key=lambda n: (depth[n], n)):
        while len(waves) <= depth[name]:
            waves.append([])
        waves[depth[name]].append(name)
    return Plan(manifest, tuple(tuple(w) for w in waves if w), registry or manifest.registry)


def parent_display(plan: Plan, image: Image) -> str:
    if image.parent is None:
        return image.from_ref
    return f"{image.parent} ({plan.manifest.references(plan.image(image.parent), plan.registry)[0]})"


def as_dict(plan: Plan, notes: dict[str, str] | None = None) -> dict[str, object]:
    waves = []
    for index, wave in enumerate(plan.waves, 1):
        items = []
        for name in wave:
            image = plan.image(name)
            item: dict[str, object] = {
                "name": name,
                "entry": image.key,
                "template": image.template,
                "from": image.from_ref,
                "parent": image.parent,
                "references": plan.manifest.references(image, plan.registry),
                "platforms": list(image.platforms),
            }
            if notes is not None and name in notes:
                item["action"] = notes[name]
            elif notes is not None:
                item["actions"] = {key.partition("@")[2]: note for key, note in notes.items()
                                   if key.partition("@")[0] == name}
            items.append(item)
        waves.append({"wave": index, "images": items})
    return {"manifest": plan.manifest.shown, "registry": plan.registry, "waves": waves}


def as_json(plan: Plan, notes: dict[str, str] | None = None) -> str:
    return json.dumps(as_dict(plan, notes), indent=2) + "\n"


def as_text(plan: Plan, notes: dict[str, str] | None = None) -> str:
    lines = [f"Build plan for {plan.manifest.shown} ({len(plan.order)} images, {len(plan.waves)} waves)"]
    for index, wave in enumerate(plan.waves, 1):
        lines.append(f"wave {index}:")
        for name in wave:
            image = plan.image(name)
            platforms = f"  [{', '.join(image.platforms)}]" if image.platforms else ""
            lines.append(f"  {name}  [template {image.template}]  FROM {parent_display(plan, image)}{platforms}")
            if notes is not None:
                lines.extend(f"    -> {key.partition('@')[2] + ': ' if '@' in key else ''}{note}"
                             for key, note in notes.items() if key.partition("@")[0] == name)
            lines.extend(f"    {ref}" for ref in plan.manifest.references(image, plan.registry))
    return "\n".join(lines) + "\n"


def _node_id(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def as_mermaid(plan: Plan) -> str:
    lines = ["flowchart TD"]
    outside: dict[str, str] = {}
    for name in plan.order:
        image = plan.image(name)
        platforms = f"<br/>{', '.join(image.platforms)}" if image.platforms else ""
        lines.append(f'    {_node_id(name)}["{name}<br/>{", ".join(image.tags)}{platforms}"]')
    for name in plan.order:
        image = plan.image(name)
        if image.parent is not None:
            lines.append(f"    {_node_id(image.parent)} --> {_node_id(name)}")
        else:
            node = outside.setdefault(image.from_ref, f"ext{len(outside)}")
            label = image.from_ref.split("@")[0] + (" (pinned)" if "@" in image.from_ref else "")
            lines.append(f'    {node}(["{label}"]) --> {_node_id(name)}')
    return "\n".join(lines) + "\n"


def render_formats() -> Iterable[str]:
    return ("text", "json", "mermaid")
