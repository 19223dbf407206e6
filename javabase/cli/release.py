"""The commands around a release: save and load (a release as one verified
file), prune (a clean engine and cache) and inspect (what one image is)."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric import ec

from ..build.cache import CacheLock, plan_cache
from ..decide.inputs import compute_inputs
from ..decide.labels import built_by
from ..decide.prepare import Decided, plan_actions
from ..decide.rules import Reuse, Where
from ..engine import Backend
from ..errors import JavabaseError, RegistryError, Unverified, UsageError
from ..manifest.load import load_manifest
from ..manifest.model import Manifest
from ..manifest.references import split_reference
from ..plan import order
from ..plan.order import Unit
from ..plan.render import render_all
from ..publish import registry as registries
from ..publish.oci import digest_of
from ..publish.pusher import Pusher, immutable_references, index_platforms
from ..release import archive, carried, inspection
from ..release import prune as pruning
from ..release.signing import load_public_key
from ..release.verify import check_signature, verify_image
from ..report import Console, ImageResult, Progress, Report, Status
from ..settings import Environment, Settings
from .common import (
    finish,
    fresh_report_path,
    insecure,
    load_locked,
    open_engine,
    open_registry,
    registry_override,
    resolve_manifest,
    run_settings,
    settings_for,
    stopped_report,
)


def save(manifest_path: str | None, images: Sequence[str], output: str, registry: str | None = None,
         out: TextIO = sys.stdout) -> int:
    """One archive with the selected images (default: all), every tag of each, that
    `docker load` reads, and javabase's index inside it (with signing.public_key:
    what the registry holds of each image, signed). Raises UsageError when an
    image is not built with the current inputs (nothing is written)."""
    manifest = load_locked(manifest_path)
    settings = run_settings(manifest, registry=registry)
    the_plan = order.make_plan(manifest, images, False, settings.registry)
    chosen = list(images) or the_plan.order
    backend = open_engine(settings)
    decided = plan_actions(backend, the_plan, render_all(manifest), settings.registry)
    keys = [unit.key for unit in the_plan.units if unit.name in chosen]
    entries = [_saved_entry(backend, manifest, decided, key, settings.registry) for key in _built_here(decided, keys)]
    if manifest.signing_key is not None:
        entries = _with_signatures(entries, load_public_key(manifest.signing_key), settings, out)
    progress = Progress(verb="save")
    progress.start(Path(output).name, None)
    archive.write(backend, entries, Path(output), {"manifest": manifest.shown, "registry": settings.registry},
                  progress.advance)
    size = Path(output).stat().st_size
    progress.finish(f"{size / 1e6:.1f} MB written")
    for entry in entries:
        print(f"saved {entry.name} {entry.image_id[7:19]}: {', '.join(entry.references)}", file=out)
    print(f"{output}: {len(entries)} image(s), {size / 1e6:.1f} MB", file=out)
    return 0


def _built_here(decided: Decided, keys: list[str]) -> list[str]:
    """`keys`, when every one is an image this engine has with the current inputs."""
    stale = [f"{key} ({action.reason})" for key in keys
             if not (isinstance(action := decided.actions[key], Reuse) and action.where == Where.LOCAL)]
    if stale:
        raise UsageError(f"not built on this engine with the current inputs: {'; '.join(stale)}; run `invoke build` "
                         "first. Nothing was written")
    return keys


def _saved_entry(backend: Backend, manifest: Manifest, decided: Decided, key: str, registry: str
                 ) -> archive.SavedEntry:
    """The archive's index entry of one unit, with every tag of it in the engine."""
    name, _, platform = key.partition("@")
    action = decided.actions[key]
    found = decided.local_image(action.image_id) if isinstance(action, Reuse) else None
    if found is None:
        raise UsageError(f"{key}: not built on this engine; run `invoke build` first. Nothing was written")
    for reference in decided.tags[key]:
        if reference not in found.tags:
            backend.tag(found.id, reference)
    immutable = sorted(immutable_references(manifest, [name], registry)[name])
    ours = {k: v for k, v in found.labels.items() if k.startswith(("io.javabase.", "org.opencontainers.image."))}
    return archive.SavedEntry(key, tuple(decided.tags[key]), found.id, decided.inputs[key].digest, tuple(immutable),
                              ours, tuple(manifest.references(manifest.images[name], registry)), platform or None)


