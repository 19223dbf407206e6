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
    all_started: Callable[[], None] = lambda: None,
) -> dict[str, Outcome]:
    """Run `work(name)` for every name in `order` (parents before children);
    work returns whether it succeeded. `skip(name, reason)` is told of every
    image that is not started. Returns every image's outcome. `all_started()`
    is called once, when every image has started and none has failed (so the
    last builds run: the jobs left free can do other work).

    On KeyboardInterrupt: `interrupt()` is called (it must make the running work
    end soon), nothing new starts, the running work is waited for, and the
    KeyboardInterrupt goes on to the caller."""
    tree = _Tree(order, parent_of, skip, jobs, keep_going)
    told = False
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="build") as pool:
        while tree.pending or tree.running:
            tree.start_ready(lambda name: pool.submit(work, name))
            if not tree.pending and not told and not any(o == Outcome.FAILED for o in tree.outcome.values()):
                told = True
                all_started()
            if not tree.running:
                continue
            try:
                done, _ = wait(list(tree.running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                interrupt()
                for name in tree.pending:
                    skip(name, "not started: interrupted")
                wait(list(tree.running))
                raise
            tree.collect(done)
    return tree.outcome


class _Tree:
    """The state of one run_tree: what is pending, running and done."""

    def __init__(self, order: Sequence[str], parent_of: Mapping[str, str | None], skip: Callable[[str, str], None],
                 jobs: int, keep_going: bool) -> None:
        self.parent_of, self.skip, self.jobs, self.keep_going = parent_of, skip, jobs, keep_going
        self.outcome: dict[str, Outcome] = {}
        self.selected = set(order)
        self.pending = list(order)
        self.running: dict[Future[bool], str] = {}
        self.stopped_by: str | None = None

    def start_ready(self, submit: Callable[[str], Future[bool]]) -> None:
        """Start what may start (its parent done, a job free); skip what never will."""
        for name in list(self.pending):
            parent = self.parent_of.get(name)
            if parent is not None and self.outcome.get(parent) in (Outcome.FAILED, Outcome.SKIPPED):
                what = "failed" if self.outcome[parent] == Outcome.FAILED else "was skipped"
                reason = f"skipped: {parent} {what}"
            elif self.stopped_by is not None:
                reason = f"not started: {self.stopped_by} failed (--keep-going builds the rest)"
            elif parent is not None and parent in self.selected and parent not in self.outcome:
                continue  # its parent is not done yet
            elif len(self.running) >= self.jobs:
                break
            else:
                self.pending.remove(name)
                self.running[submit(name)] = name
                continue
            self.pending.remove(name)
            self.outcome[name] = Outcome.SKIPPED
            self.skip(name, reason)

    def collect(self, done: set[Future[bool]]) -> None:
        for future in done:
            name = self.running.pop(future)
            self.outcome[name] = Outcome.DONE if future.result() else Outcome.FAILED
            if self.outcome[name] == Outcome.FAILED and not self.keep_going and self.stopped_by is None:
                self.stopped_by = name
