"""What each task does, as plain functions that return an exit code and print
for people. tasks.py only parses flags and calls these through `run`."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from . import plan as plans
from . import settings as config
from .errors import BuildFailed, DriftError, Exit, JavabaseError, NotUpToDate, PipelineDrift, UsageError
from .files import check_writable, remove
from .manifest import display_path, load_manifest
from .model import Manifest
from .references import split_reference
from .render import check_builds, render_all, write_builds
from .report import Console, ImageResult, Report, Status
from .templates import PROJECT_ROOT, TEMPLATES_DIR

if TYPE_CHECKING:
    from .builder import Builder

DEFAULT_MANIFEST = "images.yaml"


def run(action: Callable[[], int], debug: bool = False, err: TextIO | None = None) -> int:
    """Run a command; a JavabaseError becomes its one-line message(s) and exit code.
    Anything else is a bug: one line too, and the traceback only with --debug."""
    err = err or sys.stderr
    try:
        return action()
    except JavabaseError as exc:
        if debug:
            traceback.print_exc(file=err)
        for line in exc.lines():
            print(f"error: {line}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return Exit.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence for people
        if debug:
            traceback.print_exc(file=err)
        print(f"error: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
              file=err)
        return Exit.INTERNAL


def resolve_manifest(manifest: str | None) -> Path:
    """--manifest as given; by default images.yaml of the current directory, or of the project."""
    if manifest:
        return Path(manifest)
    local = Path(DEFAULT_MANIFEST)
    return local if local.exists() else PROJECT_ROOT / DEFAULT_MANIFEST


def load_locked(manifest_path: str | None, frozen: bool = False) -> Manifest:
    """The manifest with FROM lines pinned by its lock file, when there is one.
    frozen: the lock must exist and agree with the manifest, or nothing happens."""
    from .errors import LockError
    from .lock import LOCK_NAME, apply_lock, differences, lock_path, read_lock

    manifest = load_manifest(resolve_manifest(manifest_path))
    lock = read_lock(lock_path(manifest))
    if frozen:
        if lock is None:
            raise LockError(f"{manifest.shown}: --frozen needs {LOCK_NAME} next to it; run `invoke lock` and "
                            "commit the file")
        stale = differences(manifest, lock)
        if stale:
            raise LockError(f"{LOCK_NAME} disagrees with {manifest.shown}; nothing was built. Run `invoke lock` "
                            "and commit the result if the change is intended:", stale)
    return apply_lock(manifest, lock) if lock is not None else manifest


def lock(manifest_path: str | None, check: bool = False, out: TextIO = sys.stdout) -> int:
    """Resolve outside FROM references to digests and write images.lock.json."""
    from .errors import LockError
    from .lock import (
        LOCK_NAME,
        compute_lock,
        differences,
        lock_path,
        platform_resolver,
        read_lock,
        registry_resolver,
        write_lock,
    )
    from .registry import Registry, open_registry

    manifest = load_manifest(resolve_manifest(manifest_path))
    path = lock_path(manifest)
    if check:
        existing = read_lock(path)
        if existing is None:
            raise LockError(f"{manifest.shown}: no {LOCK_NAME}; run `invoke lock`")
        stale = differences(manifest, existing)
        if stale:
            raise LockError(f"{LOCK_NAME} disagrees with {manifest.shown}:", stale)
        print(f"{_shown(path)}: up to date with {manifest.shown}", file=out)
        return 0
    insecure = config.insecure_from_env() | set(manifest.insecure_registries)
    def client(host: str) -> Registry:
        return open_registry(host, insecure=insecure)

    mirror = manifest.mirrors.get("registry")
    data = compute_lock(manifest, registry_resolver(mirror, client), per_platform=platform_resolver(mirror, client),
                        warn=lambda line: print(f"note: {line}", file=out))
    changed = write_lock(path, data)
    for name, entry in sorted(data["images"].items()):
        if entry["base_digest"]:
            print(f"{name}: {entry['from'].split('@')[0]} -> {entry['base_digest']}", file=out)
    print(f"{_shown(path)}: {'written' if changed else 'already up to date'} ({len(data['images'])} images)",
          file=out)
    return 0


def builds_dir(manifest: Manifest) -> Path:
    return manifest.path.resolve().parent / "builds"


def validate(manifest_path: str | None, out: TextIO = sys.stdout) -> int:
    manifest = load_manifest(resolve_manifest(manifest_path))
    print(f"{manifest.shown}: ok, {len(manifest.images)} images", file=out)
    return 0


def render(manifest_path: str | None, check: bool = False, out: TextIO = sys.stdout) -> int:
    manifest = load_locked(manifest_path)
    rendered = render_all(manifest)
    target = builds_dir(manifest)
    if check:
        differences = check_builds(rendered, target)
        if differences:
            raise DriftError(differences)
        print(f"{_shown(target)}: up to date with {manifest.shown} ({len(rendered)} Dockerfiles)", file=out)
        return 0
    changes = write_builds(rendered, target)
    for rel in changes.added:
        print(f"added    {_shown(target / rel)}", file=out)
    for rel in changes.changed:
        print(f"changed  {_shown(target / rel)}", file=out)
    for rel in changes.removed:
        print(f"removed  {_shown(target / rel)}", file=out)
    if not changes.any:
        print(f"{_shown(target)}: already up to date ({len(rendered)} Dockerfiles)", file=out)
    return 0


def plan(
    manifest_path: str | None,
    images: Sequence[str] = (),
    dependents: bool = False,
    fmt: str = "text",
    registry: str | None = None,
    push: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """The build order, and per image what `build` (with `push`: `build --push`,
    which uses the registry as a cache) will do, and why."""
    if fmt not in plans.render_formats():
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(plans.render_formats())}")
    manifest = load_locked(manifest_path)
    the_plan = plans.make_plan(manifest, images, dependents, config.registry_override(registry) or manifest.registry)
    notes = None if fmt == "mermaid" else _actions(the_plan, err, push)
    if fmt == "json":
        out.write(plans.as_json(the_plan, notes))
    elif fmt == "mermaid":
        out.write(plans.as_mermaid(the_plan))
    else:
        out.write(plans.as_text(the_plan, notes))
    return 0


def _actions(the_plan: plans.Plan, err: TextIO, push: bool) -> dict[str, str] | None:
    """Per image: will it be built or is it up to date, and why: the same
    decision `build` makes (the registry is consulted only for `--push`, as
    build does). Needs the engine (to see what exists); without one the plan is
    shown without actions."""
    from .backends import open_backend
    from .builder import plan_actions
    from .errors import EngineError, RegistryError
    from .pusher import lookup_tags
    from .registry import open_registry

    try:
        backend = open_backend(timeout=10)
    except EngineError as exc:
        print(f"note: build/skip not shown: {exc}", file=err)
        return None
    manifest = the_plan.manifest
    remote = None
    if push:  # as build --push does: what the tags of single-platform images hold
        single = [n for n in the_plan.order if not the_plan.image(n).platforms]
        try:
            client = open_registry(the_plan.registry,
                                   insecure=config.insecure_from_env() | set(manifest.insecure_registries))
            remote = lookup_tags(client, {n: manifest.references(the_plan.image(n), the_plan.registry)
                                          for n in single})
        except RegistryError as exc:
            print(f"note: the registry was not consulted: {exc}", file=err)
    decided = plan_actions(backend, the_plan, render_all(manifest), the_plan.registry, remote=remote)
    return {key: action.reason for key, action in decided.actions.items()}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def build(
    manifest_path: str | None,
    images: Sequence[str] = (),
    *,
    push: bool = False,
    registry: str | None = None,
    keep_going: bool = False,
    report: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    no_cache: bool = False,
    dependents: bool = False,
    frozen: bool = False,
    reproducible: bool = False,
    expect_up_to_date: bool = False,
    sbom: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """build and build-all: render, verify artifacts, build in order, tag, push.
    expect_up_to_date: fail (exit 12) if anything had to be built or pushed."""
    from .artifacts import ArtifactStore
    from .backends import open_backend
    from .builder import Builder, BuildOptions
    from .provenance import provenance
    from .registry import open_registry
    from .runlock import engine_lock

    report_path = _fresh_report_path(report)
    console = Console(out)
    builder: Builder | None = None
    try:
        manifest = load_locked(manifest_path, frozen)
        settings = config.resolve(manifest, registry=registry, jobs=jobs)
        check_writable(settings.log_dir, "the build log directory")
        the_plan = plans.make_plan(manifest, images, dependents, settings.registry)
        rendered = render_all(manifest)
        write_builds(rendered, builds_dir(manifest))
        backend = open_backend(settings.backend)
        sbom_dir = ((report_path.parent if report_path else settings.log_dir.parent) / "sbom") if sbom else None
        options = BuildOptions(push=push, keep_going=keep_going, force=force, no_cache=no_cache,
                               reproducible=reproducible or frozen, sbom_dir=sbom_dir)
        store = ArtifactStore(settings.cache_dir, manifest_name=manifest.shown)
        builder = Builder(the_plan, rendered, backend, store, settings, options,
                          provenance(manifest.path, TEMPLATES_DIR), console,
                          open_registry(settings.registry, insecure=settings.insecure) if push else None,
                          exclusive=lambda: engine_lock(backend.where, console.info))
        result = builder.run()
    except (JavabaseError, KeyboardInterrupt) as exc:
        _report_stop(report_path, manifest_path, registry, push, builder, exc)
        raise
    code = _finish(result, report, console, push)
    undone = [r.name for r in result.results.values() if r.status in (Status.BUILT, Status.PUSHED)]
    if expect_up_to_date and undone:
        raise NotUpToDate(f"--expect-up-to-date: {', '.join(undone)} had to be built or pushed; the jobs before this "
                          "one did not build and push everything (see the table above)")
    return code


def _fresh_report_path(report: str | None) -> Path | None:
    """--report's path, with the previous run's report removed, so that a run that
    stops early never leaves an old `"ok": true` behind."""
    if not report:
        return None
    path = Path(report)
    check_writable(path.parent if str(path.parent) else Path("."), "the report's directory")
    remove(path, "the previous report")
    return path


def _report_stop(path: Path | None, manifest_path: str | None, registry: str | None, push: bool,
                 builder: Builder | None, exc: BaseException) -> None:
    """A true report of a run that stopped early: what each image reached, and why it stopped."""
    if path is None:
        return
    results = builder.results if builder is not None else {}
    shown = builder.manifest.shown if builder is not None else display_path(resolve_manifest(manifest_path))
    target = builder.settings.registry if builder is not None else (registry or "")
    message = "\n".join(line.strip() for line in exc.lines()) if isinstance(exc, JavabaseError) else "interrupted"
    code = exc.exit_code if isinstance(exc, JavabaseError) else Exit.INTERRUPTED
    Report(shown, target, push, results, error=message, exit_code=int(code)).write_json(path)


def push(
    manifest_path: str | None,
    images: Sequence[str] = (),
    *,
    registry: str | None = None,
    report: str | None = None,
    force: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Push every tag of images that were built (for this registry) before."""
    from .backends import open_backend
    from .builder import unit_tags
    from .pusher import Pusher, immutable_references
    from .registry import open_registry
    from .runlock import engine_lock

    _fresh_report_path(report)
    manifest = load_locked(manifest_path)
    settings = config.resolve(manifest, registry=registry)
    target = settings.registry
    chosen = [n for n in plans.make_plan(manifest, images, False, target).order if not images or n in images]
    backend = open_backend(settings.backend)
    the_plan = plans.make_plan(manifest, chosen, False, target)
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
                                        image_id=found.id, image=unit.name, platform=unit.platform)
    console = Console(out)
    console.set_names(list(results))
    immutable = immutable_references(manifest, chosen, target)
    the_report = Report(manifest.shown, target, True, results)
    with engine_lock(backend.where, console.info):
        registry_client = open_registry(target, insecure=settings.insecure)
        the_report.notes += Pusher(backend, registry_client, console, settings, force=force, immutable=immutable,
                                   platforms={n: manifest.images[n].platforms for n in chosen
                                              if manifest.images[n].platforms}).push_all(list(results.values()))
    return _finish(the_report, report, console, True)


