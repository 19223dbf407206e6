"""Writing files so that a reader never sees half of one, and a failure is one
line naming the path (exit CANNOT_WRITE), never a traceback."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import CannotWrite


def write_atomically(path: Path, text: str, what: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CannotWrite.at(path, exc, what) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as sink:
            sink.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CannotWrite.at(path, exc, what) from None


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
