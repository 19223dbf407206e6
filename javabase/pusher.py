"""Pushing built images. Every tag is looked up in the registry first and the
decision is javabase.decide's: a tag that already holds this very image is not
pushed again, and an immutable tag that holds another image refuses the whole
push (nothing is pushed) unless --force. A registry that cannot be read fails
the push before anything is sent (fail closed), --force or not: without the
lookup the immutable-tag guard could not hold.

The backend and the registry client are parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from .backends.base import Backend
from .decide import AlreadyPushed, Push, PushAction, Refused, Remote, decide_pushes
from .errors import JavabaseError, RegistryError, StepError
from .model import Manifest
from .references import split_reference, split_repository
from .registry import Registry
from .report import Console, ImageResult, Status
from .settings import Settings


def immutable_references(manifest: Manifest, names: Iterable[str], registry: str) -> dict[str, frozenset[str]]:
    """Per image, the full references of its immutable tags under `registry`."""
    return {name: frozenset(f"{manifest.repository(name, registry)}:{tag}"
                            for tag in manifest.images[name].immutable_tags) for name in names}


class Pusher:
    """Pushes every tag of built images, a few images at a time."""

    def __init__(self, backend: Backend, registry: Registry | None, console: Console, settings: Settings,
                 *, force: bool = False, keep_log: Callable[[ImageResult], None] = lambda _r: None,
                 immutable: dict[str, frozenset[str]] | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.console = console
        self.settings = settings
        self.force = force
        self.keep_log = keep_log
        self.immutable = immutable or {}

    def log(self, result: ImageResult, line: str) -> None:
        result.log.append(line)
        self.console.line(result.name, line)

    def push_all(self, ready: list[ImageResult]) -> list[str]:
        """Push; return notes for the report (empty when all went as planned).
        Raises RegistryError, with nothing pushed, when the registry cannot be read."""
        actions = {r.name: self.decide(r) for r in ready}
        refused = [a for r in ready for a in actions[r.name] if isinstance(a, Refused)]
        if refused:
            for result in ready:
                for action in actions[result.name]:
                    if isinstance(action, Refused):
                        result.status = Status.FAILED
                        result.reason = (f"immutable tag {action.reference} already holds another image "
                                         f"({action.holds[:19]}); not overwritten (--force overwrites)")
                        self.log(result, f"FAILED {result.reason}")
            return [f"nothing was pushed: immutable tag(s) {', '.join(a.reference for a in refused)} "
                    "already hold other images"]
        self.check_push_allowed({split_reference(a.reference)[0] for r in ready for a in actions[r.name]
                                 if isinstance(a, Push)})
        with ThreadPoolExecutor(max_workers=self.settings.push_jobs, thread_name_prefix="push") as pool:
            for future in [pool.submit(self.push_one, r, actions[r.name]) for r in ready]:
                future.result()
        return []

    def decide(self, result: ImageResult) -> list[PushAction]:
        assert result.image_id is not None
        remote = {reference: self.remote(reference) for reference in result.references}
        return decide_pushes(result.image_id, result.references, remote,
                             self.immutable.get(result.name, frozenset()), self.force)

    def check_push_allowed(self, repositories: set[str]) -> None:
        """Before the first push: may this run push to every repository it will push
        to? Otherwise nothing is pushed (RegistryError, exit 6)."""
        if self.registry is None:
            return
        for repository in sorted(repositories):
            name = split_repository(repository)[1]
            if not self.registry.can_push(name):
                raise RegistryError(f"registry {self.registry.host} does not let this run push to {name}; "
                                    "nothing was pushed")

    def remote(self, reference: str) -> Remote | None:
        """What the tag holds now; None when it does not exist. Any other answer
        (401, 403, 5xx, TLS, unreachable) raises: nothing may be pushed blind."""
        if self.registry is None:
            return None
        repository, tag = split_reference(reference)
        return self.registry.manifest(split_repository(repository)[1], tag)

    def verify(self, action: Push, digest: str) -> None:
        """What landed under the tag is the image this run built: its config digest
        is the image ID, read back from the registry."""
        if self.registry is None:
            return
        landed = self.remote(action.reference)
        if landed is None or landed.config_digest != action.image_id or landed.digest != digest:
            holds = f"{landed.digest} (image {landed.config_digest})" if landed else "nothing"
            raise StepError(f"push {action.reference}: the registry holds {holds} under this tag, not {digest} "
                            f"(image {action.image_id}) that this run pushed; another push of the same tag "
                            "raced this one: run again")

    def push_one(self, result: ImageResult, actions: list[PushAction]) -> None:
        try:
            for action in actions:
                if isinstance(action, AlreadyPushed):
                    result.pushed[action.reference] = action.digest
                    result.already_in_registry.append(action.reference)
                    self.log(result, f"{action.reference} already in the registry ({action.digest[:19]}); not pushed")
                elif isinstance(action, Push):
                    if action.overwrites:
                        self.log(result, f"--force: overwriting immutable tag {action.reference} (it holds "
                                         f"{action.overwrites[:19]}, another image)")
                    digest = self.backend.push(action.reference, lambda line: self.log(result, line),
                                               self.registry.credential if self.registry else None)
                    self.verify(action, digest)
                    result.pushed[action.reference] = digest
            if result.status == Status.BUILT or len(result.already_in_registry) < len(result.references):
                result.status = Status.PUSHED
        except JavabaseError as exc:
            result.status = Status.FAILED
            result.reason = str(exc)
            self.log(result, f"FAILED {exc}")
            self.keep_log(result)
