"""Shared by every stage: times as Docker and OCI write them (RFC 3339, UTC)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """An HTTP Retry-After header (RFC 9110 10.2.3: delay-seconds or an HTTP-date)
    as seconds to wait from `now` (default: the current time), never negative;
    None when it is missing or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
