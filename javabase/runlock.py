"""One javabase run at a time per engine: tags are names in the engine that two
runs would otherwise move under each other between build, tag and push. A run
that finds the lock held says who holds it and since when, then waits."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import CannotWrite


def lock_dir() -> Path:
    """$JAVABASE_LOCK_DIR, or javabase-locks in the system's temporary directory."""
    configured = os.environ.get("JAVABASE_LOCK_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "javabase-locks"


@contextlib.contextmanager
def engine_lock(where: str, say: Callable[[str], None], directory: Path | None = None) -> Iterator[None]:
    """Hold the lock of the engine at `where` for the duration of the block."""
    folder = directory or lock_dir()
    path = folder / (hashlib.sha256(where.encode()).hexdigest()[:16] + ".lock")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:
        raise CannotWrite.at(path, exc, "the run lock") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another javabase run"
            say(f"waiting: {holder} holds the lock of the engine at {where} ({path})")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            say(f"got the lock of the engine at {where} after {time.monotonic() - started:.1f} s")
        handle.seek(0)
        handle.truncate()
        handle.write(f"javabase pid {os.getpid()} since {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
