"""Editing a manifest in place: replace the text of exactly the scalars that
change, at the positions the YAML parser (PyYAML's composer) reports, in the
quoting style each had. Comments, key order, quoting, indentation and every
other byte stay as they were, so `git diff` shows exactly the edit. The result
is parsed again and must equal the old document with the edits applied."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import Exit, JavabaseError
from ..manifest.yamlsource import Path_, format_key


class EditError(JavabaseError):
    """A scalar cannot be edited in place (not there, not a scalar, behind a YAML alias).
    Raised before anything is written."""

    exit_code = Exit.MANIFEST


class EditBug(JavabaseError):
    """The edited text does not read back as the edits say: a bug, nothing is written."""


@dataclass(frozen=True)
class Edit:
    """Set the scalar at `path` (e.g. ('images', 'jre', 'versions', 0, 'url')) to `value`."""

    path: Path_
    value: str


def _walk(node: yaml.Node, seen: Counter[int]) -> None:
    seen[id(node)] += 1
    if seen[id(node)] > 1:
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _walk(key, seen)
            _walk(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _walk(item, seen)


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        return next((value for key, value in node.value if isinstance(key, yaml.ScalarNode) and key.value == part),
                    None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        found: yaml.Node = node.value[part]
        return found
    return None


def scalar_at(root: yaml.Node, path: Path_, shared: Counter[int]) -> yaml.ScalarNode:
    """The scalar node at `path`. Raises EditError when there is none, or when it
    is reached through a YAML alias (editing it would change every user of the anchor)."""
    node: yaml.Node | None = root
    for part in path:
        node = _child(node, part) if node is not None else None
    if not isinstance(node, yaml.ScalarNode):
        raise EditError(f"{format_key(path)}: not a single value in the manifest; cannot edit it in place")
    if shared[id(node)] > 1:
        raise EditError(f"{format_key(path)}: is a YAML anchor or alias; write the value out to let it be edited")
    return node


def render_scalar(value: str, style: str | None) -> str:
    """`value` as YAML text in `style` ('\\'', '"' or None for plain); plain only
    where it reads back as the same string, else double-quoted."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style is None and value and "\n" not in value and value == value.strip():
        try:
            if yaml.safe_load(f"k: {value}\n") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def apply(text: str, edits: Sequence[Edit]) -> str:
    """The manifest text with every edit made. Raises EditError (nothing else changes)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise EditError(f"the manifest is not valid YAML any more ({exc}); nothing was changed") from None
    if root is None:
        raise EditError("the manifest is empty; nothing was changed")
    shared: Counter[int] = Counter()
    _walk(root, shared)
    spans = []
    for edit in edits:
        node = scalar_at(root, edit.path, shared)
        spans.append((node.start_mark.index, node.end_mark.index, render_scalar(edit.value, node.style)))
    out = text
    for start, end, new in sorted(spans, reverse=True):
        out = out[:start] + new + out[end:]
    _check(text, out, edits)
    return out


def _check(before: str, after: str, edits: Sequence[Edit]) -> None:
    expected: Any = yaml.safe_load(before)
    for edit in edits:
        target = expected
        for part in edit.path[:-1]:
            target = target[part]
        target[edit.path[-1]] = edit.value
    if yaml.safe_load(after) != expected:
        raise EditBug("editing the manifest in place changed more than the values asked for; nothing was "
                        "changed (please report this with the manifest)")
