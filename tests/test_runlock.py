"""The per-engine run lock: a second run waits and says who holds it; a file
planted at the lock's path is not followed, truncated or waited on; another
user's lock file, read-only to this one, is still waited for."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from javabase.build.runlock import engine_lock
from javabase.errors import CannotWrite

WHERE = "unix:///var/tmp/javabase/docker.sock"


def lock_file(folder: Path) -> Path:
    import hashlib

    return folder / (hashlib.sha256(WHERE.encode()).hexdigest()[:16] + ".lock")


def test_a_second_run_waits_for_the_first_and_says_who_holds_the_lock(tmp_path: Path) -> None:
    said: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with engine_lock(WHERE, said.append, tmp_path):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    inside.wait(10)
    threading.Timer(0.3, release.set).start()
    with engine_lock(WHERE, said.append, tmp_path):
        pass
    holder.join()
    assert said[0].startswith(f"waiting: javabase pid {os.getpid()} since ")
    assert said[0].endswith(f" holds the lock of the engine at {WHERE} ({lock_file(tmp_path)})")
    assert said[1].startswith(f"got the lock of the engine at {WHERE} after ")


def test_a_link_planted_at_the_lock_path_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "locks").mkdir()
    lock_file(tmp_path / "locks").symlink_to(victim)
    with pytest.raises(CannotWrite) as caught, engine_lock(WHERE, print, tmp_path / "locks"):
        pass
    planted = lock_file(tmp_path / "locks")
    assert str(caught.value).startswith(f"cannot write the run lock (JAVABASE_LOCK_DIR) {planted}: ")
    assert victim.read_text() == "precious\n"


def test_a_fifo_planted_at_the_lock_path_does_not_block_the_run(tmp_path: Path) -> None:
    os.mkfifo(lock_file(tmp_path))
    started = time.monotonic()
    with pytest.raises(CannotWrite) as caught, engine_lock(WHERE, print, tmp_path):
        pass
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"cannot use the run lock {lock_file(tmp_path)}: it is not a regular file (someone put another kind of file "
        "there); remove it, or set JAVABASE_LOCK_DIR to a directory of your own")


def test_another_users_lock_file_is_waited_for_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock_file(tmp_path).write_text("javabase pid 1 since 2026-11-30T00:00:00Z\n")
    real_open = os.open

    def as_another_user(path: str, flags: int, mode: int = 0o777) -> int:
        if str(path) == str(lock_file(tmp_path)) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", as_another_user)
    with engine_lock(WHERE, print, tmp_path):
        pass
    assert lock_file(tmp_path).read_text() == "javabase pid 1 since 2026-11-30T00:00:00Z\n"
