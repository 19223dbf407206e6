"""`invoke update`: bring Temurin JRE items and pinned base digests up to date
from their publishers, then render and lock, so that `git diff` shows exactly
the bump. Everything is asked, downloaded and verified before anything is
written; any failure is one line and leaves every file as it was."""

from __future__ import annotations

import difflib
import json
import re
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from ..build.artifacts import ArtifactStore
from ..errors import ArtifactError, Behind, ManifestError, UpstreamError
from ..files import write_atomically
from ..manifest import eol
from ..manifest.eol import EOL_API
from ..manifest.load import display_path, load_manifest, parse_manifest
from ..manifest.model import Artifact, Manifest
from ..manifest.yamlsource import Located, load
from ..plan.render import builds_dir, read_tree, render_all, write_builds
from ..publish.registry import Registry, open_registry
from ..release import adoptium, signature, webapi, yamledit
from ..release import update as upd
from ..release.lock import (
    apply_lock,
    compute_lock,
    lock_path,
    platform_resolver,
    read_lock,
    registry_resolver,
    render_lock,
    write_lock,
)
from ..report import Progress
from ..settings import Environment
from .common import insecure, resolve_manifest


@dataclass(frozen=True)
class Flags:
    """update's command line: --image (repeatable), --major, --dry-run, --check, --api, --eol-api."""

    images: Sequence[str] = ()
    major: int | None = None
    dry_run: bool = False
    check: bool = False
    api: str | None = None
    eol_api: str = EOL_API  # "off": do not refresh the end-of-life table


@dataclass
class _Run:
    """One update run: the manifest as text and data, the clients, and what was found."""

    path: Path
    manifest: Manifest
    text: str
    doc: Located
    env: Environment
    config: upd.Config
    open_url: webapi.Opener
    resolve: Callable[[str], str]
    notes: list[str] = field(default_factory=list)


def update(manifest_path: str | None, flags: Flags, out: TextIO = sys.stdout, today: date | None = None) -> int:
    """Find what is behind; with --check raise Behind listing it; else download and
    verify the new tarballs, edit the manifest in place, lock and render (with
    --dry-run print the diff instead of writing). Raises UpstreamError (15),
    ArtifactError (4), RegistryError (6), UsageError (9), CannotWrite (11)."""
    run = _start(manifest_path, flags)
    day = today or date.today()
    chosen = upd.select(run.manifest, flags.images)
    found, run.notes = upd.items(run.manifest, run.doc, chosen, flags.major)
    bumps = _bumps(run, found)
    bases = upd.bases(run.manifest, run.doc, chosen) if flags.major is None else []
    moves = upd.moved(bases, run.resolve, read_lock(lock_path(run.manifest)))
    table = _eol_table(run, flags, day)
    run.notes += upd.eol_lines(bases, day, table)
    behind = [b.line() for b in bumps] + [m.line() for m in moves]
    if flags.check or not behind:
        for note in run.notes:
            print(f"note: {note}", file=out)
        if behind:
            raise Behind(behind)
        print(f"{run.manifest.shown}: up to date ({len(found)} JRE item(s), {len(bases)} outside base(s) checked)",
              file=out)
        return 0
    homes = _fetch_all(run, bumps, out) if not flags.dry_run else {}
    for line in ([b.line() for b in bumps] if flags.dry_run else []) + [m.line() for m in moves]:
        print(line, file=out)
    edits = [e for b in bumps for e in b.edits(homes.get(b.item.image))] + [e for m in moves for e in m.edits()]
    files = _outcome(run, yamledit.apply(run.text, edits))
    for note in run.notes:
        print(f"note: {note}", file=out)
    if flags.dry_run:
        out.write(_diff(run, files))
        print("--dry-run: nothing was written", file=out)
        return 0
    _write(run, files, out)
    return 0


