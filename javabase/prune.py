"""A clean engine and a bounded cache.

Images: what javabase built (its own LABEL step is the image's last step, so an
image someone built FROM a javabase image is never one) that no tag points to
any more, beyond the `keep` newest per image name; removed children first,
without force, so the engine itself refuses an image a container uses. The
untagged intermediate images of each build go with it (the engine removes an
image's untagged parents). Never an image with a tag, never a container's.

Cache: at most JAVABASE_CACHE_MAX bytes (default 5 GB), least recently used
entries first, never one the current manifest needs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .backends.base import Backend, LocalImage
from .errors import JavabaseError
from .labels import INPUT_LABEL

TITLE_LABEL = "org.opencontainers.image.title"
DEFAULT_CACHE_MAX = 5 * 1000**3


@dataclass(frozen=True)
class Removal:
    image: LocalImage
    name: str
    why: str


def javabase_built(image: LocalImage) -> bool:
    """Its last step is javabase's LABEL naming its own input digest."""
    digest = image.labels.get(INPUT_LABEL, "")
    return bool(digest) and "LABEL" in image.last_step and digest in image.last_step


def plan_images(backend: Backend, keep: int) -> list[Removal]:
    """What `prune` removes: untagged images javabase built, beyond the `keep`
    newest per image name, that no container uses. Newest first (children
    before their parents)."""
    in_use = backend.in_use()
    untagged = [i for i in backend.images(INPUT_LABEL) if not i.tags and i.id not in in_use]
    inspected = [found for i in untagged if (found := backend.image(i.id, history=True)) is not None]
    by_name: dict[str, list[LocalImage]] = {}
    for image in inspected:
        if javabase_built(image) and not image.tags:
            by_name.setdefault(image.labels.get(TITLE_LABEL, "?"), []).append(image)
    sizes = {i.id: i.size for i in untagged}
    out = []
    for name, images in sorted(by_name.items()):
        for image in sorted(images, key=lambda i: (i.created, i.id), reverse=True)[keep:]:
            out.append(Removal(LocalImage(image.id, image.tags, image.labels, image.created, size=sizes[image.id]),
                               name, "no tag points to it"))
    return sorted(out, key=lambda r: (r.image.created, r.image.id), reverse=True)


def remove_images(backend: Backend, removals: Iterable[Removal]) -> list[str]:
    """Remove them, without force; return one line per image that could not go."""
    problems = []
    for removal in removals:
        try:
            backend.remove(removal.image.id, force=False)
        except JavabaseError as exc:
            problems.append(f"{removal.name} {removal.image.id[7:19]}: not removed ({exc})")
    return problems


# -- the artifact cache ------------------------------------------------------------------
def cache_limit(env: dict[str, str] | os._Environ[str] = os.environ) -> int:
    value = env.get("JAVABASE_CACHE_MAX", "")
    units = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
    try:
        if value and value[-1].lower() in units:
            return int(float(value[:-1]) * units[value[-1].lower()])
        return int(value) if value else DEFAULT_CACHE_MAX
    except ValueError:
        from .errors import UsageError

        raise UsageError(f"JAVABASE_CACHE_MAX={value!r} is not a size (bytes, or a number with k, m, g or t)") from None


def touch(cache: Path, sha256s: Iterable[str]) -> None:
    """Record that these entries were used now (in <cache>/used.json, not in the
    files' times, which the DigestMemo fingerprints)."""
    path = cache / "used.json"
    used = _used(path)
    now = time.time()
    used.update(dict.fromkeys(sha256s, now))
    try:
        tmp = path.with_name(f".used.json.{os.getpid()}")
        tmp.write_text(json.dumps(used))
        os.replace(tmp, path)
    except OSError:
        pass  # costs only the accuracy of the LRU order


def _used(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def plan_cache(cache: Path, needed: set[str], limit: int) -> list[tuple[Path, int]]:
    """Entries to delete, least recently used first, until the cache fits `limit`;
    never one in `needed` (sha256s the current manifest uses)."""
    entries = [(p, p.stat().st_size) for p in (cache / "sha256").glob("*") if p.is_file()] \
        if (cache / "sha256").is_dir() else []
    total = sum(size for _, size in entries)
    used = _used(cache / "used.json")
    out = []
    for path, size in sorted(entries, key=lambda e: (used.get(e[0].name, 0.0), e[0].name)):
        if total <= limit:
            break
        if path.name in needed:
            continue
        out.append((path, size))
        total -= size
    return out
