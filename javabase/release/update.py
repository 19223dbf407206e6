"""`invoke update`: what is behind its publisher, and the edits that bring it up
to date. Temurin version items against Adoptium's API (adoptium.py), outside
bases against their registry (the lock's resolver), and bases against the
end-of-life table (manifest/eol.py, refreshed from endoflife.date's API when it
can be reached). Finding items and bases, comparing and making the edits is
pure; the clients (get_json, resolve) are parameters. Downloading, signature
checks and writing are the command's (cli/update.py)."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import LockError, ManifestError, RegistryError, UpstreamError, UsageError
from ..manifest import eol
from ..manifest import references as refs
from ..manifest.expand import derive_major
from ..manifest.model import Manifest
from ..manifest.yamlsource import Located, Path_, format_key
from .adoptium import ARCHITECTURES, DEFAULT_API, FILE_RE, OPERATING_SYSTEMS, TEMURIN_URL_RE, Offer, Query, version_key
from .signature import SigningKey, normal_fingerprint
from .yamledit import Edit

EOL_CACHE = "eol.json"


@dataclass(frozen=True)
class Tarball:
    """One of an item's files: its platform (None: the item's own url), URL, sha256 and Adoptium architecture."""

    platform: str | None
    url: str
    sha256: str
    architecture: str

    def path(self, item: Path_) -> Path_:
        return (*item, "platforms", self.platform) if self.platform else item


@dataclass(frozen=True)
class Item:
    """A version item `update` keeps current: the image it makes and what to ask Adoptium."""

    image: str
    path: Path_  # ('images', 'jre', 'versions', 2)
    version: str
    query: Query
    tarballs: tuple[Tarball, ...]
    has_home: bool
    tags: tuple[tuple[Path_, str], ...]  # the item's own tags and immutable_tags, by where they are


@dataclass(frozen=True)
class Bump:
    """An item and the newer release that replaces its tarballs."""

    item: Item
    offer: Offer

    def line(self) -> str:
        return f"{self.item.image}: {self.item.version} -> {self.offer.version} ({self.offer.release_name})"

    def edits(self, home: str | None) -> list[Edit]:
        """version, home (when the item has one), url and sha256 per platform, and the
        item's own tags that spell the old version."""
        item, offer = self.item, self.offer
        out = [Edit((*item.path, "version"), offer.version)]
        if item.has_home:
            out.append(Edit((*item.path, "home"), home or offer.home(item.query.image_type)))
        for tarball in item.tarballs:
            package = offer.packages[tarball.architecture]
            out += [Edit((*tarball.path(item.path), "url"), package.link),
                    Edit((*tarball.path(item.path), "sha256"), package.checksum)]
        out += [Edit(path, tag.replace(item.version, offer.version)) for path, tag in item.tags]
        return out


@dataclass(frozen=True)
class Base:
    """An entry's outside `from`: the images built on it, the reference, its tag and its pinned digest."""

    entry: str
    images: tuple[str, ...]
    reference: str
    tagged: str | None  # the reference without its digest; None when it names no tag
    pinned: str | None


@dataclass(frozen=True)
class Moved:
    """A base whose tag now points to another digest than the manifest's pin (or the lock's)."""

    base: Base
    old: str | None
    new: str

    def line(self) -> str:
        where = "" if self.base.pinned else " (in the lock)"
        return f"{', '.join(self.base.images)}: base {self.base.tagged} moved{where}: {self.old} -> {self.new}"

    def edits(self) -> list[Edit]:
        if self.base.pinned is None:
            return []  # a tag without a digest: only the lock records the digest
        return [Edit(("images", self.base.entry, "from"), f"{self.base.tagged}@{self.new}")]


@dataclass(frozen=True)
class Config:
    """update's settings: the API to ask and the key new tarballs must be signed with."""

    api: str
    key: SigningKey | None


def config(doc: Located, directory: Path, api_flag: str | None) -> Config:
    """From the manifest's `update.adoptium` (validated by the schema) and --api.
    Raises ManifestError when the key's file is outside the manifest's directory."""
    section = doc.data.get("update", {}).get("adoptium", {}) if isinstance(doc.data.get("update"), dict) else {}
    api = api_flag or section.get("api") or DEFAULT_API
    if not api.startswith(("http://", "https://")):
        raise UsageError(f"--api {api!r} is not an http(s) URL")
    if not section.get("signing_key"):
        return Config(api, None)
    where = ("update", "adoptium", "signing_key")
    path = (directory / section["signing_key"]).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise ManifestError([doc.problem(where, f"{section['signing_key']!r} leaves the manifest's directory; put "
                                                "the key next to the manifest (or below it)")])
    return Config(api, SigningKey(path, section["signing_key"], normal_fingerprint(section["fingerprint"])))


