"""Load YAML while remembering the line of every key, and refuse what plain
yaml.safe_load would silently accept (duplicate keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import ManifestError, Problem

PathPart = str | int
Path_ = tuple[PathPart, ...]


def format_key(path: Path_) -> str:
    """('images', 'jre', 'versions', 2, 'sha256') -> images.jre.versions[2].sha256"""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the 1-based line of every node in it."""

    file: str
    data: Any
    lines: dict[Path_, int]

    def line(self, path: Path_) -> int:
        """Line of the node at path, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return 1

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.file, self.line(path), format_key(path), message)


# libyaml's parser when PyYAML has it (its wheels do): same nodes and marks, ~5x faster.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Aliases let a few lines stand for billions of nodes (the "billion laughs"); a
# manifest of a thousand images has well under this many.
MAX_NODES = 200_000


class _TooBig(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def load(text: str, file: str) -> Located:
    """Parse one YAML document. Syntax errors, duplicate keys, non-string keys
    and an empty document are ManifestErrors naming file and line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or "invalid YAML"
        raise ManifestError([Problem(file, line, "", f"YAML syntax error: {what}; fix the YAML")]) from None
    except yaml.YAMLError as exc:
        raise ManifestError([Problem(file, 1, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise ManifestError([Problem(file, 1, "", "the file is empty; start from the images.yaml in docs/manifest.md")])
    lines: dict[Path_, int] = {}
    problems: list[Problem] = []
    budget = _Budget()
    try:
        data = _convert(node, (), lines, problems, file, loader, budget, ())
    except _TooBig as exc:
        raise ManifestError([Problem(file, exc.line, "", exc.message)]) from None
    if problems:
        raise ManifestError(problems)
    return Located(file, data, lines)


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_NODES


def _convert(
    node: yaml.Node,
    path: Path_,
    lines: dict[Path_, int],
    problems: list[Problem],
    file: str,
    loader: Any,
    budget: _Budget,
    inside: tuple[int, ...],
) -> Any:
    line = node.start_mark.line + 1
    budget.left -= 1
    if budget.left < 0:
        raise _TooBig(line, f"the document expands to more than {MAX_NODES} values (YAML aliases that "
                            "repeat each other?); write the manifest out without nested aliases")
    if id(node) in inside:
        raise _TooBig(line, "a YAML alias refers to a node that contains it (a recursive alias); remove it")
    inside = (*inside, id(node))
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(file, key_node.start_mark.line + 1, format_key(path),
                                        "YAML merge keys (<<) are not supported; write the keys out"))
                continue
            if not isinstance(key, str):
                problems.append(Problem(file, key_node.start_mark.line + 1, format_key(path),
                                        f"key {key!r} is not a string; quote it"))
                continue
            child = (*path, key)
            if key in out:
                problems.append(Problem(
                    file, key_node.start_mark.line + 1, format_key(child),
                    f"duplicate key (first at line {lines[child]}); remove one of them",
                ))
                continue
            lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, child, lines, problems, file, loader, budget, inside)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), lines, problems, file, loader, budget, inside)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
