"""Which distribution releases are past their end of life: a small dated table
(eol.json, package data: per distribution its releases and the day security
support ends) and the lookup of an outside base reference in it. Pure; the
table is refreshed by `invoke update` when it can reach its source."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from .model import Manifest
from .references import parse_outside

TABLE = Path(str(files("javabase").joinpath("manifest", "eol.json")))
EOL_API = "https://endoflife.date"  # where `invoke update` refreshes the table from
# The images whose tags name a distribution release: name -> distribution.
IMAGES = {"alpine": "alpine", "debian": "debian", "library/alpine": "alpine", "library/debian": "debian"}


@dataclass(frozen=True)
class Release:
    distribution: str
    release: str  # "3.20", "12"
    eol: date  # the first day without security support
    codename: str | None = None


@cache
def table(path: Path = TABLE) -> dict[str, Any]:
    """The table as stored (`checked`, `sources`, `distributions`)."""
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


Table = Path | Mapping[str, Any]  # the file, or a table as stored, already read (a refreshed one)


def releases(path: Table = TABLE) -> list[Release]:
    out = []
    stored = table(path) if isinstance(path, Path) else path
    for distribution, rows in stored["distributions"].items():
        out += [Release(distribution, str(row["release"]), date.fromisoformat(row["eol"]), row.get("codename"))
                for row in rows]
    return out


def release_of(reference: str, path: Table = TABLE) -> Release | None:
    """The distribution release an outside reference names (alpine:3.20.10@sha256:...
    -> alpine 3.20; debian:bookworm-slim -> debian 12), or None when it names none
    the table knows."""
    parsed = parse_outside(reference)
    if isinstance(parsed, str) or not parsed.tag:
        return None
    distribution = IMAGES.get(parsed.path)
    for row in releases(path):
        if row.distribution == distribution and (
                re.match(rf"^{re.escape(row.release)}(?:[.-]|$)", parsed.tag)
                or (row.codename is not None and re.match(rf"^{row.codename}(?:-|$)", parsed.tag))):
            return row
    return None


def past_end_of_life(reference: str, today: date, path: Table = TABLE) -> tuple[Release, Release | None] | None:
    """(the release, the oldest supported release of the same distribution that
    replaces it) when `reference` names a release whose support ended before
    `today`; else None."""
    found = release_of(reference, path)
    if found is None or found.eol > today:
        return None
    newer = sorted((r for r in releases(path) if r.distribution == found.distribution and r.eol > today),
                   key=lambda r: r.eol)
    return found, newer[0] if newer else None


def warnings(manifest: Manifest, today: date, path: Path = TABLE) -> list[str]:
    """One line per entry whose outside base names a distribution release past
    its end of life on `today`: `file:line: images.<entry>.from: ...; move to ...`."""
    out: dict[str, str] = {}
    for image in manifest.images.values():
        key = f"images.{image.entry}.from"
        found = past_end_of_life(image.from_ref, today, path) if image.parent is None else None
        if found is None or key in out:
            continue
        old, new = found
        advice = (f"move to {new.distribution} {new.release} (supported until {new.eol})" if new is not None
                  else f"move to a supported {old.distribution} release")
        out[key] = (f"{manifest.shown}:{image.from_line}: {key}: {old.distribution} {old.release} is past its end of "
                    f"life (security support ended {old.eol}); {advice}")
    return list(out.values())
