"""A backend and a registry that live in memory, for tests of the doers
(scheduler, builder, pusher) that need no engine. The real ones are tested
end to end in tests/e2e."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from javabase.engine import BuildOutcome, BuildRequest, LineSink, LocalImage, PathInfo, Ran
from javabase.errors import EngineError, Interrupted, RegistryError, StepError
from javabase.publish.registry import Remote


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dockerfile_labels(dockerfile: str) -> dict[str, str]:
    """The key="value" pairs of a Dockerfile's last LABEL instruction (as javabase writes them)."""
    text = dockerfile[dockerfile.rfind("\nLABEL ") + 1:] if "\nLABEL " in dockerfile else ""
    pairs = re.findall(r'([A-Za-z0-9._/-]+)="((?:[^"\\]|\\.)*)"', text)
    return {key: re.sub(r"\\(.)", r"\1", value) for key, value in pairs}


@dataclass
class FakeBackend:
    name: str = "fake"
    where: str = "memory"
    native: str = "linux/amd64"
    version: str = "fake 1"
    stored: dict[str, LocalImage] = field(default_factory=dict)
    saved: dict[str, tuple[bytes, list[bytes]]] = field(default_factory=dict)  # id -> (config, layer tars)
    tags: dict[str, str] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    layer_data: dict[str, bytes] = field(default_factory=dict)  # diff ID -> layer tar
    events: list[tuple[str, str]] = field(default_factory=list)  # ("start" | "end", image title)
    fail: set[str] = field(default_factory=set)
    hold: set[str] = field(default_factory=set)
    cancelled: threading.Event = field(default_factory=threading.Event)
    pause: float = 0.0  # seconds each build takes
    bug: set[str] = field(default_factory=set)  # images whose build raises an unexpected exception
    engine_dies: set[str] = field(default_factory=set)  # images whose build loses the engine
    source: FakeRegistry | None = None  # what pull() pulls from
    pulled: list[str] = field(default_factory=list)
    no_emulator: set[str] = field(default_factory=set)  # platforms whose programs this engine cannot run
    probed: list[str] = field(default_factory=list)
    # Image tests: what a command gives (by its words joined with spaces; default: exit 0, no output),
    # what a path is (default: it does not exist), and every command run, with the title of its image.
    answers: dict[str, Ran] = field(default_factory=dict)
    paths: dict[str, PathInfo] = field(default_factory=dict)
    ran: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    exports: list[list[str]] = field(default_factory=list)  # what each export or save wrote (IDs or tags)

    def add_image(self, *contents: bytes, below: tuple[str, ...] = (), labels: dict[str, str] | None = None,
                  platform: str | None = None) -> str:
        """An image whose layers are tars holding one file each (on top of the diff
        IDs `below`, whose content this fake does not keep); returns its ID."""
        layers = []
        for index, content in enumerate(contents):
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                info = tarfile.TarInfo(f"file{index}")
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            layers.append(buffer.getvalue())
        os_name, arch = (platform or self.native).split("/")[:2]
        layers = [self.layer_data[diff_id] for diff_id in below] + layers
        diff_ids = [sha(layer) for layer in layers]
        step = f"LABEL {' '.join(f'{k}={v}' for k, v in sorted((labels or {}).items()))}"
        config = json.dumps({"architecture": arch, "os": os_name, "config": {"Labels": labels or {}},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids},
                             "history": [{"created_by": step}]}).encode()
        image_id = sha(config)
        with self.lock:
            self.layer_data.update({sha(layer): layer for layer in layers})
            self.saved[image_id] = (config, layers)
            self.stored[image_id] = LocalImage(image_id, labels=dict(labels or {}), layers=tuple(diff_ids),
                                               size=sum(len(layer) for layer in layers),
                                               last_step=step, platform=f"{os_name}/{arch}")
        return image_id

    def build(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome:
        """An image of one layer (the Dockerfile's text) on top of its parent's
        layers, with the labels of its LABEL instruction, as the engine would make it.
        `fail` names images whose build fails; `hold` images wait for cancel()."""
        dockerfile = (request.context / "Dockerfile").read_text()
        labels = dockerfile_labels(dockerfile)
        title = labels.get("org.opencontainers.image.title", "")
        with self.lock:
            self.events.append(("start", title))
        if title in self.hold:
            self.cancelled.wait(30)
            raise Interrupted("interrupted during step 2/2; the build was cancelled")
        time.sleep(self.pause)
        if title in self.bug:
            raise RuntimeError(f"a bug while building {title}")
        if title in self.engine_dies:
            raise EngineError("the Docker engine at DOCKER_HOST=memory stopped answering during the build")
        if title in self.fail:
            raise StepError("step 2/2 (RUN false): The command '/bin/sh -c false' returned a non-zero code: 1")
        parent = self.stored.get(request.build_args.get("JAVABASE_PARENT", ""))
        image_id = self.add_image(dockerfile.encode(), below=parent.layers if parent else (), labels=labels,
                                  platform=request.platform)
        with self.lock:
            self.built.append(dockerfile)
            self.events.append(("end", title))
        on_line("built")
        return BuildOutcome(image_id, 1)

    def run_probe(self, platform: str, program: bytes) -> str | None:
        """An engine without an emulator for the platforms in `no_emulator`."""
        self.probed.append(platform)
        if platform in self.no_emulator:
            return "The command '/probe' returned a non-zero code: 1 (exec format error)"
        return None

    def images(self, label: str) -> list[LocalImage]:
        return [self._tagged(i) for i in self.stored.values() if label in i.labels]

    def image(self, reference: str, history: bool = False) -> LocalImage | None:
        found = self.stored.get(self.tags.get(reference, reference))
        return self._tagged(found) if found is not None else None

    def _tagged(self, image: LocalImage) -> LocalImage:
        return replace(image, tags=tuple(sorted(ref for ref, i in self.tags.items() if i == image.id)))

    def tag(self, image_id: str, reference: str) -> None:
        with self.lock:
            self.tags[reference] = image_id

    def pull(self, reference: str, on_line: LineSink, credential: object = None) -> str:
        """NAME@DIGEST from `source` (a FakeRegistry): its config and layers, as the engine stores them."""
        if self.source is None:
            raise NotImplementedError(f"pull {reference}: this fake has no registry to pull from")
        repository, _, digest = reference.partition("@")
        name = repository.split("/", 1)[1]
        manifest = json.loads(self.source.held[f"{name}:{digest}"].body)
        config = self.source.data[manifest["config"]["digest"]]
        layers = [gzip.decompress(self.source.data[layer["digest"]]) for layer in manifest["layers"]]
        image_id = sha(config)
        data = json.loads(config)
        history = data.get("history") or [{}]
        with self.lock:
            self.pulled.append(reference)
            self.layer_data.update({sha(layer): layer for layer in layers})
            self.saved[image_id] = (config, layers)
            self.stored[image_id] = LocalImage(image_id, labels=dict(data["config"]["Labels"]),
                                               layers=tuple(sha(layer) for layer in layers),
                                               size=sum(len(layer) for layer in layers),
                                               last_step=str(history[-1].get("created_by") or ""),
                                               platform=f"{data['os']}/{data['architecture']}")
        on_line(f"pulled {reference}")
        return image_id

    def export(self, image_id: str, dest: Path) -> None:
        self.write_archive([image_id], dest)

    def write_archive(self, references: list[str], dest: Path) -> None:
        """`docker save` of these images (IDs or tags): a layer they share written once."""
        with self.lock:
            self.exports.append(list(references))
        with tarfile.open(dest, "w") as tar:
            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

            listing, written = [], set()
            for reference in references:
                image_id = self.tags.get(reference, reference)
                config, layers = self.saved[image_id]
                names = [f"{sha(layer)[7:]}/layer.tar" for layer in layers]
                for name, layer in zip(names, layers, strict=True):
                    if name not in written:
                        written.add(name)
                        add(name, layer)
                add(f"{image_id[7:]}.json", config)
                listing.append({"Config": f"{image_id[7:]}.json", "RepoTags": None, "Layers": names})
            add("manifest.json", json.dumps(listing).encode())

    def load(self, archive: Path) -> None:
        raise NotImplementedError

    def remove(self, image_id: str, force: bool = True) -> None:
        self.stored.pop(image_id, None)

    def cancel(self) -> None:
        self.cancelled.set()

    def save(self, references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        self.write_archive(references, dest)
        on_bytes(dest.stat().st_size)

    def in_use(self) -> set[str]:
        return set()

    def listed_layers(self) -> dict[str, tuple[str, ...]]:
        return {image_id: image.layers for image_id, image in self.stored.items()}

    def untag(self, reference: str) -> None:
        """A tag, or (as the engine's no-prune removal) an untagged image by its ID."""
        self.tags.pop(reference, None)
        if reference in self.stored and reference not in self.tags.values():
            self.stored.pop(reference)

    def run(self, image_id: str, command: Sequence[str], files: Mapping[str, bytes], timeout: float) -> Ran:
        title = self.stored[image_id].labels.get("org.opencontainers.image.title", "")
        with self.lock:
            self.ran.append((title, tuple(command), tuple(sorted(files))))
        return self.answers.get(" ".join(command), Ran(0, "", ""))

    def path_info(self, image_id: str, path: str, limit: int) -> PathInfo | None:
        found = self.paths.get(path)
        return replace(found, text=found.text[:limit]) if found is not None else None


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
    data: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes of each blob uploaded

    def manifest(self, name: str, reference: str) -> Remote | None:
        self.asked.append(f"{name}:{reference}")
        if self.fail is not None:
            raise self.fail(f"{name}:{reference}")
        return self.held.get(f"{name}:{reference}")

    def can_push(self, name: str) -> bool:
        return not self.refuse_push

    def has_blob(self, name: str, digest: str) -> bool:
        self.asked.append(f"{name}@{digest}")
        return digest in self.blobs.get(name, set())

    def upload_blob(self, name: str, digest: str, body: Callable[[], bytes], mount_from: str | None = None) -> str:
        if self.refuse_push:
            raise RegistryError(f"registry {self.host} refused the upload (HTTP 401 on POST /v2/{name}/blobs/uploads/)")
        if mount_from is not None and digest in self.blobs.get(mount_from, set()):
            self.blobs.setdefault(name, set()).add(digest)
            return f"mounted from {mount_from}"
        data = body()
        assert sha(data) == digest
        self.data[digest] = data
        self.uploads.append(f"{name}@{digest}")
        self.blobs.setdefault(name, set()).add(digest)
        return "uploaded"

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        """A manifest or index, under a tag or its digest."""
        config = (json.loads(body).get("config") or {}).get("digest")
        inputs = (json.loads(body).get("annotations") or {}).get("io.javabase.input-digest")
        self.manifests_put.append(f"{name}:{reference}")
        self.held[f"{name}:{reference}"] = Remote(sha(body), self.lands_as or config, inputs, body, media_type)
        return sha(body)

    def manifest_digest(self, name: str, reference: str) -> str | None:
        found = self.manifest(name, reference)
        return found.digest if found is not None else None

    def tags(self, name: str) -> list[str]:
        return sorted(ref.partition(":")[2] for ref in self.held if ref.partition(":")[0] == name
                      and not ref.partition(":")[2].startswith("sha256:"))

    def put(self, name: str, reference: str, body: bytes, media_type: str) -> tuple[str, dict[str, str]]:
        """put_manifest as a registry without the referrers API answers it (no OCI-Subject)."""
        return self.put_manifest(name, reference, body, media_type), {}

    def image_config(self, name: str, config_digest: str) -> LocalImage | None:
        """The config blob as Registry.image_config reads it; None when it was not uploaded."""
        if config_digest not in self.blobs.get(name, set()) or config_digest not in self.data:
            return None
        config = json.loads(self.data[config_digest])
        history = config.get("history") or [{}]
        return LocalImage(id=config_digest, labels=dict((config.get("config") or {}).get("Labels") or {}),
                          layers=tuple((config.get("rootfs") or {}).get("diff_ids") or []),
                          last_step=str(history[-1].get("created_by") or ""),
                          platform=f"{config.get('os')}/{config.get('architecture')}")

    def request(self, method: str, path: str, **_: object) -> tuple[int, dict[str, str], bytes]:
        """Blobs uploaded; the referrers API is not there (Distribution 2.8): 404;
        anything else is not faked."""
        if method == "GET" and "/referrers/" in path:
            return 404, {}, b""
        name, _, digest = path.lstrip("/").rpartition("/blobs/")
        if method == "GET" and digest:
            found = digest in self.blobs.get(name, set()) and digest in self.data
            return (200, {}, self.data[digest]) if found else (404, {}, b"")
        raise NotImplementedError(f"{method} {path}: this fake answers the client's methods only")
