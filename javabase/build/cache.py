"""The artifact cache ($JAVABASE_CACHE): files by sha256 under sha256/, kept at
most JAVABASE_CACHE_MAX bytes (least recently used first, never an entry the
current run needs), and a memo of files' digests so that a file that did not
change is not hashed again."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import CannotWrite
from ..files import write_quietly

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class DigestMemo:
    """sha256 of files, remembered by (device, inode, size, mtime, ctime). Any
    write to a file changes its ctime, which no user tool can set back, so a
    remembered digest is as good as hashing again; a file whose fingerprint
    differs is hashed again. Kept in <cache>/verified.json, written atomically;
    an unreadable memo is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            self.known: dict[str, list[object]] = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    @staticmethod
    def fingerprint(path: Path) -> list[object]:
        st = path.stat()
        return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    def sha256(self, path: Path) -> str:
        key = str(path.resolve())
        fingerprint = self.fingerprint(path)
        with self.lock:
            known = self.known.get(key)
        if known is not None and known[:-1] == fingerprint:
            return str(known[-1])
        digest = sha256_of(path)
        self.remember(path, digest)
        return digest

    def remember(self, path: Path, digest: str) -> None:
        with self.lock:
            self.known[str(path.resolve())] = [*self.fingerprint(path), digest]
            self.changed = True

    def forget(self, path: Path) -> None:
        with self.lock:
            self.changed = self.known.pop(str(path.resolve()), None) is not None or self.changed

    def save(self) -> None:
        if not self.changed:
            return
        with self.lock:
            text = json.dumps(self.known)
        write_quietly(self.path, text)  # a memo that cannot be written costs only time
        self.changed = False


def touch(cache: Path, sha256s: Iterable[str]) -> None:
    """Record that these entries were used now (in <cache>/used.json, not in the
    files' times, which the DigestMemo fingerprints)."""
    path = cache / "used.json"
    used = _used(path)
    now = time.time()
    used.update(dict.fromkeys(sha256s, now))
    write_quietly(path, json.dumps(used))  # not written costs only the accuracy of the LRU order


def _used(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def plan_cache(cache: Path, needed: set[str], limit: int) -> list[tuple[Path, int]]:
    """Entries to delete, least recently used first, until the cache fits `limit`;
    never one in `needed` (sha256s the current manifest uses)."""
    entries = [(p, p.stat().st_size) for p in (cache / "sha256").glob("*") if p.is_file()] \
        if (cache / "sha256").is_dir() else []
    total = sum(size for _, size in entries)
    used = _used(cache / "used.json")
    out = []
    for path, size in sorted(entries, key=lambda e: (used.get(e[0].name, 0.0), e[0].name)):
        if total <= limit:
            break
        if path.name in needed:
            continue
        out.append((path, size))
        total -= size
    return out


class CacheLock:
    """Runs share the cache: each holds <cache>/lock shared (flock) from its first
    fetch until its builds are done, and trimming the cache takes it exclusively,
    only when no other run holds it, so no run's entry goes while it is in use."""

    def __init__(self, root: Path) -> None:
        self.path = root / "lock"
        self.handle: IO[bytes] | None = None

    def share(self) -> IO[bytes]:
        """Hold the cache shared (waits for a trim under way). Raises CannotWrite."""
        if self.handle is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o664)
            except OSError as exc:
                raise CannotWrite.at(self.path, exc, "the artifact cache's lock (JAVABASE_CACHE)") from None
            self.handle = os.fdopen(fd, "rb")
        fcntl.flock(self.handle, fcntl.LOCK_SH)
        return self.handle

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Whether this run is the only one using the cache now (then it holds it
        exclusively for the block, and shared again after)."""
        handle = self.share()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_SH)

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
