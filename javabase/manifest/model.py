"""The manifest as data: frozen records of every image after defaults are merged
and versions expanded. Pure; built by javabase.manifest.load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit


def redacted(url: str) -> str:
    """A URL as javabase shows and labels it: without a user name or password,
    and with the values of its query taken out (a presigned URL's signature is
    a secret): https://host/f.tgz?X-Amz-Signature=<redacted>."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"{host}:{parts.port}" if parts.port else host) if "@" in parts.netloc else parts.netloc
    query = "&".join(f"{key}=<redacted>" if value else key
                     for key, value in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class Artifact:
    """A file verified by sha256 that goes into an image's build context."""

    url: str | None
    path: Path | None
    sha256: str
    filename: str
    dest: str
    unpack: bool
    key: str
    line: int
    platform: str | None = None  # a per-platform variant: used only when building for that platform
    certificate: bool = False  # a PEM file of `certificates:`, installed by the templates' certificates step

    @property
    def origin(self) -> str:
        """Where it comes from, for people and labels: the URL redacted, or the path."""
        return redacted(self.url) if self.url is not None else str(self.path)

    @property
    def alias(self) -> str:
        """What a certificate file is called in the trust stores: javabase-<file name without extension>
        (a bundle's certificates get -1, -2, ... after it)."""
        stem = self.filename.rsplit(".", 1)[0] if "." in self.filename else self.filename
        return f"javabase-{stem}"


@dataclass(frozen=True)
class Account:
    """The non-root user an image runs as (`user: {name, uid, ...}`), created by
    the templates with this fixed UID and GID when the base does not have it."""

    name: str
    uid: int
    group: str
    gid: int
    home: str

    @property
    def user(self) -> str:
        """The USER instruction's value: numeric, so that a runtime can tell it is not root."""
        return f"{self.uid}:{self.gid}"


@dataclass(frozen=True)
class ImageTest:
    """One declared test (`tests:`), run in a container of a freshly built image
    before any tag moves. Exactly one kind: a command (`command`), a file
    (`file`) or the image's metadata (`metadata`). Patterns are Python regular
    expressions searched for (re.search, multi-line)."""

    name: str
    key: str  # where it is declared, e.g. images.jre.tests[0]
    line: int
    command: tuple[str, ...] | None = None  # exec form; the image's entrypoint is not used
    exit_code: int = 0
    stdout: tuple[str, ...] = ()  # each must be found
    stderr: tuple[str, ...] = ()
    excluded_stdout: tuple[str, ...] = ()  # none may be found
    excluded_stderr: tuple[str, ...] = ()
    timeout: int = 120  # seconds a command may take
    file: str | None = None  # an absolute path in the image
    exists: bool = True
    mode: int | None = None  # permission bits, e.g. 0o644
    owner: str | None = None  # UID:GID
    contains: tuple[str, ...] = ()  # patterns the file's text must hold
    metadata: bool = False
    user: str | None = None  # the image's USER, exactly
    env: tuple[tuple[str, str], ...] = ()  # variables the image must set to these values
    workdir: str | None = None

    @property
    def kind(self) -> str:
        return "command" if self.command is not None else "file" if self.file is not None else "metadata"


@dataclass(frozen=True)
class Image:
    """One image to build, after defaults are merged and versions expanded."""

    name: str
    entry: str
    key: str
    line: int
    from_ref: str
    parent: str | None
    template: str
    description: str | None
    version: str | None
    packages: tuple[str, ...]
    artifacts: tuple[Artifact, ...]
    env: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    workdir: str | None
    user: str | None
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    run: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...]
    network: bool | str  # False, True (the engine's default network) or "host"
    tags: tuple[str, ...]
    immutable_tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # empty: the engine's own platform, a single-platform image
    account: Account | None = None  # `user:` as a mapping: created by the template, USER is its UID:GID
    fonts: bool = False  # the image must have fontconfig and a font (checked while building)
    font_packages: tuple[str, ...] = ()  # what the template's package manager installs for them
    tests: tuple[ImageTest, ...] = ()
    from_line: int = 0  # the line of its `from`

    @property
    def context_files(self) -> tuple[Artifact, ...]:
        """One artifact per file name, as the Dockerfile adds them: a multi-platform
        image has a file per platform under one name, added once."""
        first: dict[str, Artifact] = {}
        for artifact in self.artifacts:
            if not artifact.certificate:  # certificates go in through the CA step, not an ADD
                first.setdefault(artifact.filename, artifact)
        return tuple(first.values())

    def artifacts_for(self, platform: str | None) -> tuple[Artifact, ...]:
        """The artifacts a build for `platform` puts in its context."""
        return tuple(a for a in self.artifacts if a.platform is None or a.platform == platform)

    @property
    def network_mode(self) -> str:
        """The build's network: "none" unless it installs packages (its own or its
        fonts') or asks for it ("default": the engine's bridge network), "host" only
        when the manifest says so."""
        if self.network == "host":
            return "host"
        return "default" if self.network or self.packages or self.font_packages else "none"

    @property
    def certificates(self) -> tuple[Artifact, ...]:
        """Its own `certificates:` (those of defaults, for an image built FROM outside the manifest)."""
        return tuple(a for a in self.artifacts if a.certificate)


@dataclass(frozen=True)
class Manifest:
    """The whole manifest: where it came from and every image, in file order."""

    path: Path
    shown: str
    registry: str
    namespace: str | None
    source: str | None
    mirrors: Mapping[str, str]
    images: Mapping[str, Image]
    insecure_registries: tuple[str, ...] = ()
    templates: tuple[Path, ...] = ()  # where its templates are looked up, first match wins
    signing_key: Path | None = None  # signing.public_key: the team's public key, resolved inside its directory
    ci_runners: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # ci.runners: CI -> platform -> label

    @property
    def directory(self) -> Path:
        return self.path.parent

    def repository(self, image: Image | str, registry: str | None = None) -> str:
        name = image if isinstance(image, str) else image.name
        parts = [registry or self.registry]
        if self.namespace:
            parts.append(self.namespace)
        parts.append(name)
        return "/".join(parts)

    def references(self, image: Image, registry: str | None = None) -> list[str]:
        repo = self.repository(image, registry)
        return [f"{repo}:{tag}" for tag in image.tags]

    def lineage(self, image: Image) -> list[Image]:
        """The image's ancestors in this manifest, root first, then the image."""
        chain = [image]
        while chain[0].parent is not None and chain[0].parent in self.images and len(chain) <= len(self.images):
            chain.insert(0, self.images[chain[0].parent])
        return chain

    def trusted(self, image: Image) -> list[tuple[Image, Artifact]]:
        """Every certificate javabase puts into the image or one of its ancestors,
        with the image that brings it, root first."""
        return [(owner, cert) for owner in self.lineage(image) for cert in owner.certificates]