def _start(manifest_path: str | None, flags: Flags) -> _Run:
    path = resolve_manifest(manifest_path)
    manifest = load_manifest(path)
    text = path.read_text(encoding="utf-8")
    doc = load(text, manifest.shown)
    env = Environment.read()
    allowed = insecure(manifest, env)

    def client(host: str) -> Registry:
        return open_registry(host, env, allowed)

    memo: dict[str, str] = {}
    plain = registry_resolver(manifest.mirrors.get("registry"), client)

    def resolve(reference: str) -> str:
        if reference not in memo:
            memo[reference] = plain(reference)
        return memo[reference]

    config = upd.config(doc, manifest.directory, flags.api)
    if config.key is not None:
        config.key.packets()  # a key that cannot be read fails now, before any request
    return _Run(path, manifest, text, doc, env, config, webapi.opener(env.proxies), resolve)


def _bumps(run: _Run, found: Sequence[upd.Item]) -> list[upd.Bump]:
    """Ask the API once per query; the items whose offer is newer."""
    what = f"the Adoptium API at {run.config.api}"

    def get(url: str) -> Any:
        return webapi.get_json(run.open_url, url, what, missing_ok=True)

    offers: dict[adoptium.Query, adoptium.Offer | None] = {}
    bumps = []
    for item in found:
        if item.query not in offers:
            offers[item.query], notes = adoptium.newest(get, run.config.api, item.query)
            run.notes += [f"{item.image}: {note}" for note in notes]
        bump, note = upd.compare(item, offers[item.query])
        run.notes += [note] if note else []
        bumps += [bump] if bump else []
    return bumps


def _eol_table(run: _Run, flags: Flags, day: date) -> eol.Table:
    """The end-of-life table: refreshed from flags.eol_api (kept in the cache unless
    --check or --dry-run), else the one checked last, saying why."""
    current = upd.current_table(run.env.cache_dir)
    if flags.eol_api == "off":
        return current
    try:
        fresh = upd.refresh_table(
            lambda url: webapi.get_json(run.open_url, url, "the end-of-life source"), flags.eol_api, day)
    except UpstreamError as exc:
        checked = (current if isinstance(current, Mapping) else json.loads(current.read_text()))["checked"]
        run.notes.append(f"the end-of-life table was not refreshed ({exc}); using the table checked {checked}")
        return current
    if not (flags.check or flags.dry_run):
        write_atomically(run.env.cache_dir / upd.EOL_CACHE, json.dumps(fresh, indent=2) + "\n", "the end-of-life "
                         "table")
    return fresh


class _Store(ArtifactStore):
    """The artifact cache, with messages that name the release being fetched."""

    def _where(self, artifact: Artifact) -> str:
        return artifact.key

    def _mismatch(self, artifact: Artifact, origin: str, actual: str) -> str:
        return (f"{artifact.key}: the API's sha256 is {artifact.sha256}, the file at {origin} has {actual}; nothing "
                "was changed (the download or the API's answer is not what Adoptium published)")


def _fetch_all(run: _Run, bumps: Sequence[upd.Bump], out: TextIO) -> dict[str, str]:
    """Download every new tarball once into the artifact cache, verified against the API's
    sha256 and (with a configured key) its signature. Returns each bumped image's home."""
    store = _Store(run.env.cache_dir, opener=run.open_url, progress=Progress(), cache_max=run.env.cache_max)
    homes = {}
    try:
        for bump in bumps:
            print(bump.line(), file=out)
            tops = set()
            for tarball in bump.item.tarballs:
                package = bump.offer.packages[tarball.architecture]
                what = f"{bump.offer.release_name} {tarball.platform or package.architecture} ({package.name})"
                fetched = store.fetch(Artifact(package.link, None, package.checksum, package.name, "/usr/java/", True,
                                               what, 0))
                checked = _signature(run, package, fetched.path, what)
                print(f"  {package.name}: sha256 verified{checked}", file=out)
                tops.add(_top(fetched.path, what))
            if len(tops) > 1:
                raise ArtifactError(f"{bump.item.image}: the platforms' tarballs unpack to different directories "
                                    f"({', '.join(sorted(tops))}), and the item has one `home`; nothing was changed")
            homes[bump.item.image] = tops.pop()
    finally:
        store.memo.save()
    return homes


