"""A backend and a registry that live in memory, for tests of the doers
(scheduler, builder, pusher) that need no engine. The real ones are tested
end to end in tests/e2e."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from javabase.backends.base import BuildOutcome, BuildRequest, LineSink, LocalImage
from javabase.decide import Remote
from javabase.errors import RegistryError


@dataclass
class FakeBackend:
    name: str = "fake"
    where: str = "memory"
    stored: dict[str, LocalImage] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pushed: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    registry: FakeRegistry | None = None  # where pushes land
    lands_as: str | None = None  # the image a racing run makes land instead
    lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome:
        dockerfile = (request.context / "Dockerfile").read_text()
        image_id = f"sha256:{abs(hash(dockerfile)):064d}"[:71]
        with self.lock:
            self.built.append(dockerfile)
            self.stored[image_id] = LocalImage(image_id)
        on_line("built")
        return BuildOutcome(image_id, 1)

    def images(self, label: str) -> list[LocalImage]:
        return [i for i in self.stored.values() if label in i.labels]

    def image(self, reference: str) -> LocalImage | None:
        return self.stored.get(self.tags.get(reference, reference))

    def tag(self, image_id: str, reference: str) -> None:
        self.tags[reference] = image_id

    def push(self, reference: str, on_line: LineSink, credential: object = None) -> str:
        digest = "sha256:" + "d" * 64
        with self.lock:
            self.pushed.append(reference)
            if self.registry is not None:
                repository, _, tag = reference.rpartition(":")
                landed = self.lands_as or self.tags.get(reference)
                self.registry.held[f"{repository.partition('/')[2]}:{tag}"] = Remote(digest, landed)
        return digest

    def export(self, image_id: str, dest: Path) -> None:
        raise NotImplementedError

    def load(self, archive: Path) -> None:
        raise NotImplementedError

    def remove(self, image_id: str) -> None:
        self.stored.pop(image_id, None)

    def cancel(self) -> None:
        pass


@dataclass
class FakeRegistry:
    """Answers manifest lookups from a dict; `fail` makes every lookup raise."""

    held: dict[str, Remote] = field(default_factory=dict)
    fail: Callable[[str], RegistryError] | None = None
    credential: None = None
    asked: list[str] = field(default_factory=list)

    host: str = "r:5000"
    refuse_push: bool = False

    def can_push(self, name: str) -> bool:
        self.asked.append(f"can push {name}")
        return not self.refuse_push

    def manifest(self, name: str, reference: str) -> Remote | None:
        self.asked.append(f"{name}:{reference}")
        if self.fail is not None:
            raise self.fail(f"{name}:{reference}")
        return self.held.get(f"{name}:{reference}")
