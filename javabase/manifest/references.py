"""Docker reference grammar: image names, tags, registries and FROM references.
Pure string checks, shared by the manifest and the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass

COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{COMPONENT}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REGISTRY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_OUTSIDE_RE = re.compile(
    rf"^(?:(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?=.))?(?P<path>{COMPONENT}(?:/{COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>[^@]+))?$"
)


@dataclass(frozen=True)
class OutsideRef:
    """An image from outside the manifest, e.g. alpine:3.20@sha256:..."""

    registry: str | None
    path: str
    tag: str | None
    digest: str | None


def looks_outside(ref: str) -> bool:
    """A FROM value names an outside image when it has a tag, digest or path."""
    return any(ch in ref for ch in ":@/")


def parse_outside(ref: str) -> OutsideRef | str:
    """Parse an outside reference; on failure return the reason as a string."""
    match = _OUTSIDE_RE.match(ref)
    if not match:
        return "is not a valid image reference; write NAME:TAG or NAME:TAG@sha256:<64 hex>"
    host, path, tag, digest = match.group("host", "path", "tag", "digest")
    if host is not None and not ("." in host or ":" in host or host == "localhost"):
        # "library/alpine:3" - the first component is a path, not a host
        path, host = f"{host}/{path}", None
    if digest is not None and not DIGEST_RE.match(digest):
        return f"has digest {digest!r}, which is not sha256: followed by 64 lower-case hex digits"
    if tag is None and digest is None:
        return "has neither a tag nor a digest; pin it, e.g. NAME:TAG@sha256:<64 hex>"
    return OutsideRef(host, path, tag, digest)


def split_reference(reference: str) -> tuple[str, str]:
    """registry:5000/ns/name:tag -> (registry:5000/ns/name, tag); no tag means latest."""
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, "latest"


def platform_reference(reference: str, platform: str) -> str:
    """The reference of one platform of a multi-platform image: its tag with
    -OS-ARCH[-VARIANT] appended (r/jre25:25, linux/arm64 -> r/jre25:25-linux-arm64).
    The engine tags a foreign platform's image so; per-platform CI jobs push it so."""
    return f"{reference}-{platform.replace('/', '-')}"


def split_repository(repository: str) -> tuple[str, str]:
    """registry:5000/ns/name -> (registry:5000, ns/name): the host and the name the registry API uses."""
    host, _, path = repository.partition("/")
    return host, path


def repository_name(reference: str) -> str:
    """registry:5000/ns/name:tag -> ns/name: the name the registry API uses for a reference's repository."""
    return split_repository(split_reference(reference)[0])[1]