def _with_signatures(entries: list[archive.SavedEntry], public: ec.EllipticCurvePublicKey, settings: Settings,
                     out: TextIO) -> list[archive.SavedEntry]:
    """The entries with what the registry holds of each image, read through its
    first tag (javabase.release.carried): its manifest and index, and the
    signatures, provenance and SBOM that refer to them. A line per image says
    what was found; an unreadable registry is a line too, and the archive is
    written without them (`load --key` refuses it)."""
    with_signatures = []
    try:
        client = open_registry(settings.registry, settings)
        for entry in entries:
            found = carried.find(client, entry.publish[0], entry.image_id, public)
            kinds = sorted({a.artifact.kind for a in found.artifacts if not a.of_index}) if found else []
            if found is not None:
                entry = replace(entry, manifest=found.manifest, index=found.index, attached=found.artifacts)
            with_signatures.append(entry)
            print(f"signed {entry.name}: " + (
                f"saved {digest_of(found.manifest)[:19]} with its {', '.join(kinds)}" if found and "sig" in kinds
                else f"no signature that verifies with signing.public_key under {entry.publish[0]}" if found
                else f"not saved: {entry.publish[0]} does not hold this image (push it with --sign first)"),
                file=out)
    except RegistryError as exc:
        print(f"signatures: not saved, registry {settings.registry} cannot be read ({exc})", file=out)
        return entries
    return with_signatures


def load(path: str, push: bool = False, registry: str | None = None, report: str | None = None,
         overwrite_immutable: bool = False, key: str | None = None, out: TextIO = sys.stdout) -> int:
    """Verify an archive `save` wrote, load it, tag it (for --registry), and with
    --push push it with the usual checks. Needs no manifest. Raises ArchiveError
    (nothing loaded) when the archive is damaged. With `key` (the team's public
    key, PEM) every image must carry a saved cosign signature that verifies with
    it, else Unverified (exit 16) and nothing is loaded; with --push what was
    saved with them (signatures, provenance, SBOM) goes along to the registry
    (javabase.release.carried). A report on every exit path."""
    report_path = fresh_report_path(report)
    console = Console(out)
    the_report = Report(Path(path).name, registry or "", push, {})
    try:
        source = Path(path)
        if not source.is_file():
            raise UsageError(f"{path}: no such archive")
        public = load_public_key(Path(key)) if key else None
        backend = open_engine()
        entries = _load_verified(backend, source, public, out)
        target = registry_override(registry, Environment.read())
        the_report.results = _tag_loaded(backend, entries, target, out)
        the_report.registry = target or (split_reference(entries[0].references[0])[0].split("/", 1)[0]
                                         if entries else "")
        console.set_names(list(the_report.results))
        if push and the_report.results:
            the_report.notes += _push_loaded(backend, entries, list(the_report.results.values()),
                                             the_report.registry, target, console, overwrite_immutable,
                                             public)
    except (JavabaseError, KeyboardInterrupt) as exc:
        stopped_report(report_path, the_report, exc)
        raise
    return finish(the_report, report, console, push)


def _load_verified(backend: Backend, source: Path, public: ec.EllipticCurvePublicKey | None,
                   out: TextIO) -> list[archive.SavedEntry]:
    """Load into the engine exactly the verified bytes of the images the index
    lists, and with `public` only when every one of them is signed with it."""
    progress = Progress(verb="check")
    progress.start(source.name, source.stat().st_size)
    with tempfile.TemporaryDirectory(prefix="javabase-load-") as work:
        verified = Path(work) / "verified.tar"
        entries = archive.prepare_load(source, verified, progress.advance)
        progress.finish(f"{len(entries)} image(s) verified")
        if public is not None:
            _check_signed(entries, public, source, out)
        backend.load(verified)
    return entries