def _finish(result: Report, report: str | None, console: Console, pushed: bool) -> int:
    console.info("")
    console.info(result.table().rstrip("\n"))
    if report:
        result.write_json(Path(report))
        console.info(f"report written to {report}")
    if not result.ok:
        failed = [r for r in result.results.values() if r.status == Status.FAILED]
        skipped = [r for r in result.results.values() if r.status == Status.SKIPPED]
        first = failed[0].reason if failed else ""
        raise BuildFailed(f"{len(failed)} image(s) failed, {len(skipped)} skipped"
                          + (f"; first failure: {failed[0].name}: {first}" if failed else "")
                          + (f"; full log: {failed[0].log_path}" if failed and failed[0].log_path else ""))
    if pushed:
        repositories = sorted({split_reference(ref)[0] for r in result.results.values() for ref in r.references})
        console.info(f"pushed to {result.registry}: " + ", ".join(repositories))
    return 0


def doctor(manifest_path: str | None, registry: str | None = None, out: TextIO = sys.stdout) -> int:
    """Check one registry the way a push will use it, one line per finding. The
    first thing to run when a push fails. Exit 6 when any check fails."""
    from .errors import RegistryError
    from .registry import open_registry

    path = resolve_manifest(manifest_path)
    manifest = load_manifest(path) if path.exists() or manifest_path else None
    host = config.registry_override(registry) or (manifest.registry if manifest else None)
    if host is None:
        raise UsageError("doctor needs --registry HOST (or a manifest that names one)")
    insecure = config.insecure_from_env() | set(manifest.insecure_registries if manifest else ())
    name = (manifest.repository(next(iter(manifest.images)), host).split("/", 1)[1]
            if manifest and manifest.images else "javabase/doctor")
    failed = False
    try:
        client = open_registry(host, insecure=insecure)
        status = client.ping()
        print(f"registry {host}: answers over {client.transport} (GET /v2/: HTTP {status})", file=out)
        who = client.credential
        print(f"credentials: {f'{who.username} from {who.source}' if who else 'none found (anonymous)'}", file=out)
        print(f"auth: {client.auth}", file=out)
    except RegistryError as exc:
        print(f"error: {exc}", file=out)
        return int(exc.exit_code)
    for what in ("pull", "push"):
        try:
            allowed = client.can_push(name) if what == "push" else client.tags(name) is not None
        except RegistryError as exc:
            allowed, why = False, str(exc)
        else:
            why = "" if allowed else "the registry did not start an upload"
        failed = failed or not allowed
        print(f"{what} on {name}: {'authorised' if allowed else 'refused: ' + why}", file=out)
    return int(Exit.REGISTRY) if failed else 0


