"""build, build-all, push and test: render, verify artifacts, build in order,
tag, push; and run the declared tests of images built before."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..build.artifacts import ArtifactStore
from ..build.image_tests import Outcome, run_tests
from ..build.run import Builder, BuildOptions
from ..build.runlock import engine_lock
from ..decide.prepare import unit_tags
from ..engine import Backend
from ..errors import BuildFailed, JavabaseError, LockError, UsageError
from ..files import check_writable
from ..manifest.load import display_path
from ..manifest.model import Manifest
from ..plan import order
from ..plan.render import builds_dir, render_all, write_builds
from ..publish.pusher import Pusher, immutable_references
from ..release.provenance import provenance
from ..report import Console, ImageResult, Phases, Report, Status
from .common import (
    finish,
    fresh_report_path,
    load_locked,
    open_engine,
    open_registry,
    resolve_manifest,
    run_settings,
    signing,
    stopped_report,
)


@dataclass(frozen=True)
class BuildFlags:
    """The flags of `build` and `build-all` (docs/tasks.md)."""

    images: Sequence[str] = ()  # build these and their ancestors; empty: every image
    push: bool = False
    registry: str | None = None
    keep_going: bool = False
    report: str | None = None
    jobs: int | None = None
    force: bool = False
    overwrite_immutable: bool = False
    no_cache: bool = False
    dependents: bool = False
    frozen: bool = False
    reproducible: bool = False
    expect_up_to_date: bool = False
    sbom: bool = False
    sign: bool = False  # sign every published image and attest its provenance (JAVABASE_SIGNING_KEY)
    platform: str | None = None  # of multi-platform images build this platform only, pushed under its own tag
    publish_only: bool = False  # `publish`: build nothing; put every image's index (and tags) together


def build(manifest_path: str | None, flags: BuildFlags, out: TextIO = sys.stdout) -> int:
    """build and build-all: render, verify artifacts, build in order, tag, push.
    expect_up_to_date: fail (exit 12) if anything had to be built or pushed."""
    report_path = fresh_report_path(flags.report)
    console = Console(out)
    builder: Builder | None = None
    phases = Phases()
    try:
        with phases.timed("setup"):  # the manifest, its lock, rendering, the engine, the registry
            builder = _builder(manifest_path, flags, console, report_path, phases)
        result = builder.run()
    except (JavabaseError, KeyboardInterrupt) as exc:
        stopped_report(report_path, _so_far(builder, manifest_path, flags, phases), exc)
        raise
    return finish(result, flags.report, console, flags.push, flags.expect_up_to_date)


def _builder(manifest_path: str | None, flags: BuildFlags, console: Console, report_path: Path | None,
             phases: Phases) -> Builder:
    manifest = load_locked(manifest_path, flags.frozen)
    settings = run_settings(manifest, registry=flags.registry, jobs=flags.jobs)
    check_writable(settings.log_dir, "the build log directory")
    the_plan = order.make_plan(manifest, flags.images, flags.dependents, settings.registry, flags.platform)
    rendered = render_all(manifest)
    write_builds(rendered, builds_dir(manifest))
    backend = open_engine(settings)
    sbom_dir = ((report_path.parent if report_path else settings.log_dir.parent) / "sbom") if flags.sbom else None
    signer, trust = signing(manifest, settings.env, flags.sign, flags.push)
    options = BuildOptions(keep_going=flags.keep_going, force=flags.force, no_cache=flags.no_cache,
                           overwrite_immutable=flags.overwrite_immutable, signer=signer, trust_key=trust,
                           reproducible=flags.reproducible or flags.frozen, sbom_dir=sbom_dir,
                           platform_tags=flags.platform is not None and flags.push, publish_only=flags.publish_only)
    store = ArtifactStore(settings.cache_dir, manifest_name=manifest.shown, cache_max=settings.env.cache_max)
    source = provenance(manifest.path, manifest.templates, settings.env.source_date_epoch)
    if flags.frozen and not source.reproducible:
        raise LockError(f"--frozen: {source.warnings[-1]}; nothing was built")
    for warning in source.warnings:
        console.info(f"warning: {warning}")
    return Builder(the_plan, rendered, backend, store, settings, options, source, console,
                   open_registry(settings.registry, settings, console.info) if flags.push else None,
                   exclusive=lambda: engine_lock(backend.where, console.info, settings.env.lock_dir), phases=phases)


def _so_far(builder: Builder | None, manifest_path: str | None, flags: BuildFlags, phases: Phases) -> Report:
    """What a run that stopped early reached, for its report."""
    if builder is not None:
        return Report(builder.manifest.shown, builder.settings.registry, flags.push, builder.results, phases=phases)
    try:
        shown = display_path(resolve_manifest(manifest_path))
    except UsageError:
        shown = manifest_path or ""
    return Report(shown, flags.registry or "", flags.push, {}, phases=phases)


def push(manifest_path: str | None, images: Sequence[str] = (), *, registry: str | None = None,
         report: str | None = None, overwrite_immutable: bool = False, out: TextIO = sys.stdout) -> int:
    """Push every tag of images that were built (for this registry) before. A
    report is written on every exit path."""
    report_path = fresh_report_path(report)
    console = Console(out)
    the_report = Report(manifest_path or "", registry or "", True, {})
    try:
        manifest = load_locked(manifest_path)
        settings = run_settings(manifest, registry=registry)
        chosen = [n for n in order.make_plan(manifest, images, False, settings.registry).order
                  if not images or n in images]
        backend = open_engine(settings)
        the_report = Report(manifest.shown, settings.registry, True, built_here(backend, manifest, chosen,
                                                                                settings.registry))
        console.set_names(list(the_report.results))
        with engine_lock(backend.where, console.info, settings.env.lock_dir):
            pusher = Pusher(backend, open_registry(settings.registry, settings, console.info), console, settings,
                            overwrite_immutable=overwrite_immutable,
                            immutable=immutable_references(manifest, chosen, settings.registry),
                            platforms={n: manifest.images[n].platforms for n in chosen if manifest.images[n].platforms})
            the_report.notes += pusher.push_all(list(the_report.results.values()))
    except (JavabaseError, KeyboardInterrupt) as exc:
        stopped_report(report_path, the_report, exc)
        raise
    return finish(the_report, report, console, True)


def built_here(backend: Backend, manifest: Manifest, chosen: list[str], target: str) -> dict[str, ImageResult]:
    """Per unit of the chosen images, what the engine holds under its first tag.
    Raises UsageError when one is not built on this engine."""
    the_plan = order.make_plan(manifest, chosen, False, target)
    native = backend.native if any(manifest.images[n].platforms for n in chosen) else ""
    results: dict[str, ImageResult] = {}
    for unit in the_plan.units:
        if unit.name not in chosen:
            continue
        local = unit_tags(the_plan, unit, target, native)
        found = backend.image(local[0])
        if found is None:
            raise UsageError(f"{unit.key}: {local[0]} is not built on this engine; run "
                             f"`invoke build --image {unit.name} --registry {target}` first")
        results[unit.key] = ImageResult(unit.key, manifest.references(manifest.images[unit.name], target),
                                        status=Status.UP_TO_DATE, image_id=found.id, image=unit.name,
                                        platform=unit.platform)
    return results


def test(manifest_path: str | None, images: Sequence[str] = (), *, registry: str | None = None,
         out: TextIO = sys.stdout) -> int:
    """Run the declared tests of images built before (what their first tag in
    this engine holds), every platform of each. Raises UsageError (nothing run)
    when an image is not built, BuildFailed when a test fails."""
    manifest = load_locked(manifest_path)
    settings = run_settings(manifest, registry=registry)
    the_plan = order.make_plan(manifest, images, False, settings.registry)
    chosen = [n for n in the_plan.order if not images or n in images]
    backend = open_engine(settings)
    found = _built(backend, the_plan, chosen, settings.registry)
    failed: list[tuple[str, Outcome]] = []
    count = 0
    for key, (name, image_id) in found.items():
        image = manifest.images[name]
        if not image.tests:
            print(f"{key}: no tests declared", file=out)
            continue
        outcomes = run_tests(backend, image, image_id, _prefixed(key, out))
        count += len(outcomes)
        failed += [(key, o) for o in outcomes if o.failure is not None]
    if failed:
        key, first = failed[0]
        raise BuildFailed(f"{len(failed)} of {count} test(s) failed; first: {key}: test {first.test.name!r}: "
                          f"{first.failure}")
    print(f"{count} test(s) passed in {len(found)} image(s)", file=out)
    return 0


def _built(backend: Backend, the_plan: order.Plan, chosen: list[str], registry: str) -> dict[str, tuple[str, str]]:
    """Per unit key: (image name, the ID its first tag holds here). Raises UsageError naming what is not built."""
    native = backend.native if any(the_plan.image(n).platforms for n in chosen) else ""
    found: dict[str, tuple[str, str]] = {}
    missing = []
    for unit in the_plan.units:
        if unit.name not in chosen:
            continue
        reference = unit_tags(the_plan, unit, registry, native)[0]
        local = backend.image(reference)
        if local is None:
            missing.append(f"{unit.key} ({reference})")
        else:
            found[unit.key] = (unit.name, local.id)
    if missing:
        raise UsageError(f"not built on this engine: {', '.join(missing)}; run `invoke build` first. Nothing was "
                         "tested")
    return found


def _prefixed(key: str, out: TextIO) -> Callable[[str], None]:
    def line(text: str) -> None:
        print(f"{key}: {text}", file=out)

    return line