def _check_signed(entries: list[archive.SavedEntry], public: ec.EllipticCurvePublicKey, source: Path,
                  out: TextIO) -> None:
    """A line per image; Unverified, before anything is loaded, when one is not signed with `public`."""
    checks = [(entry, carried.check(entry, public)) for entry in entries]
    for entry, check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {entry.name} {entry.image_id[7:19]}: {check.detail}", file=out)
    failed = [(entry, check) for entry, check in checks if not check.ok]
    if failed:
        entry, check = failed[0]
        raise Unverified(f"{source}: {len(failed)} of {len(checks)} image(s) are not signed with the key; first: "
                         f"{entry.name}: {check.detail}. Nothing was loaded")


def _tag_loaded(backend: Backend, entries: list[archive.SavedEntry], target: str | None,
                out: TextIO) -> dict[str, ImageResult]:
    """Tag each loaded image with its references (under `target` when given)."""
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
    return results


def _push_loaded(backend: Backend, entries: list[archive.SavedEntry], results: list[ImageResult], host: str,
                 target: str | None, console: Console, overwrite_immutable: bool,
                 public: ec.EllipticCurvePublicKey | None) -> list[str]:
    settings = settings_for(host, named=target is not None)
    immutable = {e.name.partition("@")[0]: frozenset(archive.retarget(e.immutable, target)) for e in entries}
    platforms: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        if entry.platform:
            image = entry.name.partition("@")[0]
            platforms[image] = (*platforms.get(image, ()), entry.platform)
    pusher = Pusher(backend, open_registry(host, settings, console.info), console, settings,
                    overwrite_immutable=overwrite_immutable, immutable=immutable,
                    platforms=platforms)
    notes = pusher.push_all(results)
    if public is not None:
        notes += carried.carry(pusher, results, entries, public)
    return notes


def prune(manifest_path: str | None, keep: int = 1, dry_run: bool = False, cache: bool = False,
          out: TextIO = sys.stdout) -> int:
    """Remove the images javabase built that no tag points to (beyond --keep per
    image), and with --cache bring the artifact cache under JAVABASE_CACHE_MAX."""
    if keep < 0:
        raise UsageError("--keep must be 0 or more")
    backend = open_engine()
    removals = pruning.plan_images(backend, keep)
    freed = sum(r.frees for r in removals)
    verb = "would remove" if dry_run else "removing"
    for removal in removals:
        print(f"{verb} {removal.name} {removal.image.id[7:19]} (frees {removal.frees / 1e6:.1f} MB): {removal.why}",
              file=out)
    problems = [] if dry_run else pruning.remove_images(backend, removals)
    for line in problems:
        print(line, file=out)
    print(f"images: {len(removals)} {'to remove' if dry_run else 'removed'}, about {freed / 1e6:.1f} MB "
          f"{'would be ' if dry_run else ''}freed (keeping {keep} untagged per image)", file=out)
    if cache:
        _prune_cache(load_locked(manifest_path), dry_run, out)
    return 0


def _prune_cache(manifest: Manifest, dry_run: bool, out: TextIO) -> None:
    env = Environment.read()
    needed = {a.sha256 for image in manifest.images.values() for a in image.artifacts}
    lock = CacheLock(env.cache_dir)
    try:
        with lock.exclusive() as alone:
            if not alone and not dry_run:
                print("cache: another run is using it; nothing removed (run prune again when it is done)", file=out)
                return
            doomed = plan_cache(env.cache_dir, needed, env.cache_max)
            verb = "would remove" if dry_run else "removing"
            for path, size in doomed:
                print(f"{verb} cache entry {path.name[:12]} ({size / 1e6:.1f} MB)", file=out)
                if not dry_run:
                    path.unlink(missing_ok=True)
    finally:
        lock.release()
    print(f"cache: {len(doomed)} entr{'y' if len(doomed) == 1 else 'ies'} "
          f"{'to remove' if dry_run else 'removed'} (limit {env.cache_max / 1e9:.1f} GB)", file=out)


