"""Pushing through the registry API, the way crane and skopeo do, in two steps.

stage (as soon as an image is built, while others still build): look every
tag up (javabase.decide says push, skip or refuse), and when something must
be pushed, export the image from the engine, compress its layers the same way
every time (javabase.oci), and upload the blobs the registry lacks, mounting
them from another repository of the run where it can. The manifest and its
digest are then known, and nothing is visible under any tag yet.

publish (when the run's builds are done): if any immutable tag would be
overwritten, publish nothing; else PUT each manifest under its tags and read
every tag back: it must hold that manifest, whose config is the image ID the
run built.

A registry that cannot be read, or that will not let this run push, stops the
run before anything is published (fail closed, exit 6), --overwrite-immutable or not.
The backend and the registry client are parameters."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..decide.labels import INPUT_LABEL
from ..decide.rules import AlreadyPushed, Push, PushAction, Refused, decide_pushes
from ..engine import Backend
from ..errors import Interrupted, JavabaseError, RegistryError, StepError
from ..manifest.model import Manifest
from ..manifest.references import repository_name, split_reference
from ..report import Console, ImageResult, Phases, Status
from ..settings import Settings
from . import referrers
from .blobs import BlobCache, CachedBlob
from .exports import Exports
from .oci import (
    CONFIG_TYPE,
    INDEX_TYPE,
    MANIFEST_TYPE,
    Blob,
    SavedImage,
    digest_of,
    image_index,
    image_manifest,
)
from .registry import Registry, Remote

# A blob this small (a config, a layer of a few files) costs less to upload than to ask
# about: the upload is two requests, asking first makes it three.
SMALL_BLOB = 64 * 1024
PUBLISH_JOBS = 8  # images whose manifests are PUT (and read back) at the same time: small requests, a round trip each


def immutable_references(manifest: Manifest, names: Iterable[str], registry: str) -> dict[str, frozenset[str]]:
    """Per image, the full references of its immutable tags under `registry`."""
    return {name: frozenset(f"{manifest.repository(name, registry)}:{tag}"
                            for tag in manifest.images[name].immutable_tags) for name in names}


def manifest_annotations(config: bytes) -> dict[str, str] | None:
    """An image manifest's annotations, from the image alone (its config's
    io.javabase.input-digest label), so that one image has one manifest
    whichever command pushes it: the registry as a cache finds it by it."""
    labels = (json.loads(config).get("config") or {}).get("Labels") or {}
    return {INPUT_LABEL: str(labels[INPUT_LABEL])} if labels.get(INPUT_LABEL) else None


def index_annotations(children: Iterable[bytes]) -> dict[str, str] | None:
    """An index's annotations, from its platforms' manifests alone: the digest of
    their input digests, in platform order."""
    digests = [(json.loads(child).get("annotations") or {}).get(INPUT_LABEL) for child in children]
    if not all(digests):
        return None
    return {INPUT_LABEL: digest_of("".join(str(d) for d in digests).encode())}


def held(registry: Registry, reference: str) -> Remote | None:
    """What the tag holds now; None when it does not exist. Any other answer
    (401, 403, 5xx, TLS, unreachable) raises RegistryError: nothing may be pushed blind."""
    return registry.manifest(repository_name(reference), split_reference(reference)[1])


def lookup_tags(registry: Registry, references: dict[str, list[str]], platforms: dict[str, str] | None = None
                ) -> dict[str, list[tuple[str, Remote | None]]]:
    """What every tag holds in the registry, by image (unit key): look_up()'s units."""
    return look_up(registry, references, platforms)[1]


def look_up(registry: Registry, references: dict[str, list[str]], platforms: dict[str, str] | None = None
            ) -> tuple[dict[str, Remote | None], dict[str, list[tuple[str, Remote | None]]]]:
    """What every tag holds in the registry (by reference), and by unit key what
    its tags stand for, looked up a few at a time. For an image javabase pushed
    (its input digest known), its config too, so that it can be checked as a
    local image is before it is reused. For a unit of a multi-platform image
    (`platforms`: key -> OS/ARCH), a tag stands for that platform's manifest:
    the one the index it holds names for the platform, or the manifest itself
    when it holds one of that platform (a per-platform tag); else for nothing.
    Raises RegistryError."""
    flat = sorted({ref for refs in references.values() for ref in refs})
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookup") as pool:
        found = dict(zip(flat, pool.map(lambda ref: held_with_config(registry, ref), flat), strict=True))
        wanted = sorted({(repository_name(ref), child) for key, platform in (platforms or {}).items()
                         for ref in references.get(key, []) if (child := _child_digest(found[ref], platform))})
        children = dict(zip(wanted, pool.map(lambda item: _manifest_with_config(registry, *item), wanted),
                            strict=True))
    units: dict[str, list[tuple[str, Remote | None]]] = {}
    for key, refs in references.items():
        platform = (platforms or {}).get(key)
        units[key] = [(ref, found[ref] if platform is None else _for_platform(found[ref], platform, children.get(
            (repository_name(ref), _child_digest(found[ref], platform) or "")))) for ref in refs]
    return found, units


