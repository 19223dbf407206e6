"""Carries out a run: verify every artifact (nothing is built unless all
verify), decide per image (javabase.decide), build what must be built as soon
as its parent is done (javabase.schedule), tag, then push (javabase.pusher).

The backend, the artifact store and the registry client are parameters; this
module never imports docker."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from .artifacts import ArtifactStore, Fetched, place
from .backends.base import Backend, BuildRequest, LineSink, LocalImage
from .decide import TAGGED, Build, BuildAction, Remote, Reuse, Where, by_input_digest, decide_builds
from .errors import CannotWrite, EngineError, Interrupted, JavabaseError, StepError
from .files import write_atomically
from .inputs import Inputs, compute_inputs
from .labels import (
    ARTIFACTS_LABEL,
    INPUT_LABEL,
    INPUTS_LABEL,
    base_of,
    build_labels,
    inputs_label,
    stable_labels,
    with_build_labels,
)
from .model import Image
from .plan import Plan, Unit
from .provenance import Provenance
from .pusher import Pusher, immutable_references
from .references import split_reference
from .registry import Registry
from .render import DOCKERFILE, dockerfile_path
from .report import Console, ImageResult, Report, Status
from .reproducible import normalize_image
from .schedule import run_tree
from .settings import Settings

PARENT_ARG = "JAVABASE_PARENT"


@dataclass(frozen=True)
class BuildOptions:
    """The flags of one build run."""

    push: bool = False
    keep_going: bool = False
    force: bool = False
    no_cache: bool = False
    reproducible: bool = False
    sbom_dir: Path | None = None  # --sbom: where the SPDX files go


def local_images(backend: Backend) -> dict[str, list[LocalImage]]:
    """Images in the engine with a javabase input digest, by digest (one engine call)."""
    return by_input_digest(backend.images(INPUT_LABEL))


def unit_tags(plan: Plan, unit: Unit, registry: str, native: str) -> list[str]:
    """The tags a unit gets in the engine. A multi-platform image's references
    go to its image for the engine's own platform (or its first platform), so
    that `docker run` works here; its other platforms get the references with
    -OS-ARCH appended. Only the references are ever pushed, as one index."""
    references = plan.manifest.references(plan.image(unit.name), registry)
    platforms = plan.image(unit.name).platforms
    if unit.platform is None or unit.platform == (native if native in platforms else platforms[0]):
        return references
    return [f"{ref}-{unit.platform.replace('/', '-')}" for ref in references]


def previous_builds(backend: Backend, units: list[Unit], tags: dict[str, list[str]], inputs: dict[str, Inputs],
                    local: dict[str, list[LocalImage]]) -> dict[str, LocalImage | None]:
    """For every unit that has no local image with its inputs: what its first
    tag points to now, so that decide can say what changed."""
    return {u.key: backend.image(tags[u.key][0]) for u in units if inputs[u.key].digest not in local}


def candidates(backend: Backend, units: list[Unit], tags: dict[str, list[str]], inputs: dict[str, Inputs],
               local: dict[str, list[LocalImage]]) -> dict[str, list[LocalImage]]:
    """The local images the plan could reuse, inspected in full (layers), a few at
    a time. The step that made an image is read (one more engine call) only when
    the image does not carry one of its own tags: an image javabase tagged is not
    an image someone built FROM it."""
    wanted: list[tuple[str, bool]] = []
    for unit in units:
        own = set(tags[unit.key])
        wanted += [(image.id, not own & set(image.tags)) for image in local.get(inputs[unit.key].digest, [])]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="inspect") as pool:
        found = [image for image in pool.map(lambda item: backend.image(item[0], history=item[1]), wanted)
                 if image is not None]
    tagged = {image_id for image_id, history in wanted if not history}
    return by_input_digest(replace(image, last_step=TAGGED) if image.id in tagged else image for image in found)


def expected_labels(plan: Plan, units: list[Unit], inputs: dict[str, Inputs]) -> dict[str, dict[str, str]]:
    """The labels a javabase build of each unit's inputs carries (time, revision
    and artifact URLs aside: a URL is provenance, not content)."""
    out = {}
    for unit in units:
        labels = {k: v for k, v in stable_labels(plan.manifest, plan.image(unit.name)).items()
                  if k != ARTIFACTS_LABEL}
        out[unit.key] = {**labels, INPUT_LABEL: inputs[unit.key].digest, INPUTS_LABEL: inputs_label(inputs[unit.key])}
    return out


@dataclass(frozen=True)
class Decided:
    """What plan_actions found: per unit key its inputs, tags and action, and the
    local images by input digest."""

    inputs: dict[str, Inputs]
    local: dict[str, list[LocalImage]]
    actions: dict[str, BuildAction]
    tags: dict[str, list[str]]


def plan_actions(backend: Backend, plan: Plan, rendered: dict[str, str], registry: str, force: bool = False,
                 remote: Mapping[str, Sequence[tuple[str, Remote | None]]] | None = None) -> Decided:
    """The decision for every unit of the plan; `remote` is what the tags of the
    single-platform images hold in the registry, when it is consulted."""
    units = plan.units
    native = backend.native if any(u.platform for u in units) else ""
    inputs = compute_inputs(plan.manifest, units, rendered)
    tags = {u.key: unit_tags(plan, u, registry, native) for u in units}
    local = {} if force else candidates(backend, units, tags, inputs, local_images(backend))
    previous = {} if force else previous_builds(backend, units, tags, inputs, local)
    parent_of = {u.key: parent.key if (parent := plan.parent_unit(u)) else None for u in units}
    actions = decide_builds([u.key for u in units], inputs, local, previous, force, parent_of,
                            expected_labels(plan, units, inputs), remote)
    return Decided(inputs, local, actions, tags)


class Builder:
    def __init__(
        self,
        plan: Plan,
        rendered: dict[str, str],
        backend: Backend,
        store: ArtifactStore,
        settings: Settings,
        options: BuildOptions,
        provenance: Provenance,
        console: Console | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
        exclusive: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.plan = plan
        self.manifest = plan.manifest
        self.rendered = rendered
        self.backend = backend
        self.store = store
        self.settings = settings
        self.options = options
        self.provenance = provenance
        self.console = console or Console()
        self.registry = registry
        self.clock = clock
        self.exclusive = exclusive
        self.interrupted = threading.Event()
        self.pusher: Pusher | None = None
        self.pull_lock = threading.Lock()
        self.units = {unit.key: unit for unit in plan.units}
        self.results: dict[str, ImageResult] = {
            key: ImageResult(key, self.manifest.references(plan.image(unit.name), settings.registry),
                             image=unit.name, platform=unit.platform)
            for key, unit in self.units.items()
        }
        self.tags: dict[str, list[str]] = {}
        self.inputs: dict[str, Inputs] = {}
        self.local: dict[str, list[LocalImage]] = {}
        self.actions: dict[str, BuildAction] = {}
        self.fetched: dict[str, Fetched] = {}

    # -- the whole run ---------------------------------------------------------------
    def run(self) -> Report:
        self.console.set_names(list(self.units))
        images = [self.plan.image(n) for n in self.plan.order]
        self.fetched = self.store.fetch_all(a for image in images for a in image.artifacts)
        if self.options.push:
            assert self.registry is not None
            self.pusher = Pusher(self.backend, self.registry, self.console, self.settings, force=self.options.force,
                                 keep_log=self.keep_log, immutable=immutable_references(
                                     self.manifest, self.plan.order, self.settings.registry),
                                 platforms={n: self.plan.image(n).platforms for n in self.plan.order
                                            if self.plan.image(n).platforms})
        # From deciding to pushing, the engine's tags must not move under this run.
        with self.exclusive():
            # With --push the registry is a cache too: what its tags hold is looked up once.
            single = [n for n in self.plan.order if not self.plan.image(n).platforms]
            remote = self.pusher.lookup({n: self.results[n].references for n in single}) \
                if self.pusher is not None else None
            decided = plan_actions(self.backend, self.plan, self.rendered, self.settings.registry,
                                   self.options.force, remote)
            self.inputs, self.local, self.actions, self.tags = (decided.inputs, decided.local, decided.actions,
                                                                decided.tags)
            for key, unit in self.units.items():
                image = self.plan.image(unit.name)
                result = self.results[key]
                result.input_digest = self.inputs[key].digest
                result.artifacts = [{"name": a.filename, "source": a.origin, "sha256": a.sha256}
                                    for a in image.artifacts_for(unit.platform)]
                result.base = base_of(self.manifest, image)
            parents = {key: parent.key if (parent := self.plan.parent_unit(unit)) else None
                       for key, unit in self.units.items()}
            run_tree(list(self.units), parents, self.build_one, self.skip, jobs=self.settings.jobs,
                     keep_going=self.options.keep_going, interrupt=self.interrupt)
            report = Report(self.manifest.shown, self.settings.registry, self.options.push, self.results)
            sboms = self.write_sboms() if self.options.sbom_dir is not None else {}
            if self.options.push:
                report.notes += self.push()
                self.attach_sboms(sboms)
        return report

    def write_sboms(self) -> dict[str, bytes]:
        """An SPDX SBOM per image built or reused here, next to the report."""
        from .sbom import generate, package_count

        assert self.options.sbom_dir is not None
        out = {}
        for result in self.results.values():
            if result.status not in (Status.BUILT, Status.UP_TO_DATE) or result.image_id is None:
                continue
            try:
                data = generate(result.image_id, result.name, self.provenance.created, self.backend.where)
                path = self.options.sbom_dir / f"{result.name.replace('@', '_').replace('/', '-')}.spdx.json"
                write_atomically(path, data.decode(), "the SBOM")
            except JavabaseError as exc:
                self.fail(result, str(exc), result.log.append)
                continue
            result.sbom, result.sbom_packages = str(path), package_count(data)
            self.console.line(result.name, f"sbom: {result.sbom_packages} packages, {path}")
            out[result.name] = data
        return out

    def attach_sboms(self, sboms: dict[str, bytes]) -> None:
        assert self.pusher is not None
        for name, data in sboms.items():
            result = self.results[name]
            if result.status == Status.PUSHED or result.pushed:
                try:
                    result.sbom_pushed = self.pusher.attach_sbom(result, data)
                except JavabaseError as exc:
                    self.fail(result, str(exc), result.log.append)

    def push(self) -> list[str]:
        assert self.pusher is not None
        failed = [r.name for r in self.results.values() if r.status in (Status.FAILED, Status.SKIPPED)]
        if failed and not self.options.keep_going:
            self.pusher.discard()
            return [f"nothing was pushed: {', '.join(failed)} did not build "
                    "(with --keep-going the images that did build are pushed)"]
        ready = [r for r in self.results.values()
                 if r.status in (Status.BUILT, Status.UP_TO_DATE, Status.UP_TO_DATE_REGISTRY)]
        return self.pusher.publish(ready, keep_going=self.options.keep_going)

    def interrupt(self) -> None:
        """Ctrl-C: running builds are cancelled and nothing more is tagged."""
        self.interrupted.set()
        self.backend.cancel()
        if self.pusher is not None:
            self.pusher.discard()

    # -- one image ---------------------------------------------------------------------
    def skip(self, name: str, reason: str) -> None:
        result = self.results[name]
        result.status = Status.SKIPPED
        result.reason = reason
        self.console.line(name, reason)

    def build_one(self, name: str) -> bool:
        """Carry out this unit's action; return whether it succeeded."""
        unit = self.units[name]
        image = self.plan.image(unit.name)
        result = self.results[name]
        result.started = self.clock()

        def log(line: str) -> None:
            result.log.append(line)
            self.console.line(name, line)

        action = self.actions[name]
        try:
            if isinstance(action, Reuse) and action.where == Where.REGISTRY:
                result.image_id = action.image_id
                log(f"{action.reason} ({action.image_id.split(':')[-1][:12]}); not built, not pulled")
                result.status = Status.UP_TO_DATE_REGISTRY
                self.stage(result)
                return True
            if isinstance(action, Reuse):
                result.image_id = action.image_id
                log(f"up to date ({action.image_id.split(':')[-1][:12]}), inputs unchanged; not rebuilt")
                self.tag_all(result, log)
                result.status = Status.UP_TO_DATE
                self.stage(result)
                return True
            assert isinstance(action, Build)
            result.changed = action.reason
            log(action.reason)
            parent = self.plan.parent_unit(unit)
            parent_id = self.parent_here(parent.key, log) if parent else None
            result.image_id = self.build_image(image, unit.platform, parent_id, log)
            self.tag_all(result, log)
            result.status = Status.BUILT
            self.stage(result)
        except EngineError as exc:
            # The engine itself is gone: no image can build; the run stops (exit 5).
            self.fail(result, str(exc), log)
            raise
        except JavabaseError as exc:
            self.fail(result, str(exc), log)
        except Exception as exc:  # noqa: BLE001 - one image's bug must not hide the others' results
            self.fail(result, f"internal error: {type(exc).__name__}: {exc}", log)
        finally:
            result.finished = self.clock()
        return result.status == Status.BUILT

    def stage(self, result: ImageResult) -> None:
        """Start uploading what the registry lacks while the other images build."""
        if self.pusher is not None and not self.interrupted.is_set():
            self.pusher.start(result)

    def parent_here(self, key: str, log: LineSink) -> str:
        """The exact image ID of a parent unit in this engine: pulled by digest
        when the registry held it and this engine does not (a fresh CI runner)."""
        parent = self.results[key]
        assert parent.image_id is not None
        if parent.status != Status.UP_TO_DATE_REGISTRY:
            return parent.image_id
        with self.pull_lock:
            if self.backend.image(parent.image_id) is None:
                there = next(r for ref, r in self.pusher.looked_up.items()  # type: ignore[union-attr]
                             if ref in parent.references and r is not None and r.config_digest == parent.image_id)
                repository = split_reference(parent.references[0])[0]
                log(f"pulling its parent {key} ({repository}@{there.digest[:19]})")
                credential = self.registry.credential if self.registry is not None else None
                pulled = self.backend.pull(f"{repository}@{there.digest}", log, credential)
                if pulled != parent.image_id:
                    raise StepError(f"pull {repository}@{there.digest}: the engine has {pulled}, not "
                                    f"{parent.image_id}; the registry's copy changed")
        return parent.image_id

    def fail(self, result: ImageResult, reason: str, log: LineSink) -> None:
        result.status = Status.FAILED
        result.reason = reason
        log(f"FAILED {reason}")
        self.keep_log(result)

    def build_image(self, image: Image, platform: str | None, parent_id: str | None, log: LineSink) -> str:
        context = Path(tempfile.mkdtemp(prefix=f"javabase-{image.name}-"))
        try:
            key = Unit(image.name, platform).key
            inputs = self.inputs[key]
            labels = build_labels(self.manifest, image, created=self.provenance.created,
                                  revision=self.provenance.revision, parent_id=parent_id,
                                  input_digest=inputs.digest, input_parts=inputs.parts)
            # The build-time labels go in with the manifest's as one LABEL instruction
            # at the end of the context's copy (the engine's `labels` option, or a
            # second LABEL, would cost a build step each).
            dockerfile = with_build_labels(self.rendered[dockerfile_path(image)], image, labels)
            (context / DOCKERFILE).write_text(dockerfile, encoding="utf-8")
            for artifact in image.artifacts_for(platform):
                place(self.fetched[artifact.sha256], context)
            build_args = dict(image.build_args)
            if parent_id is not None:
                build_args[PARENT_ARG] = parent_id
            request = BuildRequest(context, build_args, network=image.needs_network, no_cache=self.options.no_cache,
                                   platform=platform)
            image_id = self.backend.build(request, log).image_id
            if self.options.reproducible:
                base = parent_id or (None if image.from_ref == "scratch" else image.from_ref)
                raw = image_id
                image_id = normalize_image(self.backend, raw, base, self.provenance.epoch)
                log(f"normalized {raw.split(':')[1][:12]} -> {image_id.split(':')[1][:12]} "
                    f"(timestamps clamped to {self.provenance.created})")
            return image_id
        finally:
            shutil.rmtree(context, ignore_errors=True)

    def tag_all(self, result: ImageResult, log: LineSink) -> None:
        assert result.image_id is not None
        if self.interrupted.is_set():
            raise Interrupted(f"interrupted; {result.image_id[7:19]} was not tagged")
        known = next((i for found in self.local.values() for i in found if i.id == result.image_id), None)
        present = set(known.tags) if known else set()
        missing = [r for r in self.tags[result.name] if r not in present]
        for reference in missing:
            self.backend.tag(result.image_id, reference)
        if missing:
            log(f"tagged {', '.join(missing)}")

    def keep_log(self, result: ImageResult) -> None:
        """Keep a failed image's whole log; a log that cannot be written does not
        hide the failure it was to record."""
        path = self.settings.log_dir / f"{result.name}.log"
        try:
            write_atomically(path, "\n".join(result.log) + "\n", "the build log")
        except CannotWrite as exc:
            result.reason = f"{result.reason} (and its log was not kept: {exc})"
            return
        result.log_path = str(path)