def inspect(reference: str, manifest_path: str | None = None, fmt: str = "text", out: TextIO = sys.stdout) -> int:
    """What one image is: from its javabase labels (in this engine, or read from
    the registry), which manifest built it, its SBOM's package count, what refers
    to it; the manifest at hand (its entry's line, its signing.public_key and the
    checks `verify` makes) only when it is the one that built the image."""
    if fmt not in ("text", "json"):
        raise UsageError(f"--format {fmt!r} is not one of: text, json")
    manifest = None
    with contextlib.suppress(JavabaseError):
        manifest = load_manifest(resolve_manifest(manifest_path))
    env = Environment.read()
    allowed = insecure(manifest, env)
    ours = frozenset({registry_override(None, env) or (manifest.registry if manifest else "")})
    public = load_public_key(manifest.signing_key) if manifest is not None and manifest.signing_key else None
    info = inspection.describe(open_engine(), reference, manifest,
                               lambda host: registries.open_registry(host, env, allowed, ours), public)
    out.write(json.dumps(info, indent=2, sort_keys=True) + "\n" if fmt == "json" else inspection.as_text(info))
    return 0


def verify(reference: str, key: str | None = None, manifest_path: str | None = None,
           out: TextIO = sys.stdout) -> int:
    """Check what the registry holds under `reference` with the team's public key
    (--key, else the manifest's signing.public_key): the signature of the tag's
    manifest (an index's too), and per image (per platform) its signature, its
    SLSA provenance and the inputs it records against what the manifest gives
    today, and its SBOM. One line per check; Unverified (exit 16) when one fails."""
    env = Environment.read()
    manifest = None
    with contextlib.suppress(JavabaseError):
        manifest = load_locked(manifest_path)
    public = _verify_key(key, manifest)
    repository, tag = split_reference(reference)
    host, _, name = repository.partition("/")
    team = registry_override(None, env) or (manifest.registry if manifest else "")
    client = registries.open_registry(host, env, insecure(manifest, env), frozenset({team}))
    there = client.manifest(name, tag)
    if there is None:
        raise UsageError(f"{reference}: not in the registry")
    checks = [check_signature(client, name, there.digest, public)] if there.config_digest is None else []
    targets = [(p, d) for p, d, _ in index_platforms(there.body)] if there.config_digest is None \
        else [("", there.digest)]
    for platform, digest in targets:
        expected = _expected_input(client, name, digest, platform, manifest)
        checks += verify_image(client, name, digest, public, expected, f"{platform} " if platform else "")
    print(f"{reference}: {there.digest}" + (f" (an index of {', '.join(p for p, _ in targets)})" if targets[0][0]
                                            else ""), file=out)
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.what}: {check.detail}", file=out)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise Unverified(f"{reference}: {len(failed)} of {len(checks)} checks failed; first: {failed[0].what}: "
                         f"{failed[0].detail}")
    return 0


def _verify_key(key: str | None, manifest: Manifest | None) -> ec.EllipticCurvePublicKey:
    if key:
        return load_public_key(Path(key))
    if manifest is not None and manifest.signing_key is not None:
        return load_public_key(manifest.signing_key)
    raise UsageError("verify needs the team's public key: --key FILE, or signing.public_key in the manifest")


def _expected_input(client: registries.Registry, name: str, digest: str, platform: str,
                    manifest: Manifest | None) -> str | None:
    """The input digest the manifest gives today for the image at `digest`, when
    the manifest is at hand and is the one that built it (labels.built_by: not
    merely one with an image of the same name)."""
    there = client.manifest(name, digest)
    config = client.image_config(name, there.config_digest) if there and there.config_digest else None
    image = built_by(manifest, config.labels) if manifest is not None and config is not None else None
    if manifest is None or image is None:
        return None
    units = order.make_plan(manifest).units  # an image's inputs include its parent's
    key = Unit(image.name, platform or None).key
    return compute_inputs(manifest, units, render_all(manifest))[key].digest if key in {u.key for u in units} \
        else None
