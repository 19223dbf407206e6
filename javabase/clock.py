"""Shared by every stage: times as Docker and OCI write them (RFC 3339, UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def rfc3339(epoch: int) -> str:
    """Seconds since the epoch -> 2026-11-30T07:27:06Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """An RFC 3339 time as Docker writes it (nanoseconds) -> seconds since the epoch; 0 if unreadable."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return 0.0
    base, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(base + (fraction or "")[:7] + ("+00:00" if zone in (None, "Z") else zone))
    return stamp.timestamp()
