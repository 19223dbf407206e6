"""The commands that read the manifest and write what it defines: validate,
render, lock, plan and ci."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TextIO

from ..decide.prepare import plan_actions, registry_references
from ..decide.rules import Trust
from ..errors import DriftError, EngineError, LockError, PipelineDrift, UsageError
from ..files import write_atomically
from ..manifest import eol
from ..manifest.load import display_path, load_manifest
from ..plan import order, pipeline, views
from ..plan.render import builds_dir, check_builds, render_all, write_builds
from ..publish.pusher import lookup_tags
from ..publish.registry import Registry, Remote, open_registry
from ..release.lock import (
    LOCK_NAME,
    compute_lock,
    differences,
    lock_path,
    platform_resolver,
    read_lock,
    registry_resolver,
    write_lock,
)
from ..release.signing import load_public_key
from ..release.verify import trust_in
from ..settings import Environment
from .common import (
    DEFAULT_MANIFEST,
    insecure,
    load_locked,
    open_engine,
    registry_override,
    resolve_manifest,
)


def validate(manifest_path: str | None, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
             today: date | None = None) -> int:
    """Schema and semantic checks; every problem at once (ManifestError). A base
    past its end of life (on `today`, default: today) is a warning on `err`."""
    manifest = load_manifest(resolve_manifest(manifest_path))
    for line in eol.warnings(manifest, today or date.today()):
        print(f"warning: {line}", file=err)
    print(f"{manifest.shown}: ok, {len(manifest.images)} images", file=out)
    return 0


def render(manifest_path: str | None, check: bool = False, out: TextIO = sys.stdout) -> int:
    """Write builds/ (atomically), or with check raise DriftError listing every file that differs."""
    manifest = load_locked(manifest_path)
    rendered = render_all(manifest)
    target = builds_dir(manifest)
    if check:
        differences = check_builds(rendered, target)
        if differences:
            raise DriftError(differences)
        print(f"{display_path(target)}: up to date with {manifest.shown} ({len(rendered)} Dockerfiles)", file=out)
        return 0
    changes = write_builds(rendered, target)
    for word, paths in (("added   ", changes.added), ("changed ", changes.changed), ("removed ", changes.removed)):
        for rel in paths:
            print(f"{word} {display_path(target / rel)}", file=out)
    if not changes.any:
        print(f"{display_path(target)}: already up to date ({len(rendered)} Dockerfiles)", file=out)
    return 0


def lock(manifest_path: str | None, check: bool = False, out: TextIO = sys.stdout) -> int:
    """Resolve outside FROM references to digests and write images.lock.json;
    with check, raise LockError listing every difference (resolving nothing)."""
    manifest = load_manifest(resolve_manifest(manifest_path))
    path = lock_path(manifest)
    if check:
        existing = read_lock(path)
        if existing is None:
            raise LockError(f"{manifest.shown}: no {LOCK_NAME}; run `invoke lock`")
        stale = differences(manifest, existing)
        if stale:
            raise LockError(f"{LOCK_NAME} disagrees with {manifest.shown}:", stale)
        print(f"{display_path(path)}: up to date with {manifest.shown}", file=out)
        return 0
    env = Environment.read()
    allowed = insecure(manifest, env)
    # The environment's credential is for the team's registry, not for the bases' (Docker Hub, a mirror).
    ours = frozenset({registry_override(None, env) or manifest.registry})

    def client(host: str) -> Registry:
        return open_registry(host, env, allowed, ours)

    mirror = manifest.mirrors.get("registry")
    data = compute_lock(manifest, registry_resolver(mirror, client), per_platform=platform_resolver(mirror, client),
                        warn=lambda line: print(f"note: {line}", file=out))
    changed = write_lock(path, data)
    for name, entry in sorted(data["images"].items()):
        if entry["base_digest"]:
            print(f"{name}: {entry['from'].split('@')[0]} -> {entry['base_digest']}", file=out)
    print(f"{display_path(path)}: {'written' if changed else 'already up to date'} ({len(data['images'])} images)",
          file=out)
    return 0


def plan(manifest_path: str | None, images: Sequence[str] = (), dependents: bool = False, fmt: str = "text",
         registry: str | None = None, push: bool = False, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The build order, and per image what `build` (with `push`: `build --push`,
    which uses the registry as a cache) will do, and why."""
    if fmt not in views.FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(views.FORMATS)}")
    manifest = load_locked(manifest_path)
    env = Environment.read()
    the_plan = order.make_plan(manifest, images, dependents, registry_override(registry, env) or manifest.registry)
    notes = None if fmt == "mermaid" else _actions(the_plan, env, err, push)
    if fmt == "json":
        out.write(views.as_json(the_plan, notes))
    elif fmt == "mermaid":
        out.write(views.as_mermaid(the_plan))
    else:
        out.write(views.as_text(the_plan, notes))
    return 0


