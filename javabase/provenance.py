"""Where a build comes from: its source revision and its timestamp.

SOURCE_DATE_EPOCH wins when set; otherwise the time of the last commit that
touched the manifest or the templates, so that rebuilding a commit gives the
same `created` label; outside git, the current time."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Provenance:
    epoch: int
    revision: str

    @property
    def created(self) -> str:
        return rfc3339(self.epoch)


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    out = result.stdout.strip()
    return out if result.returncode == 0 and out else None


def provenance(manifest_path: Path, templates_dir: Path) -> Provenance:
    where = manifest_path.resolve().parent
    revision = _git(["rev-parse", "HEAD"], where) or "unknown"
    configured = os.environ.get("SOURCE_DATE_EPOCH")
    if configured and configured.isdigit():
        return Provenance(int(configured), revision)
    last = _git(["log", "-1", "--format=%ct", "--", str(manifest_path.resolve()), str(templates_dir)], where)
    return Provenance(int(last) if last and last.isdigit() else int(time.time()), revision)


def parse_time(text: str) -> float:
    """An RFC 3339 time as Docker writes it (nanoseconds) -> seconds since the epoch; 0 if unreadable."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return 0.0
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + (fraction or "")[:7] + ("+00:00" if zone in (None, "Z") else zone))
    return stamp.timestamp()
