"""The scheduler on its own: order, parallelism, failure and --keep-going."""

from __future__ import annotations

import threading
import time

from javabase.plan.schedule import Outcome, run_tree

TREE = {"root": None, "a": "root", "b": "root", "a1": "a", "other": None}
ORDER = ["other", "root", "a", "b", "a1"]


class Recorder:
    def __init__(self, fail: set[str] = frozenset(), pause: float = 0.05) -> None:
        self.fail, self.pause = fail, pause
        self.events: list[tuple[str, str]] = []
        self.skipped: dict[str, str] = {}
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def work(self, name: str) -> bool:
        with self.lock:
            self.events.append(("start", name))
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.pause)
        with self.lock:
            self.running -= 1
            self.events.append(("end", name))
        return name not in self.fail

    def skip(self, name: str, reason: str) -> None:
        self.skipped[name] = reason


def test_a_child_starts_only_after_its_parent_ended_and_siblings_overlap() -> None:
    rec = Recorder()
    outcome = run_tree(ORDER, TREE, rec.work, rec.skip, jobs=2, keep_going=False)
    assert outcome == dict.fromkeys(ORDER, Outcome.DONE)
    at = {event: index for index, event in enumerate(rec.events)}
    for child, parent in TREE.items():
        if parent is not None:
            assert at[("start", child)] > at[("end", parent)], (child, parent)
    assert rec.most == 2


def test_never_more_than_jobs_at_once() -> None:
    rec = Recorder()
    run_tree(ORDER, TREE, rec.work, rec.skip, jobs=1, keep_going=False)
    assert rec.most == 1
    assert [n for kind, n in rec.events if kind == "start"] == ORDER


def test_a_failure_skips_the_descendants_and_stops_new_work() -> None:
    rec = Recorder(fail={"root"})
    outcome = run_tree(["root", "a", "b", "a1", "other"], TREE, rec.work, rec.skip, jobs=1, keep_going=False)
    assert outcome["root"] == Outcome.FAILED
    assert rec.skipped == {
        "a": "skipped: root failed",
        "b": "skipped: root failed",
        "a1": "skipped: a was skipped",
        "other": "not started: root failed (--keep-going builds the rest)",
    }


def test_keep_going_builds_what_does_not_depend_on_the_failure() -> None:
    rec = Recorder(fail={"a"})
    outcome = run_tree(ORDER, TREE, rec.work, rec.skip, jobs=2, keep_going=True)
    assert outcome == {"other": Outcome.DONE, "root": Outcome.DONE, "a": Outcome.FAILED, "b": Outcome.DONE,
                       "a1": Outcome.SKIPPED}
    assert rec.skipped == {"a1": "skipped: a failed"}


def test_a_parent_outside_the_selection_does_not_block() -> None:
    rec = Recorder()
    assert run_tree(["a1"], TREE, rec.work, rec.skip, jobs=1, keep_going=False) == {"a1": Outcome.DONE}


def test_all_started_is_told_once_when_the_last_image_starts_and_before_it_ends() -> None:
    rec = Recorder()
    told: list[list[tuple[str, str]]] = []
    run_tree(ORDER, TREE, rec.work, rec.skip, jobs=2, keep_going=False,
             all_started=lambda: told.append(list(rec.events)))
    assert len(told) == 1
    assert ("end", "a") in told[0] and ("end", "a1") not in told[0]  # a1, the last, was started: a had ended


def test_all_started_is_not_told_after_a_failure() -> None:
    rec = Recorder(fail={"a"})
    told: list[str] = []
    run_tree(ORDER, TREE, rec.work, rec.skip, jobs=2, keep_going=True, all_started=lambda: told.append("told"))
    assert told == []
