"""The one rule for every value from the manifest that reaches a Dockerfile: it
stays inside its instruction, and is written there the same way every time
(`dq` for ENV, LABEL and ARG values, `exec_form` for ENTRYPOINT and CMD). Pure."""

from __future__ import annotations

import json
import re

# What may stand unquoted as one word of a shell command the templates write:
# no space, quote, glob, variable, redirection or separator.
_SHELL_WORD = re.compile(r"^[A-Za-z0-9_./:=+@%,-]+$")


def breakout_reason(value: str, quoted: bool = False) -> str | None:
    """Why a value would escape its Dockerfile instruction, or None if it is safe.

    - a line break starts a new instruction;
    - a NUL byte ends the text for some parsers;
    - unquoted (WORKDIR, USER, ADD/COPY paths, package names): a trailing
      backslash continues the instruction onto the next line, which would
      swallow the template's next instruction (e.g. USER), and an unbalanced
      quote changes how the rest of the line is split.
    Quoted values (ENV, LABEL, ARG: written with templates.dq, which escapes
    quotes and backslashes) may hold quotes and backslashes."""
    if "\x00" in value:
        return "contains a NUL byte"
    if "\n" in value or "\r" in value:
        return "contains a line break, which would start a new Dockerfile instruction"
    if quoted:
        return None
    if value.rstrip(" \t").endswith("\\"):
        return "ends with a backslash, which would continue the instruction onto the next line"
    if value.count('"') % 2:
        return "has an unbalanced double quote"
    if value.count("'") % 2:
        return "has an unbalanced single quote"
    return None


def shell_word_reason(value: str) -> str | None:
    """Why a value cannot stand as one unquoted word of a shell command that a
    template writes into a RUN instruction (a user or group name, a home
    directory, a package or certificate file name), or None if it can: letters,
    digits and `_ . / : = + @ % , -` only, and not starting with `-` (it would
    read as an option)."""
    reason = breakout_reason(value)
    if reason:
        return reason
    if not value:
        return "is empty"
    if not _SHELL_WORD.match(value):
        bad = sorted({ch for ch in value if not _SHELL_WORD.match(ch)})
        return (f"has {''.join(bad)!r}, which the shell would read as more than one word; use letters, digits "
                "and _ . / : = + @ % , - only")
    if value.startswith("-"):
        return "starts with '-', which a command would read as an option"
    return None


def dq(value: str) -> str:
    """Double-quote a value for ENV, LABEL and ARG; $VAR still expands."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_form(argv: tuple[str, ...]) -> str:
    """ENTRYPOINT and CMD in exec form: a JSON array."""
    return json.dumps(list(argv))
