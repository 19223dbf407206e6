"""JSON Schema validation of a parsed manifest, with every error turned into a
one-line Problem that names file, line and key and says what to do."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import Problem
from .yamlsource import Located, Path_

SCHEMA_PATH = Path(str(files("javabase").joinpath("schema", "images.schema.json")))

_JSON_KINDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
               "boolean": "true or false", "number": "a number"}


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def schema_problems(doc: Located) -> Iterable[Problem]:
    validator = Draft202012Validator(schema())
    for error in validator.iter_errors(doc.data):
        yield from _describe(doc, error)


def _describe(doc: Located, error: ValidationError) -> Iterable[Problem]:
    path: Path_ = tuple(error.absolute_path)
    schema_part = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        yield from _unknown_keys(doc, path, instance, sorted(schema_part.get("properties", {})))
        return
    if error.validator == "required" and isinstance(instance, dict):
        for key in schema_part.get("required", []):
            if key not in instance:
                yield doc.problem(path, f"missing required key '{key}'")
        return
    if "propertyNames" in error.relative_schema_path:
        what = ("is not a platform; write OS/ARCH, e.g. linux/amd64 or linux/arm64" if path and path[-1] == "platforms"
                else "is not a valid image name; use lower-case letters and digits, separated by '.', '_' or '-'")
        yield doc.problem((*path, str(instance)), f"{instance!r} {what}")
        return
    yield doc.problem(path, _message(error, schema_part, instance))


def _unknown_keys(doc: Located, path: Path_, instance: dict[str, Any], allowed: list[str]) -> Iterable[Problem]:
    for key in instance:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            tip = f"did you mean '{hint[0]}'?" if hint else f"allowed keys: {', '.join(allowed)}"
            yield doc.problem((*path, key), f"unknown key; {tip}")


def _message(error: ValidationError, schema_part: dict[str, Any], instance: Any) -> str:
    if "x-error" in schema_part and error.validator in ("pattern", "format"):
        return f"{instance!r} {schema_part['x-error']}"
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_JSON_KINDS.get(str(kind), str(kind)) for kind in kinds)
        return f"expected {expected}, got {_describe_value(instance)}"
    if error.validator == "minItems":
        return f"needs at least {error.validator_value} item(s)"
    if error.validator == "minProperties":
        return "must not be empty"
    if error.validator == "const":
        return f"must be {error.validator_value!r}"
    if error.validator == "enum" and isinstance(error.validator_value, list):
        return f"{instance!r} is not one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "dependentRequired" and isinstance(instance, dict) and isinstance(error.validator_value,
                                                                                           dict):
        pairs = [(key, dep) for key, deps in error.validator_value.items() if key in instance
                 for dep in deps if dep not in instance]
        return "; ".join(f"'{key}' needs '{dep}' too" for key, dep in pairs) or error.message
    return error.message


def _describe_value(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number); quote it to make it a string"
    return repr(value)