def ci(manifest_path: str | None, fmt: str = "github", per: str = "image", output: str | None = None,
       check: bool = False, out: TextIO = sys.stdout) -> int:
    """Write the CI pipeline for the manifest (or --check a committed one)."""
    from . import pipeline
    from .files import write_atomically

    if fmt not in pipeline.FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(pipeline.FORMATS)}")
    if per not in pipeline.PER:
        raise UsageError(f"--per {per!r} is not one of: {', '.join(pipeline.PER)}")
    manifest = load_locked(manifest_path)
    the_plan = plans.make_plan(manifest, (), False, manifest.registry)
    text = pipeline.render(the_plan, fmt, per, manifest_path or DEFAULT_MANIFEST)
    if check:
        if not output:
            raise UsageError("ci --check needs --output FILE (the committed pipeline)")
        path = Path(output)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            what = "missing" if current is None else "differs from what the manifest generates"
            raise PipelineDrift([f"{output}: {what}"])
        print(f"{output}: up to date with {manifest.shown}", file=out)
        return 0
    if output:
        write_atomically(Path(output), text, "the pipeline")
        print(f"{output}: written ({len(the_plan.order)} images, {fmt}, one job per {per})", file=out)
    else:
        out.write(text)
    return 0


def save(manifest_path: str | None, images: Sequence[str], output: str, registry: str | None = None,
         out: TextIO = sys.stdout) -> int:
    """One archive with the selected images (default: all), every tag of each, that
    `docker load` reads, and javabase's index inside it."""
    from . import archive
    from .artifacts import Progress
    from .backends import open_backend
    from .builder import plan_actions
    from .decide import Reuse, Where
    from .pusher import immutable_references

    manifest = load_locked(manifest_path)
    settings = config.resolve(manifest, registry=registry)
    the_plan = plans.make_plan(manifest, images, False, settings.registry)
    chosen = list(images) or the_plan.order
    backend = open_backend(settings.backend)
    decided = plan_actions(backend, the_plan, render_all(manifest), settings.registry)
    keys = [unit.key for unit in the_plan.units if unit.name in chosen]
    stale = [f"{key} ({decided.actions[key].reason})" for key in keys
             if not (isinstance(decided.actions[key], Reuse) and decided.actions[key].where == Where.LOCAL)]  # type: ignore[union-attr]
    if stale:
        raise UsageError(f"not built on this engine with the current inputs: {'; '.join(stale)}; run `invoke build` "
                         "first. Nothing was written")
    entries = []
    for key in keys:
        name = key.partition("@")[0]
        image_id = decided.actions[key].image_id  # type: ignore[union-attr]
        found = next(i for candidates in decided.local.values() for i in candidates if i.id == image_id)
        for reference in decided.tags[key]:
            if reference not in found.tags:
                backend.tag(image_id, reference)
        immutable = sorted(immutable_references(manifest, [name], settings.registry)[name])
        ours = {k: v for k, v in found.labels.items() if k.startswith(("io.javabase.", "org.opencontainers.image."))}
        entries.append(archive.SavedEntry(key, tuple(decided.tags[key]), image_id, decided.inputs[key].digest,
                                          tuple(immutable), ours,
                                          tuple(manifest.references(manifest.images[name], settings.registry)),
                                          key.partition("@")[2] or None))
    progress = Progress()
    progress.start(Path(output).name, None)
    archive.write(backend, entries, Path(output), {"manifest": manifest.shown, "registry": settings.registry},
                  progress.advance)
    size = Path(output).stat().st_size
    progress.finish(f"{size / 1e6:.1f} MB written")
    for entry in entries:
        print(f"saved {entry.name} {entry.image_id[7:19]}: {', '.join(entry.references)}", file=out)
    print(f"{output}: {len(entries)} image(s), {size / 1e6:.1f} MB", file=out)
    return 0