def _child_digest(there: Remote | None, platform: str) -> str | None:
    """The digest of `platform`'s manifest in the index `there` holds, or None."""
    if there is None or there.config_digest is not None:
        return None
    for shown, digest, _ in index_platforms(there.body):
        if same_platform(shown, platform):
            return digest
    return None


def _for_platform(there: Remote | None, platform: str, child: Remote | None) -> Remote | None:
    if there is None:
        return None
    if there.config_digest is None:  # an index: its manifest for the platform
        return child
    return there if there.image is not None and same_platform(there.image.platform, platform) else None


def platform_object(shown: str) -> dict[str, str]:
    """OS/ARCH[/VARIANT] -> an index entry's platform object, as oci.SavedImage.platform writes it."""
    parts = shown.split("/")
    out = {"architecture": parts[1] if len(parts) > 1 else "amd64", "os": parts[0] or "linux"}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def same_platform(found: str, wanted: str) -> bool:
    """Whether OS/ARCH[/VARIANT] `found` is `wanted` (a variant the manifest does not name is any)."""
    return found == wanted or found.startswith(wanted + "/")


def _manifest_with_config(registry: Registry, name: str, digest: str) -> Remote | None:
    there = registry.manifest(name, digest)
    if there is None or there.config_digest is None:
        return None
    return replace(there, image=registry.image_config(name, there.config_digest))


def index_platforms(body: bytes) -> list[tuple[str, str, dict[str, str]]]:
    """(OS/ARCH[/VARIANT], manifest digest, platform object) of every entry of an image index."""
    try:
        entries = json.loads(body).get("manifests")
    except (ValueError, AttributeError, RecursionError):
        return []
    out = []
    for entry in entries if isinstance(entries, list) else []:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if isinstance(platform, dict) and isinstance(entry.get("digest"), str):
            shown = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
            out.append((shown, str(entry["digest"]), {str(k): str(v) for k, v in platform.items()}))
    return out


def held_with_config(registry: Registry, reference: str) -> Remote | None:
    """held(), with the image's config read when the manifest names one and an input digest."""
    there = held(registry, reference)
    if there is None or there.config_digest is None or there.input_digest is None:
        return there
    return replace(there, image=registry.image_config(repository_name(reference), there.config_digest))


@dataclass(frozen=True)
class Staged:
    actions: list[PushAction]
    manifest: bytes | None  # None when no tag needs pushing
    media_type: str = MANIFEST_TYPE
    platform: dict[str, str] | None = None  # a unit of a multi-platform image: its platform
    children: tuple[bytes, ...] = ()  # an index: the per-platform manifests, PUT by digest first

    @property
    def digest(self) -> str | None:
        return digest_of(self.manifest) if self.manifest is not None else None


