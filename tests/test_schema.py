"""The schema is the contract: draft 2020-12, closed objects, every property described."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator

from javabase.manifest.schema import SCHEMA_PATH


def _objects(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}/{index}")


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_object_is_closed_and_every_property_described() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    undescribed = []
    for path, obj in _objects(schema):
        assert "additionalProperties" in obj, f"{path} is open"
        for name, prop in obj.get("properties", {}).items():
            if "description" not in prop and not ("$ref" in prop and len(prop) == 1 and
                                                  "description" in _resolve(schema, prop["$ref"])):
                undescribed.append(f"{path}/properties/{name}")
    assert undescribed == []


def _resolve(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = schema
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return dict(node)