def load(path: str, push: bool = False, registry: str | None = None, report: str | None = None,
         force: bool = False, out: TextIO = sys.stdout) -> int:
    """Verify an archive `save` wrote, load it, tag it (for --registry), and with
    --push push it with the usual checks. Needs no manifest."""
    from . import archive
    from .artifacts import Progress
    from .backends import open_backend
    from .pusher import Pusher
    from .registry import open_registry

    _fresh_report_path(report)
    source = Path(path)
    if not source.is_file():
        raise UsageError(f"{path}: no such archive")
    progress = Progress()
    progress.start(source.name, source.stat().st_size)
    entries = archive.verify(source, progress.advance)
    progress.finish(f"{len(entries)} image(s) verified")
    backend = open_backend()
    backend.load(source)
    target = config.registry_override(registry)
    results: dict[str, ImageResult] = {}
    for entry in entries:
        if backend.image(entry.image_id) is None:
            raise UsageError(f"{entry.name}: the engine did not load {entry.image_id}")
        references = list(archive.retarget(entry.references, target))
        for reference in references:
            backend.tag(entry.image_id, reference)
        results[entry.name] = ImageResult(entry.name, list(archive.retarget(entry.publish, target)),
                                          status=Status.UP_TO_DATE, image_id=entry.image_id,
                                          input_digest=entry.input_digest, image=entry.name.partition("@")[0],
                                          platform=entry.platform)
        print(f"loaded {entry.name} {entry.image_id[7:19]}: {', '.join(references)}", file=out)
    first = split_reference(entries[0].references[0])[0].split("/", 1)[0] if entries else ""
    host = target or first
    console = Console(out)
    console.set_names(list(results))
    the_report = Report(source.name, host, push, results)
    if push and results:
        settings = config.for_registry(host)
        immutable = {e.name.partition("@")[0]: frozenset(archive.retarget(e.immutable, target)) for e in entries}
        platforms: dict[str, tuple[str, ...]] = {}
        for entry in entries:
            if entry.platform:
                platforms[entry.name.partition("@")[0]] = (*platforms.get(entry.name.partition("@")[0], ()),
                                                           entry.platform)
        pusher = Pusher(backend, open_registry(host, insecure=settings.insecure), console, settings, force=force,
                        immutable=immutable, platforms=platforms)
        the_report.notes += pusher.push_all(list(results.values()))
    return _finish(the_report, report, console, push)


