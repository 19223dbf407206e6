"""The one rule for every value from the manifest that reaches a Dockerfile or a
shell: it stays inside its instruction (or shell word) and arrives exactly as
written. There is one rule per position a value can take in a Dockerfile, and
each has two faces: `refusal(position, value)` says why a value cannot go
there (validation reports it as `file:line: key: ...`), and the filter of the
same name writes it there (templates use only these filters for values:
javabase.plan.templates refuses a template that writes a value without one).

Positions (Dockerfile reference, "Environment replacement" and "Parser
directives"; POSIX shell quoting):
- word: an unquoted argument of FROM, WORKDIR, USER, ADD or COPY, or an ENV,
  LABEL or ARG key. The parser splits on whitespace and replaces `$VAR`, so
  only a conservative set of characters may appear.
- quoted: a double-quoted ENV, LABEL or ARG value. `\\` and `"` are escaped;
  `$` is escaped too, so the image holds the text exactly as written, except
  a `${NAME}` reference, which the manifest uses on purpose (`PATH:
  /usr/java/bin:${PATH}`) and the parser replaces with the variable's value.
- shell: one word of a RUN command in shell form, single-quoted when needed.
- sed_substitute: a sed `s|pattern|replacement|g` expression whose
  replacement is the value (`\\`, `&` and the delimiter escaped), as one
  shell word.
- command: a whole RUN command from the manifest (`run:`): shell code by
  design, so only what would leave the RUN instruction is refused.
- exec_form: ENTRYPOINT and CMD as a JSON array (no shell, no replacement).
- comment: text on a `#` comment line.
Line breaks and NUL are refused everywhere. Pure."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable

WORD_RE = re.compile(r"^[A-Za-z0-9._/:@%+=,~-]+$")
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
POSITIONS = ("word", "quoted", "shell", "shell_words", "sed_substitute", "command", "exec_form", "comment")


class Unrepresentable(ValueError):
    """A value cannot be written at its position (templates: RenderError)."""


def _line(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL byte"
    if "\n" in value or "\r" in value:
        return "contains a line break, which would start a new Dockerfile instruction"
    return None


def _word(value: str) -> str | None:
    if not value:
        return "is empty"
    if any(ch.isspace() for ch in value):
        return "has a space or tab, which would make it several arguments of its instruction"
    if "$" in value:
        return "has a $, which the Dockerfile parser would replace with a variable's value"
    if not WORD_RE.match(value):
        bad = sorted({ch for ch in value if not WORD_RE.match(ch)})
        return (f"has {' '.join(repr(ch) for ch in bad)}, which an unquoted Dockerfile argument may not hold; "
                "use letters, digits and . _ / : @ % + = , ~ -")
    return None


def shell_word_reason(value: str) -> str | None:
    """Why a value cannot stand as one word of a shell command that a template
    writes into a RUN instruction (a user or group name, a home directory, a
    package or certificate file name), or None if it can: a `word` (see
    _word) that does not start with `-` (a command would read it as an option)."""
    reason = _line(value) or _word(value)
    if reason is None and value.startswith("-"):
        return "starts with '-', which a command would read as an option"
    return reason


def _command(value: str) -> str | None:
    if value.rstrip(" \t").endswith("\\"):
        return "ends with a backslash, which would continue the instruction onto the next line"
    return None


_CHECKS: dict[str, Callable[[str], str | None]] = {
    "word": _word,
    "command": _command,
}


def refusal(position: str, value: str) -> str | None:
    """Why `value` cannot be written at `position` (one of POSITIONS), or None.
    Only word and command refuse more than line breaks and NUL: the other
    positions escape what they must."""
    check = _CHECKS.get(position)
    return _line(value) or (check(value) if check is not None else None)


def _checked(position: str, value: object) -> str:
    text = str(value)
    reason = refusal(position, text)
    if reason:
        raise Unrepresentable(f"{text!r} {reason}")
    return text


def word(value: object) -> str:
    """An unquoted Dockerfile argument, as it is (Unrepresentable if it is not one)."""
    return _checked("word", value)


def quoted(value: object) -> str:
    """A double-quoted ENV, LABEL or ARG value that the image holds exactly as
    written; `${NAME}` references are left for the parser to replace."""
    text = _checked("quoted", value)
    out, last = [], 0
    for match in _REFERENCE.finditer(text):
        out += [_escape(text[last:match.start()]), match.group(0)]
        last = match.end()
    out.append(_escape(text[last:]))
    return '"' + "".join(out) + '"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def shell(value: object) -> str:
    """One shell word: the value single-quoted when it holds anything the shell
    would interpret."""
    return shlex.quote(_checked("shell", value))


def shell_words(values: Iterable[object]) -> str:
    """Several shell words, each quoted on its own, separated by spaces."""
    return " ".join(shell(value) for value in values)


def sed_substitute(replacement: object, pattern: str, delimiter: str = "|") -> str:
    """`s|pattern|replacement|g` as one shell word, the replacement taken
    literally (no `&`, `\\1` or delimiter meaning)."""
    text = _checked("sed_substitute", replacement)
    literal = text.replace("\\", "\\\\").replace("&", "\\&").replace(delimiter, "\\" + delimiter)
    return shell(f"s{delimiter}{pattern}{delimiter}{literal}{delimiter}g")


def command(value: object) -> str:
    """A RUN command from the manifest, as written (shell code by design)."""
    return _checked("command", value)


def exec_form(argv: Iterable[object]) -> str:
    """ENTRYPOINT and CMD in exec form: a JSON array (line breaks escaped by JSON)."""
    return json.dumps([str(arg) for arg in argv])


def comment(value: object) -> str:
    """Text for a `#` comment line."""
    return _checked("comment", value)


FILTERS: dict[str, Callable[..., str]] = {
    "word": word, "quoted": quoted, "shell": shell, "shell_words": shell_words, "sed_substitute": sed_substitute,
    "command": command, "exec_form": exec_form, "comment": comment,
}
