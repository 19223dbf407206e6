"""Shared by every stage: writing files so that a reader never sees half of
one, and a failure is one line naming the path (exit CANNOT_WRITE), never a
traceback."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import CannotWrite


@contextlib.contextmanager
def replacing(path: Path, what: str, *, tmp_dir: Path | None = None) -> Iterator[Path]:
    """A fresh temporary file beside `path` (or in `tmp_dir`, on the same file
    system) for the block to fill; renamed over `path` when the block ends, and
    removed when it raises. An OSError of the block, the creation or the rename
    is CannotWrite naming `path` and `what`; other exceptions pass through (and
    `path` is left as it was)."""
    folder = tmp_dir or path.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(handle)
    except OSError as exc:
        raise CannotWrite.at(path, exc, what) from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise CannotWrite.at(path, exc, what) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_atomically(path: Path, data: str | bytes, what: str) -> None:
    """Write `data` (text as UTF-8) to a temporary file beside `path`, then rename
    it over `path`. Raises CannotWrite."""
    with replacing(path, what) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def write_quietly(path: Path, data: str | bytes) -> bool:
    """write_atomically for files that only save time (caches, memos): a failure
    is ignored. Returns whether the file was written."""
    try:
        write_atomically(path, data, "a cache file")
    except CannotWrite:
        return False
    return True


def remove(path: Path, what: str) -> None:
    """Remove a file if it is there."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise CannotWrite.at(path, exc, what) from None


def check_writable(directory: Path, what: str) -> None:
    """Fail now, before any work, when `directory` cannot be created or written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise CannotWrite.at(directory, exc, what) from None
