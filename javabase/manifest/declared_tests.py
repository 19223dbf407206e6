"""Pure: `tests:` (in defaults and per image) -> ImageTest records, every
problem collected through the expander (javabase.manifest.runtime.Expanding).
Running them is javabase.build.image_tests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .model import ImageTest
from .runtime import Expanding
from .yamlsource import Path_, format_key

KINDS = ("command", "file", "metadata")
COMMAND_ONLY = ("exit_code", "stdout", "stderr", "excluded_stdout", "excluded_stderr", "timeout")
FILE_ONLY = ("exists", "mode", "owner", "contains")
PATTERN_KEYS = ("stdout", "stderr", "excluded_stdout", "excluded_stderr", "contains")


def image_tests(ex: Expanding, line_of: Any, raw: Mapping[str, Any], defaults: Mapping[str, Any], base: Path_,
                variables: Mapping[str, str]) -> tuple[ImageTest, ...]:
    """defaults.tests, then the image's own; an image's test replaces a default's
    of the same name. `line_of(path)` is the line a path is on."""
    out: dict[str, ImageTest] = {}
    for items, path in ((defaults.get("tests"), ("defaults", "tests")), (raw.get("tests"), (*base, "tests"))):
        names: set[str] = set()
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            found = one_test(ex, item, (*path, index), variables, line_of((*path, index)))
            if found is None:
                continue
            if found.name in names:
                ex.problem((*path, index, "name"), f"test {found.name!r} is declared twice here; rename one")
                continue
            names.add(found.name)
            out.pop(found.name, None)
            out[found.name] = found
    return tuple(out.values())


def one_test(ex: Expanding, item: Mapping[str, Any], path: Path_, variables: Mapping[str, str], line: int
             ) -> ImageTest | None:
    name = item["name"]
    if not name.strip() or not ex.safe(name, (*path, "name"), "test name", "quoted"):
        if not name.strip():
            ex.problem((*path, "name"), "a test needs a name that says what it shows")
        return None
    kinds = [kind for kind in KINDS if kind in item]
    if len(kinds) != 1:
        ex.problem(path, f"test {name!r} has {' and '.join(kinds) or 'none'} of command, file and metadata; "
                         "give exactly one")
        return None
    kind = kinds[0]
    misplaced = [k for k in item if (k in COMMAND_ONLY and kind != "command") or (k in FILE_ONLY and kind != "file")]
    if misplaced:
        wants = "command" if misplaced[0] in COMMAND_ONLY else "file"
        ex.problem((*path, misplaced[0]), f"{misplaced[0]} is for a {wants} test, and test {name!r} is a {kind} test")
        return None
    if kind == "file" and item.get("exists") is False and any(k in item for k in ("mode", "owner", "contains")):
        ex.problem(path, f"test {name!r} says the file must not exist, and gives what it must be like; "
                         "drop mode, owner and contains, or exists: false")
        return None
    values = {k: _text(ex, v, (*path, k), variables) for k, v in item.items() if k in ("file", "owner")}
    patterns = {k: _patterns(ex, item.get(k), (*path, k), variables) for k in PATTERN_KEYS}
    command = _command(ex, item.get("command"), (*path, "command"), variables)
    metadata = _metadata(ex, item.get("metadata"), (*path, "metadata"), variables)
    if None in (*values.values(), *patterns.values()) or (kind == "command" and command is None) \
            or (kind == "metadata" and metadata is None):
        return None
    if kind == "file" and not str(values["file"]).startswith("/"):
        ex.problem((*path, "file"), f"file {values['file']!r} is not an absolute path; start it with /")
        return None
    user, env, workdir = metadata or (None, (), None)
    return ImageTest(
        name=name, key=format_key(path), line=line, command=command, exit_code=_number(item.get("exit_code"), 0),
        stdout=patterns["stdout"] or (), stderr=patterns["stderr"] or (),
        excluded_stdout=patterns["excluded_stdout"] or (), excluded_stderr=patterns["excluded_stderr"] or (),
        timeout=_number(item.get("timeout"), 120), file=values.get("file"), exists=item.get("exists") is not False,
        mode=_mode(item.get("mode")), owner=values.get("owner"),
        contains=patterns["contains"] or (), metadata=kind == "metadata", user=user, env=env, workdir=workdir)


def _text(ex: Expanding, value: Any, path: Path_, variables: Mapping[str, str]) -> str | None:
    if not isinstance(value, str):
        return None
    value = ex.substitute(value, variables, path)
    return value if ex.safe(value, path, "value", "quoted") else None


def _patterns(ex: Expanding, value: Any, path: Path_, variables: Mapping[str, str]) -> tuple[str, ...] | None:
    """Regular expressions, placeholders replaced; None when one does not compile."""
    out = []
    for index, pattern in enumerate(value if isinstance(value, list) else []):
        if not isinstance(pattern, str):
            continue
        text = ex.substitute(pattern, variables, (*path, index))
        try:
            re.compile(text, re.MULTILINE)
        except re.error as exc:
            ex.problem((*path, index), f"{text!r} is not a regular expression: {exc}; fix it, or escape the "
                                       "character with a backslash")
            return None
        out.append(text)
    return tuple(out)


def _command(ex: Expanding, value: Any, path: Path_, variables: Mapping[str, str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    words = []
    for index, word in enumerate(value):
        if not isinstance(word, str):
            return None
        word = ex.substitute(word, variables, (*path, index))
        if "\x00" in word:
            ex.problem((*path, index), "contains a NUL byte; remove it")
            return None
        words.append(word)
    return tuple(words)


def _metadata(ex: Expanding, value: Any, path: Path_, variables: Mapping[str, str]
              ) -> tuple[str | None, tuple[tuple[str, str], ...], str | None] | None:
    if not isinstance(value, dict):
        return None
    user = _text(ex, value["user"], (*path, "user"), variables) if "user" in value else None
    workdir = _text(ex, value["workdir"], (*path, "workdir"), variables) if "workdir" in value else None
    env = value["env"] if isinstance(value.get("env"), dict) else {}
    pairs = tuple((k, text) for k, v in env.items()
                  if (text := _text(ex, v, (*path, "env", k), variables)) is not None)
    return user, pairs, workdir


def _mode(value: Any) -> int | None:
    """An octal mode such as '0644' (anything else the schema reports)."""
    return int(value, 8) if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value) else None


def _number(value: Any, default: int) -> int:
    """A whole number the schema allowed (a wrong type is reported there: the default stands in)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default
