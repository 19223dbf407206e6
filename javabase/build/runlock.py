"""One javabase run at a time per engine: tags are names in the engine that two
runs would otherwise move under each other between build, tag and push. A run
that finds the lock held says who holds it and since when, then waits.

The lock is a file per engine in JAVABASE_LOCK_DIR (by default a directory of
the user's own, ~/.cache/javabase/locks). It is opened without following a
link and must be a regular file, so a file planted in a shared directory
cannot be truncated through it or block the run. Users who share one engine
point JAVABASE_LOCK_DIR at a directory they all can write; a user who may only
read another's lock file still waits for it (flock needs no write access)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..errors import CannotWrite


@contextlib.contextmanager
def engine_lock(where: str, say: Callable[[str], None], folder: Path) -> Iterator[None]:
    """Hold the lock of the engine at `where` (a file in `folder`) for the
    duration of the block; `say` is told when another run holds it. Raises
    CannotWrite when the lock file cannot be made or is not a regular file."""
    path = folder / (hashlib.sha256(where.encode()).hexdigest()[:16] + ".lock")
    fd, writable = _open(path, folder)
    with os.fdopen(fd, "r+" if writable else "r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another javabase run"
            say(f"waiting: {holder} holds the lock of the engine at {where} ({path})")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            say(f"got the lock of the engine at {where} after {time.monotonic() - started:.1f} s")
        if writable:
            _record(handle)
        try:
            yield
        finally:
            if writable:
                handle.seek(0)
                handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open(path: Path, folder: Path) -> tuple[int, bool]:
    """The lock file, opened without following links (read-only when it is
    another user's); whether it is writable."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd, writable = os.open(path, os.O_RDWR | flags, 0o664), True
        except PermissionError:
            fd, writable = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), False
    except OSError as exc:
        raise CannotWrite.at(path, exc, "the run lock (JAVABASE_LOCK_DIR)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CannotWrite(f"cannot use the run lock {path}: it is not a regular file (someone put another kind "
                          "of file there); remove it, or set JAVABASE_LOCK_DIR to a directory of your own")
    os.set_blocking(fd, True)
    return fd, writable


def _record(handle: IO[str]) -> None:
    """Who holds the lock, for a run that waits for it."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"javabase pid {os.getpid()} since {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
    handle.flush()
