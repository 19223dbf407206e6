"""Pure: the plan for people (text), machines (json) and READMEs (mermaid),
with what a run will do per image when that is known."""

from __future__ import annotations

import json

from ..manifest.model import Image
from .order import Plan

FORMATS = ("text", "json", "mermaid")


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