def prune(manifest_path: str | None, keep: int = 1, dry_run: bool = False, cache: bool = False,
          out: TextIO = sys.stdout) -> int:
    """Remove the images javabase built that no tag points to (beyond --keep per
    image), and with --cache bring the artifact cache under JAVABASE_CACHE_MAX."""
    from . import prune as pruning
    from .backends import open_backend

    if keep < 0:
        raise UsageError("--keep must be 0 or more")
    backend = open_backend()
    removals = pruning.plan_images(backend, keep)
    freed = sum(r.image.size for r in removals)
    verb = "would remove" if dry_run else "removing"
    for removal in removals:
        print(f"{verb} {removal.name} {removal.image.id[7:19]} ({removal.image.size / 1e6:.1f} MB): {removal.why}",
              file=out)
    problems = [] if dry_run else pruning.remove_images(backend, removals)
    for line in problems:
        print(line, file=out)
    print(f"images: {len(removals)} {'to remove' if dry_run else 'removed'}, about {freed / 1e6:.1f} MB "
          f"{'would be ' if dry_run else ''}freed (keeping {keep} untagged per image)", file=out)
    if cache:
        manifest = load_locked(manifest_path)
        settings = config.resolve(manifest)
        needed = {a.sha256 for image in manifest.images.values() for a in image.artifacts}
        doomed = pruning.plan_cache(settings.cache_dir, needed, pruning.cache_limit())
        for path, size in doomed:
            print(f"{verb} cache entry {path.name[:12]} ({size / 1e6:.1f} MB)", file=out)
            if not dry_run:
                path.unlink(missing_ok=True)
        print(f"cache: {len(doomed)} entr{'y' if len(doomed) == 1 else 'ies'} "
              f"{'to remove' if dry_run else 'removed'} (limit {pruning.cache_limit() / 1e9:.1f} GB)", file=out)
    return 0



def inspect(reference: str, manifest_path: str | None = None, fmt: str = "text", out: TextIO = sys.stdout) -> int:
    """What one image is: from its javabase labels (in this engine, or read from
    the registry), its manifest entry, and its SBOM's package count."""
    import json

    from .backends import open_backend
    from .inspection import as_text, describe

    if fmt not in ("text", "json"):
        raise UsageError(f"--format {fmt!r} is not one of: text, json")
    manifest = None
    with contextlib.suppress(JavabaseError):
        manifest = load_manifest(resolve_manifest(manifest_path))
    info = describe(open_backend(), reference, manifest)
    out.write(json.dumps(info, indent=2, sort_keys=True) + "\n" if fmt == "json" else as_text(info))
    return 0
