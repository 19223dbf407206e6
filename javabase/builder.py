"""Build, tag and push a plan: artifacts first (nothing is built unless every
one verifies), then images as soon as their parent is done, up to --jobs at
a time, then pushes. Images whose inputs did not change are not rebuilt.

The engine, the artifact store and the registry reader are parameters; this
module never imports docker."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .artifacts import ArtifactStore, Fetched, place
from .engine import LineSink, StepError
from .errors import JavabaseError
from .inputs import Inputs, compute_inputs
from .manifest import Image, Manifest
from .plan import Plan
from .provenance import Provenance
from .pusher import Pusher, immutable_references
from .registry import Registry
from .render import DOCKERFILE, dockerfile_path, dq
from .report import BUILT, FAILED, PENDING, SKIPPED, UP_TO_DATE, Console, ImageResult, Report
from .reproducible import normalize_image

INPUT_LABEL = "io.javabase.input-digest"
INPUTS_LABEL = "io.javabase.inputs"
ARTIFACTS_LABEL = "io.javabase.artifacts"
PARENT_ARG = "JAVABASE_PARENT"


class EngineLike(Protocol):
    def build(self, context: Path, *, buildargs: dict[str, str], labels: dict[str, str], network_mode: str,
              on_line: LineSink, nocache: bool = False) -> str: ...

    def list_labelled(self, key: str) -> list[dict[str, Any]]: ...

    def inspect(self, ref: str) -> dict[str, Any] | None: ...

    def tag(self, image_id: str, reference: str) -> None: ...

    def push(self, reference: str, on_line: LineSink) -> str: ...

    def export(self, image_id: str, dest: Path) -> None: ...

    def load(self, archive: Path) -> None: ...

    def remove_untagged(self, image_id: str) -> None: ...


@dataclass(frozen=True)
class BuildOptions:
    registry: str
    push: bool = False
    keep_going: bool = False
    jobs: int = os.cpu_count() or 1
    force: bool = False
    no_cache: bool = False
    push_jobs: int = 4
    log_dir: Path | None = None
    reproducible: bool = False


class Builder:
    def __init__(
        self,
        plan: Plan,
        rendered: dict[str, str],
        engine: EngineLike,
        store: ArtifactStore,
        options: BuildOptions,
        provenance: Provenance,
        console: Console | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plan = plan
        self.manifest: Manifest = plan.manifest
        self.rendered = rendered
        self.engine = engine
        self.store = store
        self.options = options
        self.provenance = provenance
        self.console = console or Console()
        self.registry = registry
        self.clock = clock
        self.results: dict[str, ImageResult] = {
            name: ImageResult(name, self.manifest.references(plan.image(name), options.registry))
            for name in plan.order
        }
        self.inputs: dict[str, Inputs] = {}
        # Local images javabase built, by input digest: one engine call instead of
        # one lookup per image, so a no-op run stays fast.
        self.local: dict[str, dict[str, Any]] | None = None
        self.fetched: dict[str, Fetched] = {}

    # -- the whole run ---------------------------------------------------------------
    def run(self) -> Report:
        self.console.set_names(self.plan.order)
        images = [self.plan.image(n) for n in self.plan.order]
        self.fetched = self.store.fetch_all(a for image in images for a in image.artifacts)
        self.prepare()
        for image in images:
            result = self.results[image.name]
            result.input_digest = self.inputs[image.name].digest
            result.artifacts = [{"name": a.filename, "source": a.origin, "sha256": a.sha256}
                                for a in image.artifacts]
            result.base = self.base_of(image)
        self.build_all()
        report = Report(self.manifest.shown, self.options.registry, self.options.push, self.results)
        if self.options.push:
            failed = [r.name for r in self.results.values() if r.status in (FAILED, SKIPPED)]
            if failed and not self.options.keep_going:
                report.notes.append(f"nothing was pushed: {', '.join(failed)} did not build "
                                    "(with --keep-going the images that did build are pushed)")
            else:
                immutable = immutable_references(self.manifest, self.plan.order, self.options.registry)
                report.notes += Pusher(self.engine, self.registry, self.console, self.options, self.keep_log,
                                       immutable).push_all(
                    [r for r in self.results.values() if r.status in (BUILT, UP_TO_DATE)])
        return report

    # -- inputs ----------------------------------------------------------------------
    def prepare(self) -> None:
        """What decide() needs: every image's inputs, and javabase's local images by
        input digest (one engine call, before any build thread asks)."""
        self.inputs = self.compute_inputs()
        self.local = {}
        for found in sorted(self.engine.list_labelled(INPUT_LABEL), key=lambda i: i.get("Created", 0)):
            digest = (found.get("Labels") or {}).get(INPUT_LABEL)
            if digest:
                self.local[digest] = found

    def compute_inputs(self) -> dict[str, Inputs]:
        # Artifact URLs are provenance, not content: the parts hold their sha256.
        labels = {name: {k: v for k, v in self.stable_labels(self.plan.image(name)).items()
                         if k != ARTIFACTS_LABEL} for name in self.plan.order}
        return compute_inputs(self.manifest, self.plan.order, self.rendered, labels)

    def decide(self, name: str) -> tuple[str | None, str]:
        """(existing image ID or None, why): whether `name` must be built, and why."""
        inputs = self.inputs[name]
        if self.options.force:
            return None, "rebuild forced (--force)"
        existing = (self.local or {}).get(inputs.digest)
        if existing:
            return str(existing["Id"]), "up to date: an image with the same inputs exists"
        current = self.engine.inspect(self.results[name].references[0])
        old = ((current or {}).get("Config") or {}).get("Labels") or {}
        if INPUTS_LABEL not in old:
            return None, "build: no earlier build of this image"
        changed = inputs.changed_since(json.loads(old[INPUTS_LABEL]))
        return None, "build: changed " + ", ".join(changed)

    def base_of(self, image: Image) -> dict[str, str]:
        # The manifest's own registry, not --registry: an image's identity does not
        # depend on where it is pushed, so it can be promoted between registries.
        if image.parent is not None:
            parent = self.plan.image(image.parent)
            return {"name": self.manifest.references(parent)[0]}
        if image.from_ref == "scratch":
            return {"name": "scratch"}
        name, _, digest = image.from_ref.partition("@")
        return {"name": name, "digest": digest} if digest else {"name": name}

    def stable_labels(self, image: Image) -> dict[str, str]:
        """Labels that depend only on the inputs (not on time or revision)."""
        base = self.base_of(image)
        labels = {
            "org.opencontainers.image.title": image.name,
            "org.opencontainers.image.version": image.version or image.tags[0],
            "org.opencontainers.image.base.name": base["name"],
            ARTIFACTS_LABEL: json.dumps([[a.origin if a.url else a.filename, a.sha256] for a in image.artifacts]),
        }
        if "digest" in base:
            labels["org.opencontainers.image.base.digest"] = base["digest"]
        if self.manifest.source:
            labels["org.opencontainers.image.source"] = self.manifest.source
        return labels

    def labels(self, image: Image, parent_id: str | None) -> dict[str, str]:
        labels = self.stable_labels(image)
        labels["org.opencontainers.image.created"] = self.provenance.created
        labels["org.opencontainers.image.revision"] = self.provenance.revision
        if parent_id is not None:
            labels["org.opencontainers.image.base.digest"] = parent_id
        labels[INPUT_LABEL] = self.inputs[image.name].digest
        labels[INPUTS_LABEL] = json.dumps(dict(self.inputs[image.name].parts), sort_keys=True)
        return labels

    # -- scheduling --------------------------------------------------------------------
    def build_all(self) -> None:
        pending = list(self.plan.order)
        running: dict[Future[None], str] = {}
        stopped_by: str | None = None
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs), thread_name_prefix="build") as pool:
            while pending or running:
                for name in list(pending):
                    image = self.plan.image(name)
                    result = self.results[name]
                    parent = self.results[image.parent] if image.parent else None
                    if parent is not None and parent.status in (FAILED, SKIPPED):
                        what = "failed" if parent.status == FAILED else "was skipped"
                        self.skip(result, f"skipped: {parent.name} {what}")
                        pending.remove(name)
                        continue
                    if stopped_by is not None:
                        self.skip(result, f"not started: {stopped_by} failed (--keep-going builds the rest)")
                        pending.remove(name)
                        continue
                    if parent is not None and parent.status == PENDING:
                        continue
                    if len(running) >= max(1, self.options.jobs):
                        break
                    pending.remove(name)
                    running[pool.submit(self.build_one, image)] = name
                if not running:
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    future.result()
                    if self.results[name].status == FAILED and not self.options.keep_going and stopped_by is None:
                        stopped_by = name

    def skip(self, result: ImageResult, reason: str) -> None:
        result.status = SKIPPED
        result.reason = reason
        self.console.line(result.name, reason)

    def build_one(self, image: Image) -> None:
        result = self.results[image.name]
        result.started = self.clock()

        def log(line: str) -> None:
            result.log.append(line)
            self.console.line(image.name, line)

        parent_id = self.results[image.parent].image_id if image.parent else None
        try:
            existing, why = self.decide(image.name)
            if existing:
                result.image_id = existing
                log(f"up to date ({existing.split(':')[-1][:12]}), inputs unchanged; not rebuilt")
                self.tag_all(result, log)
                result.status = UP_TO_DATE
                return
            result.changed = why
            log(why)
            result.image_id = self.build_image(image, parent_id, log)
            self.tag_all(result, log)
            result.status = BUILT
        except (StepError, JavabaseError) as exc:
            result.status = FAILED
            result.reason = f"{exc}"
            log(f"FAILED {exc}")
            self.keep_log(result)
        except Exception as exc:  # noqa: BLE001 - one image's bug must not hide the others' results
            result.status = FAILED
            result.reason = f"internal error: {type(exc).__name__}: {exc}"
            log(f"FAILED {result.reason}")
            self.keep_log(result)
        finally:
            result.finished = self.clock()

    def build_image(self, image: Image, parent_id: str | None, log: LineSink) -> str:
        context = Path(tempfile.mkdtemp(prefix=f"javabase-{image.name}-"))
        try:
            # The build-time labels go in as one LABEL instruction appended to the
            # context's copy (the engine's `labels` option costs one step per label).
            dockerfile = self.rendered[dockerfile_path(image)] + label_instruction(self.labels(image, parent_id))
            (context / DOCKERFILE).write_text(dockerfile, encoding="utf-8")
            for artifact in image.artifacts:
                place(self.fetched[artifact.sha256], context)
            buildargs = dict(image.build_args)
            if parent_id is not None:
                buildargs[PARENT_ARG] = parent_id
            image_id = self.engine.build(
                context,
                buildargs=buildargs,
                labels={},
                network_mode="host" if image.needs_network else "none",
                on_line=log,
                nocache=self.options.no_cache,
            )
            if self.options.reproducible:
                base = parent_id or (None if image.from_ref == "scratch" else image.from_ref)
                raw = image_id
                image_id = normalize_image(self.engine, raw, base, self.provenance.epoch)
                log(f"normalized {raw.split(':')[1][:12]} -> {image_id.split(':')[1][:12]} "
                    f"(timestamps clamped to {self.provenance.created})")
            return image_id
        finally:
            shutil.rmtree(context, ignore_errors=True)

    def tag_all(self, result: ImageResult, log: LineSink) -> None:
        assert result.image_id is not None
        known = next((i for i in (self.local or {}).values() if i["Id"] == result.image_id), {})
        present = set(known.get("RepoTags") or [])
        missing = [r for r in result.references if r not in present]
        for reference in missing:
            self.engine.tag(result.image_id, reference)
        if missing:
            log(f"tagged {', '.join(missing)}")

    def keep_log(self, result: ImageResult) -> None:
        if self.options.log_dir is None:
            return
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.options.log_dir / f"{result.name}.log"
        path.write_text("\n".join(result.log) + "\n", encoding="utf-8")
        result.log_path = str(path)


def label_instruction(labels: dict[str, str]) -> str:
    body = " \\\n      ".join(f"{key}={dq(value)}" for key, value in sorted(labels.items()))
    return f"# Added by javabase at build time\nLABEL {body}\n"
