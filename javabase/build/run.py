"""Carries out a run: verify every artifact (nothing is built unless all
verify), decide per image (javabase.decide.prepare), build what must be built
as soon as its parent is done (javabase.plan.schedule), tag, then push
(javabase.publish.pusher).

The backend, the artifact store and the registry client are parameters; this
module never imports docker."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from ..decide.inputs import Inputs
from ..decide.labels import base_of, build_labels
from ..decide.prepare import plan_actions, registry_references
from ..decide.rules import Build, BuildAction, Reuse, Trust, Where
from ..engine import Backend, BuildRequest, LineSink, LocalImage
from ..errors import CannotWrite, EngineError, Interrupted, JavabaseError, NotUpToDate, StepError
from ..files import write_atomically
from ..manifest.model import Image
from ..manifest.references import platform_reference, split_reference
from ..plan.order import Plan, Unit, file_stem
from ..plan.render import DOCKERFILE, dockerfile_path, with_labels
from ..plan.schedule import run_tree
from ..publish.pusher import Pusher, immutable_references
from ..publish.registry import Registry
from ..release import sbom, verify
from ..release.provenance import Provenance
from ..release.signing import Signer
from ..report import Console, ImageResult, Phases, Report, Status
from ..settings import Settings
from .artifacts import ArtifactStore, Fetched, place
from .attest import Attester
from .emulation import BINFMT, emulation_problem
from .image_tests import pass_before_tagging
from .pem import check_certificates
from .reproducible import normalize_image

PARENT_ARG = "JAVABASE_PARENT"


@dataclass(frozen=True)
class BuildOptions:
    """The flags of one build run (pushing is the registry client given to the Builder)."""

    keep_going: bool = False
    force: bool = False  # rebuild even when an image with the same inputs exists
    overwrite_immutable: bool = False  # publish over immutable tags that hold another image
    no_cache: bool = False
    reproducible: bool = False
    sbom_dir: Path | None = None  # --sbom: where the SPDX files go
    signer: Signer | None = None  # --sign: sign every published image and attest its provenance
    trust_key: ec.EllipticCurvePublicKey | None = None  # reuse from the registry only what verifies with it
    platform_tags: bool = False  # --platform: a platform's manifest goes under its per-platform tag, not an index
    publish_only: bool = False  # `publish`: build nothing; every unit must be in the engine or the registry


def keep_log(result: ImageResult, log_dir: Path) -> None:
    """Keep a failed image's whole log in `log_dir`; a log that cannot be written
    does not hide the failure it was to record."""
    path = log_dir / f"{file_stem(result.name)}.log"
    try:
        write_atomically(path, "\n".join(result.log) + "\n", "the build log")
    except CannotWrite as exc:
        result.reason = f"{result.reason} (and its log was not kept: {exc})"
        return
    result.log_path = str(path)


class Builder:
    """One run over a plan. With a registry client, everything built or reused is
    pushed once all builds succeeded (and staged while they run)."""

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
        phases: Phases | None = None,
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
        self.pull_lock = threading.Lock()
        self.phases = phases or Phases()  # where the run's time goes (the report's `phases`)
        self.units = {unit.key: unit for unit in plan.units}
        self.results: dict[str, ImageResult] = {
            key: ImageResult(key, self.references(unit), image=unit.name, platform=unit.platform)
            for key, unit in self.units.items()
        }
        self.pusher = None if registry is None else Pusher(
            backend, registry, self.console, settings, overwrite_immutable=options.overwrite_immutable,
            keep_log=self.keep_log,
            immutable=immutable_references(self.manifest, plan.order, settings.registry),
            platforms={n: plan.image(n).platforms for n in plan.order if plan.image(n).platforms},
            platform_tags=options.platform_tags, phases=self.phases, builds_running=True)
        self.tags: dict[str, list[str]] = {}
        self.inputs: dict[str, Inputs] = {}
        self.actions: dict[str, BuildAction] = {}
        self.known: dict[str, LocalImage] = {}  # the reuse candidates, by image ID
        self.fetched: dict[str, Fetched] = {}
        self.unusable: dict[str, str] = {}  # foreign platforms this engine cannot build for: why

    def references(self, unit: Unit) -> list[str]:
        """What a unit is published under: the image's references; one platform of
        a multi-platform image pushed on its own (`platform_tags`), its per-platform
        reference only."""
        references = self.manifest.references(self.plan.image(unit.name), self.settings.registry)
        if unit.platform is not None and self.options.platform_tags:
            return [platform_reference(references[0], unit.platform)]
        return references

    # -- the whole run ---------------------------------------------------------------
    def run(self) -> Report:
        """Verify, decide, build, tag and (with a registry) push; the report says
        what happened to each image. Raises JavabaseError when the run as a whole
        cannot go on (an artifact, the engine, the registry), KeyboardInterrupt on Ctrl-C."""
        self.console.set_names(list(self.units))
        images = [self.plan.image(n) for n in self.plan.order]
        try:
            with self.phases.timed("artifacts"):
                self.fetched = self.store.fetch_all(a for image in images for a in image.artifacts)
                check_certificates(self.manifest.shown, self.fetched,
                                   (a for image in images for a in image.certificates))
            # From deciding to pushing, the engine's tags must not move under this run.
            with contextlib.ExitStack() as held:
                with self.phases.timed("engine lock"):  # waiting for another run on this engine
                    held.enter_context(self.exclusive())
                try:
                    return self.carry_out_all()
                except BaseException:
                    if self.pusher is not None:  # no upload starts after the run has failed
                        self.pusher.discard()
                    raise
        finally:
            self.store.close()

    def carry_out_all(self) -> Report:
        with self.phases.timed("decide"):
            self.decide()
        if self.options.publish_only:
            self.nothing_to_build()
        report = Report(self.manifest.shown, self.settings.registry, self.pusher is not None, self.results,
                        phases=self.phases)
        with self.phases.timed("decide"):
            self.unusable = self.check_emulators()
        if self.unusable and not self.options.keep_going:
            self.start_nothing(self.unusable)
            if self.pusher is not None:
                self.pusher.discard()
            return report
        parents = {key: parent.key if (parent := self.plan.parent_unit(unit)) else None
                   for key, unit in self.units.items()}
        with self.phases.timed("builds"):
            run_tree(list(self.units), parents, self.build_one, self.skip, jobs=self.settings.jobs,
                     keep_going=self.options.keep_going, interrupt=self.interrupt,
                     all_started=self.pusher.builds_started if self.pusher is not None else lambda: None)
        sboms = self.write_sboms(self.options.sbom_dir) if self.options.sbom_dir is not None else {}
        if self.pusher is not None:
            with self.phases.timed("push after the builds"):
                report.notes += self.push(self.pusher)
            if sboms or self.options.signer is not None:
                with self.phases.timed("attest"):
                    Attester(self.plan, self.rendered, self.inputs, self.provenance, self.backend, self.pusher,
                             self.options.signer).attest(self.results, sboms, lambda result, why: self.fail(
                                 result, why, result.log.append))
        return report

    def decide(self) -> None:
        """Every unit's action, and what the report says of its inputs. With a
        registry, it is a cache too: what its tags hold is looked up once."""
        with self.phases.timed("decide: registry lookups"):
            remote = self.pusher.lookup(
                {key: registry_references(self.plan, unit, self.settings.registry) for key, unit in self.units.items()},
                {key: unit.platform for key, unit in self.units.items() if unit.platform}) \
                if self.pusher is not None else None
        with self.phases.timed("decide: engine reuse checks"):
            decided = plan_actions(self.backend, self.plan, self.rendered, self.settings.registry,
                                   self.options.force, remote, self.trust(), normalised=self.options.reproducible)
        self.inputs, self.actions, self.tags = decided.inputs, decided.actions, decided.tags
        self.known = {image.id: image for found in decided.local.values() for image in found}
        for key, unit in self.units.items():
            image = self.plan.image(unit.name)
            result = self.results[key]
            result.input_digest = self.inputs[key].digest
            result.engine_references = list(self.tags[key])
            result.artifacts = [{"name": a.filename, "source": a.origin, "sha256": a.sha256}
                                for a in image.artifacts_for(unit.platform)]
            result.base = base_of(self.manifest, image)

    def check_emulators(self) -> dict[str, str]:
        """Per foreign platform this run must build for: why the engine cannot
        (javabase.build.emulation), before anything is built; {} when it can."""
        wanted = sorted({u.platform for key, u in self.units.items()
                         if u.platform is not None and isinstance(self.actions[key], Build)})
        local = self.backend.where.startswith("unix://")
        found = {p: emulation_problem(self.backend, p, BINFMT if local else None) for p in wanted}
        return {platform: problem for platform, problem in found.items() if problem is not None}

    def start_nothing(self, unusable: dict[str, str]) -> None:
        """Without --keep-going, a platform the engine cannot build stops the run
        before any build: its images fail with the reason, the others wait."""
        for key, unit in self.units.items():
            result = self.results[key]
            if unit.platform in unusable:
                self.fail(result, unusable[unit.platform], result.log.append)
            else:
                self.skip(key, f"not started: {', '.join(unusable)} cannot be built on this engine (--keep-going "
                               "builds the rest)")

    def nothing_to_build(self) -> None:
        """`publish`: every unit must already be in this engine or the registry.
        Raises NotUpToDate naming the first that is not, before anything is pushed."""
        missing = [key for key, action in self.actions.items() if isinstance(action, Build)]
        if missing:
            unit = self.units[missing[0]]
            job = f"build --image {unit.name}" + (f" --platform {unit.platform}" if unit.platform else "") + " --push"
            raise NotUpToDate(f"publish: {', '.join(missing)} not in the registry with the manifest's inputs "
                              f"({self.actions[missing[0]].reason}); `{job}` must run first; nothing was published")

    def write_sboms(self, folder: Path) -> dict[str, bytes]:
        """An SPDX SBOM per image built or reused here, in `folder`."""
        out = {}
        for result in self.results.values():
            if result.status not in (Status.BUILT, Status.UP_TO_DATE) or result.image_id is None:
                continue
            try:
                data = sbom.generate(result.image_id, result.name, self.provenance.created, self.backend.where,
                                     self.settings.env.process)
                path = folder / f"{file_stem(result.name)}.spdx.json"
                write_atomically(path, data, "the SBOM")
            except JavabaseError as exc:
                self.fail(result, str(exc), result.log.append)
                continue
            result.sbom, result.sbom_packages = str(path), sbom.package_count(data)
            self.console.line(result.name, f"sbom: {result.sbom_packages} packages, {path}")
            out[result.name] = data
        return out

    def trust(self) -> Trust | None:
        """With the team's public key: whether an image in the registry verifies with it."""
        key, registry = self.options.trust_key, self.registry
        if key is None or registry is None:
            return None
        return verify.trust_in(registry, key)

    def push(self, pusher: Pusher) -> list[str]:
        failed = [r.name for r in self.results.values() if r.status in (Status.FAILED, Status.SKIPPED)]
        if failed and not self.options.keep_going:
            pusher.discard()
            return [f"nothing was pushed: {', '.join(failed)} did not build "
                    "(with --keep-going the images that did build are pushed)"]
        ready = [r for r in self.results.values()
                 if r.status in (Status.BUILT, Status.UP_TO_DATE, Status.UP_TO_DATE_REGISTRY)]
        return pusher.publish(ready, keep_going=self.options.keep_going)

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
        result = self.results[name]
        result.started = self.clock()

        def log(line: str) -> None:
            result.log.append(line)
            self.console.line(name, line)

        try:
            platform = self.units[name].platform
            if platform in self.unusable and isinstance(self.actions[name], Build):
                raise StepError(self.unusable[platform])
            self.carry_out(self.units[name], self.actions[name], result, log)
        except EngineError as exc:
            # The engine itself is gone: no image can build; the run stops (exit 5).
            self.fail(result, str(exc), log)
            raise
        except JavabaseError as exc:
            self.fail(result, str(exc), log)
        except Exception as exc:  # noqa: BLE001 - one image's bug must not hide the others' results
            result.log.extend(traceback.format_exc().rstrip("\n").splitlines())
            self.fail(result, f"internal error (a bug in javabase; its traceback is in the image's log): "
                              f"{type(exc).__name__}: {exc}", log)
        finally:
            result.finished = self.clock()
        return result.status in (Status.BUILT, Status.UP_TO_DATE, Status.UP_TO_DATE_REGISTRY)

    def carry_out(self, unit: Unit, action: BuildAction, result: ImageResult, log: LineSink) -> None:
        """Reuse (from the registry: not built, not pulled; from the engine: tagged)
        or build and tag; then start staging its push."""
        if isinstance(action, Reuse):
            result.image_id = action.image_id
            if action.where == Where.REGISTRY:
                log(f"{action.reason} ({action.image_id.split(':')[-1][:12]}); not built, not pulled")
                result.status = Status.UP_TO_DATE_REGISTRY
            else:
                log(f"up to date ({action.image_id.split(':')[-1][:12]}), inputs unchanged; not rebuilt")
                self.tag_all(result, action.image_id, log)
                result.status = Status.UP_TO_DATE
        elif isinstance(action, Build):
            result.changed = action.reason
            log(action.reason)
            parent = self.plan.parent_unit(unit)
            parent_id = self.parent_here(parent.key, log) if parent else None
            result.image_id = self.build_image(self.plan.image(unit.name), unit.platform, parent_id, log)
            with self.phases.timed("image tests (summed)"):
                pass_before_tagging(self.backend, self.plan.image(unit.name), result.image_id, log)
            with self.phases.timed("tag (summed)"):
                self.tag_all(result, result.image_id, log)
            result.status = Status.BUILT
        if self.pusher is not None and not self.interrupted.is_set():
            self.pusher.start(result)  # upload what the registry lacks while the other images build

    def parent_here(self, key: str, log: LineSink) -> str:
        """The exact image ID of a parent unit in this engine: pulled by digest
        when the registry held it and this engine does not (a fresh CI runner)."""
        parent = self.results[key]
        if parent.image_id is None:
            raise StepError(f"its parent {key} has no image (it did not build)")
        if parent.status != Status.UP_TO_DATE_REGISTRY:
            return parent.image_id
        with self.pull_lock:
            if self.backend.image(parent.image_id) is None:
                self.pull_parent(parent, parent.image_id, log)
        return parent.image_id

    def pull_parent(self, parent: ImageResult, image_id: str, log: LineSink) -> None:
        """Pull a parent the registry holds, by the digest its tag held when the run looked."""
        found = self.pusher.found(image_id) if self.pusher is not None else None
        if found is None:
            raise StepError(f"its parent {parent.name} is not in this engine, and no tag in the registry holds "
                            f"{image_id[7:19]}; run again")
        repository, there = split_reference(parent.references[0])[0], found[1]
        log(f"pulling its parent {parent.name} ({repository}@{there.digest[:19]})")
        credential = self.registry.credential if self.registry is not None else None
        pulled = self.backend.pull(f"{repository}@{there.digest}", log, credential)
        if pulled != image_id:
            raise StepError(f"pull {repository}@{there.digest}: the engine has {pulled}, not {image_id}; the "
                            "registry's copy changed")

    def fail(self, result: ImageResult, reason: str, log: LineSink) -> None:
        result.status = Status.FAILED
        result.reason = reason
        log(f"FAILED {reason}")
        self.keep_log(result)

    def keep_log(self, result: ImageResult) -> None:
        keep_log(result, self.settings.log_dir)

    def build_image(self, image: Image, platform: str | None, parent_id: str | None, log: LineSink) -> str:
        """Build one unit in a fresh context (its Dockerfile with the build's labels
        and its verified artifacts); with --reproducible, normalised. Its image ID."""
        context = Path(tempfile.mkdtemp(prefix=f"javabase-{image.name}-"))
        self.phases.count("builds")
        try:
            with self.phases.timed("build contexts (summed)"):
                inputs = self.inputs[Unit(image.name, platform).key]
                labels = build_labels(self.manifest, image, created=self.provenance.created,
                                      revision=self.provenance.revision, parent_id=parent_id,
                                      input_digest=inputs.digest, inputs_label=inputs.label,
                                      normalised=self.options.reproducible)
                # The build-time labels go in with the manifest's as one LABEL instruction
                # at the end of the context's copy (the engine's `labels` option, or a
                # second LABEL, would cost a build step each).
                dockerfile = with_labels(self.rendered[dockerfile_path(image)], image, labels)
                (context / DOCKERFILE).write_text(dockerfile, encoding="utf-8")
                for artifact in image.artifacts_for(platform):
                    place(self.fetched[artifact.sha256], context)
            build_args = dict(image.build_args)
            if parent_id is not None:
                build_args[PARENT_ARG] = parent_id
            request = BuildRequest(context, build_args, network=image.network_mode, no_cache=self.options.no_cache,
                                   platform=platform)
            with self.phases.timed("engine builds (summed)"):
                outcome = self.backend.build(request, log)
            image_id = outcome.image_id
            self.phases.count("engine steps", outcome.steps)
            if self.options.reproducible:
                base = parent_id or (None if image.from_ref == "scratch" else image.from_ref)
                raw = image_id
                image_id = normalize_image(self.backend, raw, base, self.provenance.epoch)
                log(f"normalized {raw.split(':')[1][:12]} -> {image_id.split(':')[1][:12]} "
                    f"(timestamps clamped to {self.provenance.created})")
            return image_id
        finally:
            shutil.rmtree(context, ignore_errors=True)

    def tag_all(self, result: ImageResult, image_id: str, log: LineSink) -> None:
        """Give the image every tag of its unit that it lacks (none after Ctrl-C)."""
        if self.interrupted.is_set():
            raise Interrupted(f"interrupted; {image_id[7:19]} was not tagged")
        known = self.known.get(image_id)
        present = set(known.tags) if known else set()
        missing = [r for r in self.tags[result.name] if r not in present]
        for reference in missing:
            self.backend.tag(image_id, reference)
        if missing:
            log(f"tagged {', '.join(missing)}")
