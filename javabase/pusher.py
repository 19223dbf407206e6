"""Pushing built images: every reference is looked up first, so that identical
images are not pushed again and immutable tags are never overwritten by
accident; then tags are pushed a few images at a time. The engine and the
registry reader are parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .engine import StepError
from .errors import JavabaseError, RegistryError
from .manifest import Manifest
from .registry import Registry, RemoteManifest
from .report import BUILT, FAILED, PUSHED, Console, ImageResult

if TYPE_CHECKING:
    from .builder import BuildOptions, EngineLike


def immutable_references(manifest: Manifest, names: Iterable[str], registry: str) -> dict[str, set[str]]:
    """Per image, the full references of its immutable tags under `registry`."""
    return {name: {f"{manifest.repository(name, registry)}:{tag}" for tag in manifest.images[name].immutable_tags}
            for name in names}


class Pusher:
    """Pushes every tag of built images, a few images at a time.

    Before anything is pushed, every reference is looked up in the registry: a
    tag that already holds this very image (same config digest, i.e. image ID)
    is not pushed again, and an immutable tag that holds another image refuses
    the whole push (nothing is pushed) unless --force."""

    def __init__(self, engine: EngineLike, registry: Registry | None, console: Console, options: BuildOptions,
                 keep_log: Callable[[ImageResult], None] = lambda _r: None,
                 immutable: dict[str, set[str]] | None = None) -> None:
        self.engine = engine
        self.registry = registry
        self.console = console
        self.options = options
        self.keep_log = keep_log
        self.immutable = immutable or {}

    def log(self, result: ImageResult, line: str) -> None:
        result.log.append(line)
        self.console.line(result.name, line)

    def push_all(self, ready: list[ImageResult]) -> list[str]:
        """Push; return notes for the report (empty when all went as planned)."""
        plans: dict[str, list[tuple[str, str]]] = {}
        refused: list[str] = []
        for result in ready:
            plans[result.name] = []
            for reference in result.references:
                remote = self.remote(reference)
                if remote is not None and remote.config_digest == result.image_id:
                    plans[result.name].append((reference, "present:" + remote.digest))
                elif remote is not None and reference in self.immutable.get(result.name, set()):
                    if self.options.force:
                        self.log(result, f"--force: overwriting immutable tag {reference} (it holds "
                                         f"{remote.digest[:19]}, another image)")
                        plans[result.name].append((reference, "push"))
                    else:
                        refused.append(reference)
                        result.status = FAILED
                        result.reason = (f"immutable tag {reference} already holds another image "
                                         f"({remote.digest[:19]}); not overwritten (--force overwrites)")
                        self.log(result, f"FAILED {result.reason}")
                else:
                    plans[result.name].append((reference, "push"))
        if refused:
            return [f"nothing was pushed: immutable tag(s) {', '.join(refused)} already hold other images"]
        with ThreadPoolExecutor(max_workers=max(1, min(self.options.push_jobs, self.options.jobs)),
                                thread_name_prefix="push") as pool:
            for future in [pool.submit(self.push_one, r, plans[r.name]) for r in ready]:
                future.result()
        return []

    def remote(self, reference: str) -> RemoteManifest | None:
        if self.registry is None:
            return None
        repository, _, tag = reference.rpartition(":")
        name = repository.split("/", 1)[1] if "/" in repository else repository
        try:
            return self.registry.manifest(name, tag)
        except RegistryError:
            return None

    def push_one(self, result: ImageResult, plan: list[tuple[str, str]]) -> None:
        try:
            for reference, action in plan:
                if action.startswith("present:"):
                    digest = action.split(":", 1)[1]
                    result.pushed[reference] = digest
                    result.already_in_registry.append(reference)
                    self.log(result, f"{reference} already in the registry ({digest[:19]}); not pushed")
                    continue
                result.pushed[reference] = self.engine.push(reference, lambda line: self.log(result, line))
            if result.status == BUILT or len(result.already_in_registry) < len(result.references):
                result.status = PUSHED
        except (StepError, JavabaseError) as exc:
            result.status = FAILED
            result.reason = str(exc)
            self.log(result, f"FAILED {exc}")
            self.keep_log(result)
