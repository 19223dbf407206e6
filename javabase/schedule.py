"""Runs work over a tree of images: a child starts as soon as its own parent is
done, up to `jobs` at a time. A failure skips the failed image's descendants;
without keep_going nothing new starts after it. Knows nothing of Docker: the
work and what to do with a skipped image are parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from enum import StrEnum


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


def run_tree(
    order: Sequence[str],
    parent_of: Mapping[str, str | None],
    work: Callable[[str], bool],
    skip: Callable[[str, str], None],
    *,
    jobs: int,
    keep_going: bool,
    interrupt: Callable[[], None] = lambda: None,
) -> dict[str, Outcome]:
    """Run `work(name)` for every name in `order` (parents before children);
    work returns whether it succeeded. `skip(name, reason)` is told of every
    image that is not started. Returns every image's outcome.

    On KeyboardInterrupt: `interrupt()` is called (it must make the running work
    end soon), nothing new starts, the running work is waited for, and the
    KeyboardInterrupt goes on to the caller."""
    outcome: dict[str, Outcome] = {}
    selected = set(order)
    pending = list(order)
    running: dict[Future[bool], str] = {}
    stopped_by: str | None = None
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="build") as pool:
        while pending or running:
            for name in list(pending):
                parent = parent_of.get(name)
                if parent is not None and outcome.get(parent) in (Outcome.FAILED, Outcome.SKIPPED):
                    what = "failed" if outcome[parent] == Outcome.FAILED else "was skipped"
                    reason = f"skipped: {parent} {what}"
                elif stopped_by is not None:
                    reason = f"not started: {stopped_by} failed (--keep-going builds the rest)"
                elif parent is not None and parent in selected and parent not in outcome:
                    continue  # its parent is not done yet
                elif len(running) >= jobs:
                    break
                else:
                    pending.remove(name)
                    running[pool.submit(work, name)] = name
                    continue
                pending.remove(name)
                outcome[name] = Outcome.SKIPPED
                skip(name, reason)
            if not running:
                continue
            try:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                interrupt()
                for name in pending:
                    skip(name, "not started: interrupted")
                wait(list(running))
                raise
            for future in done:
                name = running.pop(future)
                outcome[name] = Outcome.DONE if future.result() else Outcome.FAILED
                if outcome[name] == Outcome.FAILED and not keep_going and stopped_by is None:
                    stopped_by = name
    return outcome
