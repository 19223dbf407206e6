"""Shared by every stage: what happened to each image, for people (a summary
table, lines prefixed by their image, download progress) and for CI (JSON)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from .files import write_atomically


class Status(StrEnum):
    PENDING = "pending"
    BUILT = "built"
    UP_TO_DATE = "up-to-date"
    UP_TO_DATE_REGISTRY = "up-to-date (registry)"  # not in this engine, and not needed here: not pulled
    PUSHED = "pushed"
    FAILED = "failed"
    SKIPPED = "skipped"


OK_STATES = (Status.BUILT, Status.UP_TO_DATE, Status.UP_TO_DATE_REGISTRY, Status.PUSHED)
# What an image of several platform rows counts as in a summary: the first of these any row has.
_IMAGE_STATUS = (Status.FAILED, Status.SKIPPED, Status.PENDING, Status.PUSHED, Status.BUILT, Status.UP_TO_DATE,
                 Status.UP_TO_DATE_REGISTRY)


@dataclass
class Phases:
    """Where a run's time went, for the report's `phases`: seconds per phase
    (wall-clock, from time.perf_counter; a phase entered again, or by several
    threads at once, adds up, so phases that overlap can sum to more than the
    run) and counts (engine steps, exports, bytes, blobs). Thread-safe."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the seconds the block takes (raising or not) to phase `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def count(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + amount

    def to_dict(self) -> dict[str, Any]:
        """{"seconds": {phase: seconds, rounded to ms}, "counts": {name: count}}."""
        with self.lock:
            return {"seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "counts": dict(self.counts)}


@dataclass
class ImageResult:
    name: str
    references: list[str]
    status: Status = Status.PENDING
    image_id: str | None = None
    input_digest: str | None = None
    changed: str | None = None
    pushed: dict[str, str] = field(default_factory=dict)
    already_in_registry: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    reason: str | None = None
    log_path: str | None = None
    artifacts: list[dict[str, str]] = field(default_factory=list)
    base: dict[str, str] = field(default_factory=dict)
    image: str = ""  # the manifest's image (for a multi-platform one, name is image@platform)
    platform: str | None = None
    sbom: str | None = None  # the SPDX JSON file written for it (--sbom)
    sbom_packages: int | None = None
    sbom_pushed: str | None = None  # the SBOM artifact's manifest digest in the registry
    # The references this engine gives it: `references` for a single-platform image and
    # for the engine's own platform; another platform's have -OS-ARCH appended.
    engine_references: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list, repr=False)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image or self.name,
            "platform": self.platform,
            "status": self.status,
            "image_id": self.image_id,
            "input_digest": self.input_digest,
            "built_because": self.changed,
            "references": self.references,
            "engine_references": self.engine_references,
            "pushed": self.pushed,
            "already_in_registry": self.already_in_registry,
            "started": self.started,
            "finished": self.finished,
            "duration": round(self.duration, 3) if self.duration is not None else None,
            "reason": self.reason,
            "log": self.log_path,
            "base": self.base,
            "sbom": self.sbom,
            "sbom_packages": self.sbom_packages,
            "sbom_pushed": self.sbom_pushed,
            "artifacts": self.artifacts,
        }


