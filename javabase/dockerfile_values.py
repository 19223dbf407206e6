"""One rule for every value from the manifest that reaches a Dockerfile: it must
stay inside its instruction. Pure."""

from __future__ import annotations


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