UNSIGNED = ("signatures were not checked: no signing key is configured (update.adoptium.signing_key and "
            "fingerprint in the manifest; README: Keeping JREs current)")


def _signature(run: _Run, package: adoptium.Package, path: Path, what: str) -> str:
    """Check the tarball's detached signature against the configured key; the words to print."""
    key = run.config.key
    if key is None:
        run.notes += [] if UNSIGNED in run.notes else [UNSIGNED]
        return ""
    if package.signature_link is None:
        run.notes.append(f"{what}: Adoptium publishes no signature for it; its signature was not checked")
        return ", no signature published"
    body = webapi.get_bytes(run.open_url, package.signature_link, f"the signature of {what}")
    signature.verify(path, body or b"", key, what, run.env.process)
    return f", signature verified ({key.spaced})"


def _top(path: Path, what: str) -> str:
    """The directory a JRE tarball unpacks to: its first entry's top component."""
    try:
        with tarfile.open(path, "r|*") as archive:
            first = next(iter(archive), None)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"{what}: is not a readable tar archive ({exc}); nothing was changed") from None
    top = first.name.removeprefix("./").split("/")[0] if first is not None else ""
    if not top or top in (".", "..") or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", top):
        raise ArtifactError(f"{what}: does not unpack into one directory (first entry {top!r}); nothing was changed")
    return top


@dataclass(frozen=True)
class _Files:
    """What update writes: the manifest's new text, the lock and the rendered Dockerfiles."""

    manifest: str
    lock: Mapping[str, Any]
    rendered: Mapping[str, str]


def _outcome(run: _Run, text: str) -> _Files:
    """Parse the edited manifest, lock it and render it, all in memory."""
    try:
        edited = parse_manifest(text, run.manifest.shown, run.path)
    except ManifestError as exc:
        raise UpstreamError(f"the API's answer makes an invalid manifest ({exc.lines()[0]}); nothing was "
                            "changed") from None
    lock = compute_lock(edited, run.resolve, per_platform=platform_resolver(
        edited.mirrors.get("registry"), lambda host: open_registry(host, run.env, insecure(edited, run.env))),
        warn=lambda line: run.notes.append(line))
    return _Files(text, lock, render_all(apply_lock(edited, lock)))


def _diff(run: _Run, files: _Files) -> str:
    lock_file = lock_path(run.manifest)
    old_lock = lock_file.read_text(encoding="utf-8") if lock_file.is_file() else ""
    pairs = [(display_path(run.path), run.text, files.manifest),
             (display_path(lock_file), old_lock, render_lock(files.lock))]
    target = builds_dir(run.manifest)
    current = read_tree(target)
    for rel in sorted(set(current) | set(files.rendered)):
        pairs.append((display_path(target / rel), current.get(rel, ""), files.rendered.get(rel, "")))
    return "".join("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{name}", f"b/{name}"))
                   for name, old, new in pairs if old != new)


def _write(run: _Run, files: _Files, out: TextIO) -> None:
    """builds/, then the lock, then the manifest: each written atomically."""
    target = builds_dir(run.manifest)
    changes = write_builds(files.rendered, target)
    lock_file = lock_path(run.manifest)
    write_lock(lock_file, files.lock)
    if files.manifest != run.text:
        write_atomically(run.path, files.manifest, "the manifest")
    changed = len(changes.added) + len(changes.changed) + len(changes.removed)
    print(f"{run.manifest.shown}: updated; {display_path(lock_file)}: written; {display_path(target)}: "
          f"{changed} Dockerfile(s) changed", file=out)
