"""A backend and a registry that live in memory, for tests of the doers
(scheduler, builder, pusher) that need no engine. The real ones are tested
end to end in tests/e2e."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from javabase.backends.base import BuildOutcome, BuildRequest, LineSink, LocalImage
from javabase.decide import Remote
from javabase.errors import RegistryError


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeBackend:
    name: str = "fake"
    where: str = "memory"
    native: str = "linux/amd64"
    stored: dict[str, LocalImage] = field(default_factory=dict)
    saved: dict[str, tuple[bytes, list[bytes]]] = field(default_factory=dict)  # id -> (config, layer tars)
    tags: dict[str, str] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_image(self, *contents: bytes) -> str:
        """An image whose layers are tars holding one file each; returns its ID."""
        layers = []
        for index, content in enumerate(contents):
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                info = tarfile.TarInfo(f"file{index}")
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            layers.append(buffer.getvalue())
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]}}).encode()
        image_id = sha(config)
        with self.lock:
            self.saved[image_id] = (config, layers)
            self.stored[image_id] = LocalImage(image_id, layers=tuple(sha(layer) for layer in layers))
        return image_id

    def build(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome:
        dockerfile = (request.context / "Dockerfile").read_text()
        with self.lock:
            self.built.append(dockerfile)
        on_line("built")
        return BuildOutcome(self.add_image(dockerfile.encode()), 1)

    def images(self, label: str) -> list[LocalImage]:
        return [i for i in self.stored.values() if label in i.labels]

    def image(self, reference: str, history: bool = False) -> LocalImage | None:
        return self.stored.get(self.tags.get(reference, reference))

    def tag(self, image_id: str, reference: str) -> None:
        self.tags[reference] = image_id

    def pull(self, reference: str, on_line: LineSink, credential: object = None) -> str:
        raise NotImplementedError

    def export(self, image_id: str, dest: Path) -> None:
        config, layers = self.saved[image_id]
        with tarfile.open(dest, "w") as tar:
            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

            names = [f"{sha(layer)[7:]}/layer.tar" for layer in layers]
            for name, layer in zip(names, layers, strict=True):
                add(name, layer)
            add(f"{image_id[7:]}.json", config)
            add("manifest.json", json.dumps([{"Config": f"{image_id[7:]}.json", "RepoTags": None,
                                              "Layers": names}]).encode())

    def load(self, archive: Path) -> None:
        raise NotImplementedError

    def remove(self, image_id: str, force: bool = True) -> None:
        self.stored.pop(image_id, None)

    def cancel(self) -> None:
        pass

    def save(self, references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        raise NotImplementedError

    def in_use(self) -> set[str]:
        return set()

    def untag(self, reference: str) -> None:
        self.tags.pop(reference, None)


@dataclass
class FakeRegistry:
    """Tags, manifests and blobs in dicts. `fail` makes every read raise;
    `lands_as` makes a racing run's image land under every tag pushed."""

    held: dict[str, Remote] = field(default_factory=dict)  # "name:tag" -> what it holds
    fail: Callable[[str], RegistryError] | None = None
    lands_as: str | None = None
    refuse_push: bool = False
    host: str = "r:5000"
    credential: None = None
    blobs: dict[str, set[str]] = field(default_factory=dict)  # repository -> digests
    uploads: list[str] = field(default_factory=list)
    manifests_put: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def manifest(self, name: str, reference: str) -> Remote | None:
        self.asked.append(f"{name}:{reference}")
        if self.fail is not None:
            raise self.fail(f"{name}:{reference}")
        return self.held.get(f"{name}:{reference}")

    def can_push(self, name: str) -> bool:
        return not self.refuse_push

    def has_blob(self, name: str, digest: str) -> bool:
        return digest in self.blobs.get(name, set())

    def upload_blob(self, name: str, digest: str, body: Callable[[], bytes], mount_from: str | None = None) -> str:
        if self.refuse_push:
            raise RegistryError(f"registry {self.host} refused the upload (HTTP 401 on POST /v2/{name}/blobs/uploads/)")
        if mount_from is not None and digest in self.blobs.get(mount_from, set()):
            self.blobs.setdefault(name, set()).add(digest)
            return f"mounted from {mount_from}"
        data = body()
        assert sha(data) == digest
        self.uploads.append(f"{name}@{digest}")
        self.blobs.setdefault(name, set()).add(digest)
        return "uploaded"

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        config = json.loads(body)["config"]["digest"]
        self.manifests_put.append(f"{name}:{reference}")
        self.held[f"{name}:{reference}"] = Remote(sha(body), self.lands_as or config)
        return sha(body)