class Pusher:
    def __init__(self, backend: Backend, registry: Registry, console: Console, settings: Settings, *,
                 overwrite_immutable: bool = False, keep_log: Callable[[ImageResult], None] = lambda _r: None,
                 immutable: dict[str, frozenset[str]] | None = None, blobs: BlobCache | None = None,
                 platforms: dict[str, tuple[str, ...]] | None = None, platform_tags: bool = False,
                 phases: Phases | None = None, builds_running: bool = False) -> None:
        """`phases`: the run's, told the time exports, compression, uploads and publishing take.
        `builds_running`: images are started while others still build (see `start`)."""
        self.backend = backend
        self.registry = registry
        self.console = console
        self.settings = settings
        self.overwrite_immutable = overwrite_immutable
        self.keep_log = keep_log
        self.immutable = immutable or {}
        self.blobs = blobs or BlobCache(settings.cache_dir)
        self.pool = ThreadPoolExecutor(max_workers=settings.push_jobs, thread_name_prefix="push")
        self.staging: dict[str, Future[Staged]] = {}
        self.lock = threading.Lock()
        self.allowed: dict[str, bool] = {}
        self.wrote: set[str] = set()  # repositories this run has uploaded to: push is allowed there
        self.where: dict[str, str] = {}  # blob digest -> a repository of this run that has it
        self.claims: dict[str, threading.Lock] = {}  # blob digest -> held while it is uploaded or mounted
        self.stopped = threading.Event()
        self.looked_up: dict[str, Remote | None] = {}  # reference -> what it held before the run
        self.platforms = platforms or {}  # multi-platform images: image -> its platforms
        self.platform_tags = platform_tags  # a platform's manifest is published alone, under its own tag
        # one platform's manifests found in the registry, by image ID: (repository, the manifest)
        self.platform_manifests: dict[str, tuple[str, Remote]] = {}
        self.phases = phases or Phases()
        self.exports = Exports(backend, self.phases)
        self.building = builds_running  # until publish(): staging an image may wait for the builds to end
        self.held: list[ImageResult] = []  # started, waiting for the builds to end
        self.going: list[tuple[tuple[str, ...], int]] = []  # images being exported: their layers, their bytes

    def log(self, result: ImageResult, line: str) -> None:
        result.log.append(line)
        self.console.line(result.name, line)

    # -- before the builds -----------------------------------------------------------
    def lookup(self, references: dict[str, list[str]], platforms: dict[str, str] | None = None
               ) -> dict[str, list[tuple[str, Remote | None]]]:
        """What every tag holds now, looked up concurrently (a few at a time), by
        unit (lookup_tags): for decide (the registry as a cache) and for staging.
        Raises RegistryError when the registry cannot be read."""
        tags, found = look_up(self.registry, references, platforms)
        self.looked_up.update(tags)
        for key in platforms or {}:
            for reference, there in found.get(key, []):
                if there is not None and there.config_digest is not None:
                    self.platform_manifests.setdefault(there.config_digest, (repository_name(reference), there))
        return found

    def found(self, image_id: str) -> tuple[str, Remote] | None:
        """Where the lookups saw the image `image_id` (its config digest): a
        repository and the manifest, from a tag or an index under a tag."""
        for reference, there in self.looked_up.items():
            if there is not None and there.config_digest == image_id:
                return repository_name(reference), there
        return self.platform_manifests.get(image_id)

    def holds(self, reference: str) -> Remote | None:
        """What the tag held when the run looked it up (or holds now, if it did not)."""
        return self.looked_up[reference] if reference in self.looked_up else held(self.registry, reference)

    # -- the two steps -------------------------------------------------------------
    def start(self, result: ImageResult) -> None:
        """Stage an image in the background (called as soon as it is built). While
        builds still run, an image whose export would mostly write again the
        layers of an image already exported (its parent's, most often: a child
        that adds a small layer) waits, and goes with the others that waited, in
        one export (javabase.publish.exports): when every build has started
        (builds_started), or, for those built after that, when the builds end."""
        if not self.wait_for_builds(result):
            self.submit(result)

    def submit(self, result: ImageResult) -> None:
        if not self.stopped.is_set():
            self.staging[result.name] = self.pool.submit(self.stage, result)

    def wait_for_builds(self, result: ImageResult) -> bool:
        """Hold the image (see `start`)? Yes when builds are running, it will be
        exported, and the bytes of its layers that an export of this run already
        carries outweigh its own."""
        if not self.building or result.status not in (Status.BUILT, Status.UP_TO_DATE) or \
                result.image_id is None or not self.will_export(result):
            return False
        try:
            image = self.backend.image(result.image_id)
        except JavabaseError:
            return False  # staging says what is wrong with the engine
        if image is None:
            return False
        with self.lock:
            again = max((size for layers, size in self.going if image.layers[:len(layers)] == layers), default=0)
            if self.building and again > image.size - again:
                self.held.append(result)
                self.phases.count("images held for a later export")
                self.log(result, f"staged with others later: {again / 1e6:.1f} MB of its layers go in an earlier "
                                 f"export, {(image.size - again) / 1e6:.1f} MB are its own")
                return True
            self.going.append((image.layers, image.size))
        return False

    def will_export(self, result: ImageResult) -> bool:
        """Will staging the image export it from the engine? (Not when the registry
        holds it under all its tags, or holds its platform's manifest already.)"""
        image_id = _image_id(result)
        try:
            if result.platform is not None and not self.platform_tags:
                return self.blobs.manifest(image_id) is None
            remote = {reference: self.holds(reference) for reference in result.references}
        except JavabaseError:
            return True  # staging says what is wrong with the registry
        actions = decide_pushes(image_id, result.references, remote, self.immutable.get(result.name, frozenset()),
                                self.overwrite_immutable)
        return any(isinstance(a, Push) for a in actions)

    def builds_started(self) -> None:
        """Every build has started: stage the images held so far, exported
        together while the last builds run; those built from now on wait for
        the end of the builds (builds_ended)."""
        with self.lock:
            held, self.held = self.held, []
        self.release(held)

    def builds_ended(self) -> None:
        """Stage the images held for the builds to end, exported together."""
        with self.lock:
            held, self.held, self.building = self.held, [], False
        self.release(held)

    def release(self, held: list[ImageResult]) -> None:
        self.exports.want([_image_id(r) for r in held])
        for result in held:
            self.submit(result)

    def publish(self, ready: list[ImageResult], keep_going: bool = False) -> list[str]:
        """Wait for staging, then publish every tag; return notes for the report.
        Raises RegistryError, with nothing published, when the registry cannot be
        read or refuses the push. An image that could not be staged fails; the
        others are published only with keep_going."""
        staged = self.wait_for_staging(ready)
        unstaged = [r.name for r in ready if r.name not in staged]
        if unstaged and not keep_going:
            return [f"nothing was pushed: {', '.join(unstaged)} could not be staged "
                    "(with --keep-going the other images are pushed)"]
        ready = [r for r in ready if r.name in staged]
        notes: list[str] = []
        ready, groups = self.group(ready, staged, notes)
        if notes and not keep_going:
            return [f"nothing was pushed: {note}" for note in notes]
        for repository in sorted({repository_name(a.reference) for r in ready
                                  for a in staged[r.name].actions if isinstance(a, Push)} - self.wrote):
            self.check_push_allowed(repository)
        refused = [a for r in ready for a in staged[r.name].actions if isinstance(a, Refused)]
        if refused:
            self.refuse(ready, staged, groups)
            return [f"nothing was pushed: immutable tag(s) {', '.join(a.reference for a in refused)} "
                    "already hold other images"]
        # Each image's tags go up and are read back on their own (a failure is that
        # image's, publish_one): a few images at a time, not one round trip after another.
        with self.phases.timed("publish: tags and indexes"), \
                ThreadPoolExecutor(max_workers=PUBLISH_JOBS, thread_name_prefix="publish") as pool:
            list(pool.map(lambda result: self.publish_one(result, staged[result.name]), ready))
        for result in ready:
            for unit in groups.get(result.name, []):
                unit.pushed, unit.already_in_registry = result.pushed, result.already_in_registry
                unit.status, unit.reason = result.status, result.reason
        return notes

    def wait_for_staging(self, ready: list[ImageResult]) -> dict[str, Staged]:
        """What each image's staging made; an image whose staging failed fails."""
        staged: dict[str, Staged] = {}
        self.builds_ended()
        try:
            with self.phases.timed("push: wait for staging"):
                for result in ready:
                    if result.name not in self.staging:
                        self.start(result)
                    try:
                        staged[result.name] = self.staging[result.name].result()
                    except StepError as exc:
                        result.status = Status.FAILED
                        result.reason = str(exc)
                        self.log(result, f"FAILED {exc}")
                        self.keep_log(result)
        except BaseException:
            self.discard()  # the run fails: no other image starts an upload
            raise
        finally:
            self.pool.shutdown(wait=True)
            self.exports.close()
        return staged

    def refuse(self, ready: list[ImageResult], staged: dict[str, Staged],
               groups: dict[str, list[ImageResult]]) -> None:
        """Every image with an immutable tag that holds another image fails, saying which."""
        for result in ready:
            for action in staged[result.name].actions:
                if isinstance(action, Refused):
                    result.status = Status.FAILED
                    result.reason = (f"immutable tag {action.reference} already holds another image "
                                     f"({action.holds[:19]}); not overwritten (--overwrite-immutable overwrites it)")
                    self.log(result, f"FAILED {result.reason}")
                    for unit in groups.get(result.name, []):
                        unit.status, unit.reason = result.status, result.reason

    def group(self, ready: list[ImageResult], staged: dict[str, Staged], notes: list[str]
              ) -> tuple[list[ImageResult], dict[str, list[ImageResult]]]:
        """The units of each multi-platform image as one: a stand-in result whose
        staged manifest is the index of its platforms' manifests. An image with a
        platform missing is not published (a note says so)."""
        out = [r for r in ready if r.platform is None or self.platform_tags]
        units: dict[str, list[ImageResult]] = {}
        for result in ready:
            if result.platform is not None and not self.platform_tags:
                units.setdefault(result.image, []).append(result)
        groups: dict[str, list[ImageResult]] = {}
        for image, members in units.items():
            wanted = self.platforms.get(image, ())
            members.sort(key=lambda r: wanted.index(r.platform) if r.platform in wanted else len(wanted))
            if [m.platform for m in members] != list(wanted):
                missing = ", ".join(p for p in wanted if p not in {m.platform for m in members})
                notes.append(f"{image} was not published: its {missing} image did not build")
                continue
            children = tuple(staged[m.name].manifest or b"" for m in members)
            index = image_index([(child, staged[m.name].platform or {}) for child, m in zip(children, members,
                                                                                         strict=True)],
                                index_annotations(children))
            stand_in = ImageResult(image, list(members[0].references), status=_joint_status(members),
                                   image_id=digest_of(index), image=image)
            remote = {ref: self.holds(ref) for ref in stand_in.references}
            actions = decide_pushes(digest_of(index), stand_in.references, remote,
                                    self.immutable.get(image, frozenset()), self.overwrite_immutable, index=True)
            staged[image] = Staged(actions, index, INDEX_TYPE, children=children)
            groups[image] = members
            out.append(stand_in)
        return out, groups

    def push_all(self, ready: list[ImageResult]) -> list[str]:
        """Stage and publish images built earlier (`invoke push`)."""
        for result in ready:
            self.start(result)
        return self.publish(ready)

    def discard(self) -> None:
        """Nothing will be published: stop staging (Ctrl-C, or a failed build)."""
        self.stopped.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.exports.close()

    # -- staging -----------------------------------------------------------------------
    def stage(self, result: ImageResult) -> Staged:
        image_id = _image_id(result)
        if result.platform is not None and not self.platform_tags:  # its tags come with the index
            return self.stage_platform(result, image_id)
        remote = {reference: self.holds(reference) for reference in result.references}
        actions = decide_pushes(image_id, result.references, remote,
                                self.immutable.get(result.name, frozenset()), self.overwrite_immutable)
        if not any(isinstance(a, Push) for a in actions):
            return Staged(actions, None)
        if result.status == Status.UP_TO_DATE_REGISTRY:
            # Not in this engine: its missing tags get the manifest the registry holds it as.
            found = self.found(image_id)
            if found is None:
                raise StepError(f"{result.name}: no tag in the registry holds {image_id[7:19]} any more (it "
                                "changed during the run); run again")
            self.log(result, f"in the registry as {found[1].digest[:19]}; adding its missing tags")
            return Staged(actions, found[1].body, found[1].media_type or MANIFEST_TYPE)
        return Staged(actions, self.upload(result)[0], MANIFEST_TYPE)

    def stage_platform(self, result: ImageResult, image_id: str) -> Staged:
        """One platform's manifest, for its image's index: as the registry holds it
        (reused from there), as an earlier run pushed it, or uploaded now."""
        if result.status == Status.UP_TO_DATE_REGISTRY:
            found = self.found(image_id)
            if found is None or found[1].image is None:
                raise StepError(f"{result.name}: the registry no longer holds {image_id[7:19]} (it changed during "
                                "the run); run again")
            return Staged([], found[1].body, MANIFEST_TYPE, platform_object(found[1].image.platform))
        known = self.blobs.manifest(image_id)
        repository = repository_name(result.references[0])
        if known is not None and self.registry.manifest_digest(repository, digest_of(known[0])):
            return Staged([], known[0], MANIFEST_TYPE, known[1])  # it and its blobs are in the registry
        manifest, platform = self.upload(result)
        self.blobs.remember_manifest(image_id, manifest, platform)
        return Staged([], manifest, MANIFEST_TYPE, platform)

    def upload(self, result: ImageResult) -> tuple[bytes, dict[str, str]]:
        """Export the image (with others asked for at the same time: javabase.publish.exports),
        upload the blobs the registry lacks; its manifest and platform."""
        image_id = _image_id(result)
        repository = repository_name(result.references[0])
        saved = self.exports.saved(image_id)
        try:
            layers = [self.put_layer(result, repository, saved, member, diff_id) for member, diff_id in saved.layers]
            config = Blob(saved.image_id, len(saved.config), CONFIG_TYPE)
            self.put_blob(result, repository, config.digest, lambda: saved.config, "config", config.size)
        finally:
            self.exports.release(saved)
        manifest = image_manifest(config, layers, manifest_annotations(saved.config))
        self.log(result, f"staged {len(layers)} layer(s); manifest {digest_of(manifest)[:19]}")
        return manifest, saved.platform()

    def put_layer(self, result: ImageResult, repository: str, saved: SavedImage, member: str, diff_id: str) -> Blob:
        def made() -> CachedBlob:
            try:
                return self.blobs.layer(saved, member, diff_id)
            except ValueError as exc:  # the engine's archive does not hold what its config says
                raise StepError(f"{result.name}: layer {diff_id[7:19]}: {exc}; build it again") from None

        with self.phases.timed("compression or layer cache (summed)"):
            cached = made()

        def body() -> bytes:
            """The compressed layer, checked as it is read: a cache entry that changed
            on disk is made again from the image."""
            data = cached.path.read_bytes()
            if digest_of(data) == cached.blob.digest:
                return data
            self.blobs.forget(diff_id)
            return made().path.read_bytes()

        self.put_blob(result, repository, cached.blob.digest, body, f"layer {diff_id[7:19]}", cached.blob.size)
        return cached.blob

    def put_blob(self, result: ImageResult, repository: str, digest: str, body: Callable[[], bytes], what: str,
                 size: int) -> None:
        """Make sure `repository` has the blob: mount it from a repository of this run
        that has it, or upload it when the registry lacks it (a blob of at most
        SMALL_BLOB bytes is uploaded without asking first). The body is read only
        for an upload. Threads that need the same blob at once take turns, so it is
        uploaded once and mounted into the other repositories."""
        if self.stopped.is_set():
            raise Interrupted(f"interrupted before uploading {what}")
        with self.lock:  # one thread at a time per blob: the others mount what it uploaded
            claim = self.claims.setdefault(digest, threading.Lock())
        with claim:
            with self.lock:
                source = self.where.get(digest)
            if source == repository:
                return
            with self.phases.timed("uploads and mounts (summed)"):
                if source is not None:
                    how = self.registry.upload_blob(repository, digest, body, mount_from=source)
                elif size > SMALL_BLOB and self.registry.has_blob(repository, digest):
                    how = "already in the registry"
                else:
                    how = self.registry.upload_blob(repository, digest, body)
            with self.lock:
                self.where.setdefault(digest, repository)
                if how != "already in the registry":
                    self.wrote.add(repository)
        self.phases.count("blobs " + how.split(" from ")[0])
        if how == "uploaded":
            self.phases.count("uploaded bytes", size)
        self.log(result, f"{what} ({size / 1e6:.1f} MB): {how}")

    def check_push_allowed(self, repository: str) -> None:
        """May this run push to `repository`? Otherwise nothing is published."""
        with self.lock:
            known = self.allowed.get(repository)
        if known is None:
            known = self.registry.can_push(repository)
            with self.lock:
                self.allowed[repository] = known
        if not known:
            raise RegistryError(f"registry {self.registry.host} does not let this run push to {repository}; "
                                "nothing was pushed")

    # -- publishing --------------------------------------------------------------------
    def publish_one(self, result: ImageResult, staged: Staged) -> None:
        try:
            for action in staged.actions:
                if isinstance(action, AlreadyPushed):
                    result.pushed[action.reference] = action.digest
                    result.already_in_registry.append(action.reference)
                    self.log(result, f"{action.reference} already in the registry ({action.digest[:19]}); not pushed")
                elif isinstance(action, Push) and staged.manifest is not None:
                    if action.overwrites:
                        self.log(result, f"--overwrite-immutable: overwriting immutable tag {action.reference} "
                                         f"(it holds {action.overwrites[:19]}, another image)")
                    name, tag = repository_name(action.reference), split_reference(action.reference)[1]
                    self.put_children(name, action.reference, staged)
                    self.registry.put_manifest(name, tag, staged.manifest, staged.media_type)
                    self.verify(action, str(staged.digest))
                    result.pushed[action.reference] = str(staged.digest)
                    self.log(result, f"pushed {action.reference}@{staged.digest}")
            if len(result.already_in_registry) < len(result.pushed):  # a tag was pushed now
                result.status = Status.PUSHED
        except JavabaseError as exc:
            result.status = Status.FAILED
            result.reason = str(exc)
            self.log(result, f"FAILED {exc}")
            self.keep_log(result)

    def put_children(self, name: str, reference: str, staged: Staged) -> None:
        """An index's platform manifests, by digest, before the index; a refusal
        names the platform."""
        platforms = {str(m.get("digest")): m.get("platform") or {} for m in
                     json.loads(staged.manifest or b"{}").get("manifests") or []}
        for child in staged.children:
            try:
                self.registry.put_manifest(name, digest_of(child), child, MANIFEST_TYPE)
            except RegistryError as exc:
                found = platforms.get(digest_of(child), {})
                platform = "/".join(str(found[k]) for k in ("os", "architecture", "variant") if found.get(k))
                raise StepError(f"push {reference}: the {platform or 'platform'} manifest "
                                f"{digest_of(child)[:19]} was refused: {exc}") from None

    def subject(self, result: ImageResult, platform: str | None) -> referrers.Descriptor:
        """The manifest in the registry that artifacts of `result` are about: its
        tag's manifest, or for `platform`, that platform's manifest in the index.
        Raises StepError when it is not there."""
        name, tag = repository_name(result.references[0]), split_reference(result.references[0])[1]
        there = self.registry.manifest(name, tag)
        if there is None:
            raise StepError(f"{result.name}: {result.references[0]} is not in the registry")
        found = referrers.subject_of(there, platform)
        if found is None:
            raise StepError(f"{result.name}: the index under {result.references[0]} has no {platform}")
        return found

    def attach(self, result: ImageResult, artifact: referrers.Artifact, subject: referrers.Descriptor,
               cosign_layer: referrers.Layer | None = None) -> str:
        """Push an artifact (SBOM, signature, provenance) as a referrer of
        `subject`, and a signature or attestation also where cosign looks
        (`cosign_layer`, under sha256-<hex>.<kind>); the artifact's digest.
        Raises RegistryError."""
        name = repository_name(result.references[0])
        attached = referrers.attach(self.registry, name, artifact, subject)
        where = ""
        if cosign_layer is not None:
            referrers.add_to_cosign_tag(self.registry, name, subject.digest, artifact.kind, cosign_layer)
            where = f", {referrers.cosign_tag(subject.digest, artifact.kind)}"
        self.log(result, f"{artifact.kind} attached to {subject.digest[:19]} as {attached.digest[:19]} "
                         f"(referrer{where})")
        if attached.note:
            self.log(result, f"note: {attached.note}")
        return attached.digest

    def verify(self, action: Push, digest: str) -> None:
        """What landed under the tag is the manifest just pushed, whose config
        digest is the image ID the run built: read back from the registry."""
        landed = held(self.registry, action.reference)
        index = action.image_id == digest  # a multi-platform image is known by its index digest
        if landed is None or landed.digest != digest or (not index and landed.config_digest != action.image_id):
            holds = f"{landed.digest} (image {landed.config_digest})" if landed else "nothing"
            raise StepError(f"push {action.reference}: the registry holds {holds} under this tag, not {digest} "
                            f"(image {action.image_id}) that this run pushed; another push of the same tag "
                            "raced this one: run again")


def _joint_status(members: list[ImageResult]) -> Status:
    """A multi-platform image's status before it is published: built if a platform was."""
    found = {m.status for m in members}
    if Status.BUILT in found:
        return Status.BUILT
    return Status.UP_TO_DATE_REGISTRY if found == {Status.UP_TO_DATE_REGISTRY} else Status.UP_TO_DATE


def _image_id(result: ImageResult) -> str:
    if result.image_id is None:
        raise StepError(f"{result.name}: has no image to push (it was not built)")
    return result.image_id