def select(manifest: Manifest, images: Sequence[str]) -> set[str]:
    """The images --image names (all when none). Raises UsageError for a name the manifest does not make."""
    unknown = [name for name in images if name not in manifest.images]
    if unknown:
        raise UsageError(f"--image {', '.join(unknown)}: not an image of {manifest.shown}; its images are "
                         f"{', '.join(sorted(manifest.images))}")
    return set(images) or set(manifest.images)


def items(manifest: Manifest, doc: Located, chosen: set[str], major: int | None) -> tuple[list[Item], list[str]]:
    """The Temurin version items among the chosen images (of one major with --major), and notes
    on items that name Adoptium but cannot be updated."""
    by_key = {image.key: image.name for image in manifest.images.values()}
    found: list[Item] = []
    notes: list[str] = []
    for entry, raw in (doc.data.get("images") or {}).items():
        versions = raw.get("versions") if isinstance(raw, dict) else None
        for index, item in enumerate(versions if isinstance(versions, list) else []):
            path: Path_ = ("images", entry, "versions", index)
            name = by_key.get(format_key(path))
            if name is None or name not in chosen or not isinstance(item, dict):
                continue
            made = _item(name, path, item, raw, notes)
            if made is not None and (major is None or made.query.major == major):
                found.append(made)
    return found, notes


def _files(item: dict[str, Any]) -> list[tuple[str | None, Any, Any]]:
    files = item.get("platforms")
    if isinstance(files, dict):
        return [(platform, f.get("url"), f.get("sha256")) for platform, f in files.items() if isinstance(f, dict)]
    return [(None, item.get("url"), item.get("sha256"))]


def _item(name: str, path: Path_, item: dict[str, Any], entry: dict[str, Any], notes: list[str]) -> Item | None:
    files = _files(item)
    urls = [url for _, url, _ in files]
    source = item.get("source")
    if source == "pinned" or (source is None and not all(isinstance(u, str) and TEMURIN_URL_RE.match(u)
                                                          for u in urls)):
        return None
    if not all(isinstance(u, str) for u in urls):
        notes.append(f"{name}: has source: adoptium and a local `path`; not updated (give it a `url`)")
        return None
    named = [FILE_RE.match(posixpath.basename(unquote(urlsplit(u).path))) for u in urls]
    info = next((m for m in named if m), None)
    c_lib = item.get("c_lib")
    os_name = OPERATING_SYSTEMS[c_lib] if c_lib in OPERATING_SYSTEMS else info.group("os") if info else "linux"
    tarballs = []
    for (platform, url, sha), match in zip(files, named, strict=True):
        arch = ARCHITECTURES.get(platform) if platform else match.group("arch") if match else "x64"
        if arch is None:
            notes.append(f"{name}: Adoptium names no architecture for platform {platform}; not updated")
            return None
        tarballs.append(Tarball(platform, str(url), str(sha).lower(), arch))
    image_type = item.get("image_type") or (info.group("image_type") if info else "jre")
    major = int(str(item.get("major") or derive_major(item["version"])))
    query = Query(major, image_type, os_name, tuple(dict.fromkeys(t.architecture for t in tarballs)))
    tags = tuple(((*path, key, i), tag) for key in ("tags", "immutable_tags")
                 for i, tag in enumerate(item.get(key) or []) if isinstance(tag, str) and item["version"] in tag)
    return Item(name, path, item["version"], query, tuple(tarballs), "home" in item, tags)


def compare(item: Item, offer: Offer | None) -> tuple[Bump | None, str | None]:
    """(the bump when the offer is newer than the item, a note when it is neither newer nor the same)."""
    if offer is None:
        return None, None
    if all(offer.packages[t.architecture].checksum == t.sha256 for t in item.tarballs):
        return None, None
    current = version_key(item.version)
    if current is None or offer.key > current:
        return Bump(item, offer), None
    return None, (f"{item.image}: the newest release the API offers, {offer.release_name}, is not newer than "
                  f"{item.version} and its sha256 differs from the manifest's; not changed")


