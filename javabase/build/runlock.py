"""One javabase run at a time per engine: tags are names in the engine that two
runs would otherwise move under each other between build, tag and push. A run
that finds the lock held says who holds it and since when, then waits."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ..errors import CannotWrite


@contextlib.contextmanager
def engine_lock(where: str, say: Callable[[str], None], folder: Path) -> Iterator[None]:
    """Hold the lock of the engine at `where` (a file in `folder`, JAVABASE_LOCK_DIR)
    for the duration of the block; `say` is told when another run holds it.
    Raises CannotWrite when the lock file cannot be made."""
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