@dataclass
class Report:
    manifest: str
    registry: str
    push: bool
    results: dict[str, ImageResult]
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # why the run stopped before its end, if it did
    exit_code: int = 0
    phases: Phases = field(default_factory=Phases)  # where the run's time went

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.status in OK_STATES for r in self.results.values())

    def image_statuses(self) -> dict[str, Status]:
        """Per image (not per platform row): what happened to it, the first of
        failed, skipped, pending, pushed, built, up-to-date that one of its rows has."""
        rows: dict[str, set[Status]] = {}
        for result in self.results.values():
            rows.setdefault(result.image or result.name, set()).add(result.status)
        return {image: next((s for s in _IMAGE_STATUS if s in found), Status.PENDING)
                for image, found in rows.items()}

    def count(self, status: Status) -> int:
        """Images (not platform rows) whose summary status is `status`."""
        return sum(1 for s in self.image_statuses().values() if s == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "registry": self.registry,
            "push": self.push,
            "ok": self.ok,
            "error": self.error,
            "exit_code": self.exit_code,
            "notes": self.notes,
            "phases": self.phases.to_dict(),
            "images": [r.to_dict() for r in self.results.values()],
        }

    def write_json(self, path: Path) -> None:
        """Atomically: a reader never sees half a report."""
        write_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n", "the report")

    def table(self) -> str:
        rows = [("IMAGE", "STATUS", "IMAGE ID", "TIME", "DETAIL")]
        for result in self.results.values():
            short_id = result.image_id.split(":")[-1][:12] if result.image_id else "-"
            took = f"{result.duration:.1f}s" if result.duration is not None else "-"
            if result.reason:
                detail = result.reason
            elif result.pushed:
                fresh = len(result.pushed) - len(result.already_in_registry)
                detail = f"{len(result.pushed)} tag(s) in registry ({fresh} pushed now)"
            elif result.changed:
                detail = result.changed
            else:
                detail = f"{len(result.references)} tag(s)"
            rows.append((result.name, result.status, short_id, took, detail))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
                 for row in rows]
        summary = ", ".join(f"{self.count(s)} {s}" for s in Status if s != Status.PENDING and self.count(s))
        images = len(self.image_statuses())
        per_platform = f" ({len(self.results)} rows: one per platform)" if images != len(self.results) else ""
        noun = "image" if images == 1 else "images"
        return "\n".join([*lines, f"{images} {noun}{per_platform}: {summary}", *self.notes]) + "\n"


class Console:
    """Thread-safe output: every build line prefixed by its image."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.width = 0

    def set_names(self, names: list[str]) -> None:
        self.width = max((len(n) for n in names), default=0)

    def line(self, name: str, text: str) -> None:
        with self.lock:
            print(f"[{name.ljust(self.width)}] {text}", file=self.out, flush=True)

    def info(self, text: str) -> None:
        with self.lock:
            print(text, file=self.out, flush=True)


class Progress:
    """Progress of a download (or of what `verb` names: writing an archive, checking
    one): a redrawn line on a terminal, plain lines otherwise (CI)."""

    def __init__(self, out: TextIO | None = None, verb: str = "download") -> None:
        self.out = out or sys.stderr
        self.verb = verb
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.name = ""
        self.total: int | None = None
        self.seen = 0
        self.next_mark = 0

    def start(self, name: str, total: int | None) -> None:
        self.total, self.seen, self.next_mark = total, 0, 25
        self.name = name
        size = f" ({total / 1e6:.1f} MB)" if total else ""
        if not self.tty:
            print(f"{self.verb} {name}{size}: started", file=self.out, flush=True)

    def advance(self, count: int) -> None:
        self.seen += count
        if self.tty:
            if self.total:
                pct = 100 * self.seen // self.total
                self.out.write(f"\r{self.verb} {self.name}: {self.seen / 1e6:.1f}/{self.total / 1e6:.1f} MB {pct}%")
            else:
                self.out.write(f"\r{self.verb} {self.name}: {self.seen / 1e6:.1f} MB")
            self.out.flush()
        elif self.total and 100 * self.seen // self.total >= self.next_mark and self.next_mark < 100:
            # The last quarter mark crossed, so that CI logs read the same on every run.
            mark = min(75, (100 * self.seen // self.total) // 25 * 25)
            print(f"{self.verb} {self.name}: {mark}%", file=self.out, flush=True)
            self.next_mark = mark + 25

    def note(self, text: str) -> None:
        """A line of its own, between downloads."""
        print(text, file=self.out, flush=True)

    def finish(self, note: str, name: str | None = None) -> None:
        if self.tty and self.seen:
            self.out.write("\n")
        print(f"{self.verb} {name or self.name}: {note}", file=self.out, flush=True)