def bases(manifest: Manifest, doc: Located, chosen: set[str]) -> list[Base]:
    """Outside bases of the chosen images, one per entry, as written in the manifest."""
    out = []
    raw_images = doc.data.get("images") or {}
    for entry, raw in raw_images.items():
        images = tuple(sorted(n for n, i in manifest.images.items() if i.entry == entry and n in chosen))
        written = raw.get("from") if isinstance(raw, dict) else None
        first = manifest.images.get(images[0]) if images else None
        if first is None or first.parent is not None or written != first.from_ref or written == "scratch":
            continue  # none chosen, built FROM an image of the manifest, or a `from` with placeholders
        parsed = refs.parse_outside(written)
        if isinstance(parsed, str):
            continue
        tagged = written.split("@", 1)[0] if parsed.tag else None
        out.append(Base(entry, images, written, tagged, parsed.digest))
    return out


def moved(found: Sequence[Base], resolve: Callable[[str], str], lock: Mapping[str, Any] | None) -> list[Moved]:
    """Bases whose tag now resolves to another digest than the manifest pins (or,
    unpinned, than the lock records). resolve(NAME:TAG) -> digest. Raises
    RegistryError when the registry cannot be read or no longer has the tag."""
    out = []
    locked = (lock or {}).get("images", {})
    for base in found:
        if base.tagged is None:
            continue
        old = base.pinned or next((locked[n].get("base_digest") for n in base.images if n in locked
                                   and locked[n].get("from") == base.reference), None)
        if old is None:
            continue
        try:
            new = resolve(base.tagged)
        except LockError as exc:
            raise RegistryError(f"{base.entry}: cannot follow {base.tagged}: {exc}; nothing was changed") from None
        if new != old:
            out.append(Moved(base, old, new))
    return out


def eol_lines(found: Sequence[Base], today: date, table: eol.Table) -> list[str]:
    """One line per base whose distribution release is past its end of life, with what replaces it."""
    out = []
    for base in found:
        past = eol.past_end_of_life(base.reference, today, table)
        if past is None:
            continue
        release, newer = past
        then = (f"{newer.distribution} {newer.release} replaces it (supported until {newer.eol})" if newer
                else f"the table knows no supported release of {release.distribution}")
        out.append(f"{', '.join(base.images)}: {base.reference.split('@')[0]} is {release.distribution} "
                   f"{release.release}, past its end of life since {release.eol}; {then}")
    return out


def current_table(cache_dir: Path) -> eol.Table:
    """The end-of-life table checked last: a refreshed copy in the cache, or javabase's own."""
    packaged = eol.table(eol.TABLE)
    try:
        cached = json.loads((cache_dir / EOL_CACHE).read_text(encoding="utf-8"))
        eol.releases(cached)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return eol.TABLE
    return cached if str(cached.get("checked", "")) > str(packaged.get("checked", "")) else eol.TABLE


def refresh_table(get_json: Callable[[str], Any], api: str, today: date) -> dict[str, Any]:
    """The end-of-life table from endoflife.date's API (GET /api/<product>.json) for
    each distribution javabase's table has, in eol.json's format. Debian's end is
    its LTS end (extendedSupport), as the table records. Raises UpstreamError."""
    distributions, sources = {}, {}
    for name in eol.table(eol.TABLE)["distributions"]:
        url = f"{api.rstrip('/')}/api/{name}.json"
        cycles = get_json(url)
        if not isinstance(cycles, list) or not all(isinstance(c, dict) and "cycle" in c for c in cycles):
            raise UpstreamError(f"{url} is not a list of release cycles")
        rows = [_row(name, c) for c in cycles]
        distributions[name] = sorted((r for r in rows if r is not None),
                                     key=lambda r: [int(p) if p.isdigit() else 0 for p in r["release"].split(".")])
        sources[name] = url
    return {"checked": today.isoformat(), "sources": sources, "distributions": distributions}


def _row(distribution: str, cycle: dict[str, Any]) -> dict[str, str] | None:
    end = cycle.get("extendedSupport") if distribution == "debian" else None
    end = end if isinstance(end, str) else cycle.get("eol")
    try:
        date.fromisoformat(str(end))
    except ValueError:
        return None  # no date announced yet (eol: false) or not a date
    row = {"release": str(cycle["cycle"]), "eol": str(end)}
    if isinstance(cycle.get("codename"), str) and cycle["codename"]:
        row["codename"] = cycle["codename"].lower()
    return row