def _actions(the_plan: order.Plan, env: Environment, err: TextIO, push: bool) -> dict[str, str] | None:
    """Per image: will it be built or is it up to date, and why: the same
    decision `build` makes (the registry is consulted only for `--push`, as
    build does). Needs the engine (to see what exists); without one the plan is
    shown without actions. With `push`, a registry that cannot be read raises
    RegistryError (exit 6), as `build --push` does, before the engine is asked."""
    remote, trust = _registry_view(the_plan, env) if push else (None, None)
    try:
        backend = open_engine(timeout=10)
    except EngineError as exc:
        print(f"note: build/skip not shown: {exc}", file=err)
        return None
    manifest = the_plan.manifest
    decided = plan_actions(backend, the_plan, render_all(manifest), the_plan.registry, remote=remote, trust=trust)
    return {key: action.reason for key, action in decided.actions.items()}


def _registry_view(the_plan: order.Plan, env: Environment) -> tuple[dict[str, list[tuple[str, Remote | None]]],
                                                                     Trust | None]:
    """What `build --push` looks up first: every tag of every unit (a platform's
    manifest in the index under a tag, or under its per-platform tag), and with
    signing.public_key whether an image there verifies. Raises RegistryError when
    the registry cannot be read."""
    manifest = the_plan.manifest
    client = open_registry(the_plan.registry, env, insecure(manifest, env), frozenset({the_plan.registry}))
    remote = lookup_tags(client, {u.key: registry_references(the_plan, u, the_plan.registry) for u in the_plan.units},
                         {u.key: u.platform for u in the_plan.units if u.platform})
    trust = trust_in(client, load_public_key(manifest.signing_key)) if manifest.signing_key is not None else None
    return remote, trust


def ci(manifest_path: str | None, fmt: str = "github", per: str | None = None, output: str | None = None,
       check: bool = False, out: TextIO = sys.stdout, job: str = "build", cron: str = pipeline.DEFAULT_CRON) -> int:
    """Write the CI pipeline for the manifest, or the scheduled update job (job
    update or update-check), or with check raise PipelineDrift when the committed
    one (`output`, default pipeline.COMMITTED next to the manifest) differs."""
    if fmt not in pipeline.FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(pipeline.FORMATS)}")
    if per is not None and per not in pipeline.PER:
        raise UsageError(f"--per {per!r} is not one of: {', '.join(pipeline.PER)}")
    if job not in pipeline.JOBS:
        raise UsageError(f"--job {job!r} is not one of: {', '.join(pipeline.JOBS)}")
    if not pipeline.CRON_RE.match(cron):
        raise UsageError(f"--cron {cron!r} is not a cron expression of five fields (minute hour day month weekday)")
    manifest = load_locked(manifest_path)
    the_plan = order.make_plan(manifest, (), False, manifest.registry)
    if check and not output:
        output = display_path(manifest.directory / pipeline.COMMITTED[(fmt, job)])
    committed = Path(output).read_text(encoding="utf-8") if check and output and Path(output).is_file() else None
    per = per or pipeline.committed_per(committed or "") or "image"
    text = (pipeline.render(the_plan, fmt, per, manifest_path or DEFAULT_MANIFEST) if job == "build"
            else pipeline.scheduled(the_plan, fmt, job, manifest_path or DEFAULT_MANIFEST, cron))
    if check and output:
        if committed != text:
            what = "missing" if committed is None else "differs from what the manifest generates"
            raise PipelineDrift([f"{output}: {what}"])
        print(f"{output}: up to date with {manifest.shown}", file=out)
        return 0
    if output:
        write_atomically(Path(output), text, "the pipeline")
        what = f"one job per {per}" if job == "build" else f"scheduled {job} job, cron '{cron}'"
        print(f"{output}: written ({len(the_plan.order)} images, {fmt}, {what})", file=out)
    else:
        out.write(text)
    return 0
