"""Shared by every stage: the seam between javabase and whatever builds images,
a protocol and the typed records that cross it. Nothing outside a backend module sees the
engine's own JSON; a second way of building (BuildKit, podman, a remote
builder) is one new module that implements `Backend`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LineSink = Callable[[str], None]

# How the history comment of a folded commit starts (javabase.build.backends.folding):
# its container ran the RUN as its entrypoint, so the engine records no CreatedBy.
FOLDED = "javabase folded: "


def last_step(created_by: str, comment: str) -> str:
    """The instruction that made a history entry (the engine's CreatedBy, the image
    config's `created_by`); for a folded commit, its comment, which names every
    instruction folded into it (javabase's LABEL and input digest among them)."""
    return comment if not created_by and comment.startswith(FOLDED) else created_by


@dataclass(frozen=True)
class LocalImage:
    """An image in the engine, as javabase needs to know it."""

    id: str
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0  # seconds since the epoch
    layers: tuple[str, ...] = ()  # diff IDs of its layers, base first
    last_step: str = ""  # the instruction that made it (its newest history entry: `last_step`), when asked for
    platform: str = ""  # OS/ARCH[/VARIANT], when inspected
    user: str = ""  # its USER, when inspected ("" is root)
    env: tuple[tuple[str, str], ...] = ()  # its ENV, when inspected
    workdir: str = ""  # its WORKDIR, when inspected
    layer_sizes: tuple[int, ...] = ()  # bytes each of `layers` holds in the engine (its diff), when asked for history
    size: int = 0  # bytes all its layers hold in the engine (inspect's Size), when inspected


@dataclass(frozen=True)
class BuildRequest:
    """One build: a context directory holding the Dockerfile and every file it adds."""

    context: Path
    build_args: Mapping[str, str]
    network: str  # "none", "default" (the engine's bridge network) or "host"
    no_cache: bool = False
    platform: str | None = None  # None: the engine's own


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    steps: int  # instructions the backend ran


@dataclass(frozen=True)
class Ran:
    """What a command did in a container of an image."""

    exit_code: int | None  # None: it did not end within its time limit and was killed
    stdout: str
    stderr: str


@dataclass(frozen=True)
class PathInfo:
    """A path in an image, as its tar header says (not followed if a symlink)."""

    kind: str  # "file", "directory", "symlink" or "other"
    mode: int  # permission bits (and setuid, setgid, sticky)
    uid: int
    gid: int
    link: str = ""  # a symlink's target
    text: bytes = b""  # a regular file's first bytes (up to the limit asked for)


class Credential(Protocol):
    """What a pull needs of a registry credential (publish.credentials.Credential
    is one): a user name and a password, or an identity token."""

    @property
    def username(self) -> str: ...

    @property
    def secret(self) -> str: ...

    @property
    def identity_token(self) -> bool: ...


class Backend(Protocol):
    """What javabase asks of a way of building. Every failure is a one-line
    EngineError (the engine itself) or StepError (this image's build or push)."""

    name: str
    where: str  # the engine's address: two runs on the same one share its tags

    @property
    def native(self) -> str:
        """The engine's own platform, OS/ARCH."""
        ...

    @property
    def version(self) -> str:
        """The engine's version, for provenance (e.g. "20.10.24")."""
        ...

    def build(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome: ...

    def run_probe(self, platform: str, program: bytes) -> str | None:
        """Build a throwaway image for `platform` whose one RUN step is `program`
        (javabase.build.emulation); None when it ran, else the engine's error."""
        ...

    def images(self, label: str) -> list[LocalImage]: ...

    def image(self, reference: str, history: bool = False) -> LocalImage | None: ...

    def tag(self, image_id: str, reference: str) -> None: ...

    def pull(self, reference: str, on_line: LineSink, credential: Credential | None = None) -> str:
        """Pull NAME@DIGEST; return the image ID it has in the engine."""
        ...

    def export(self, image_id: str, dest: Path) -> None: ...

    def save(self, references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        """`docker save` of several references (tags) into one archive."""
        ...

    def in_use(self) -> set[str]:
        """IDs of the images that containers (running or not) were made from."""
        ...

    def listed_layers(self) -> dict[str, tuple[str, ...]]:
        """Every image `docker images` lists (tagged, or untagged and the parent of
        none), by ID: the diff IDs of its layers, base first. Every layer the engine
        keeps for an image is in one of these."""
        ...

    def load(self, archive: Path) -> None: ...

    def remove(self, image_id: str, force: bool = True) -> None: ...

    def untag(self, reference: str) -> None: ...

    def run(self, image_id: str, command: Sequence[str], files: Mapping[str, bytes], timeout: float) -> Ran:
        """Run `command` (exec form, the image's entrypoint cleared) in a new
        container of the image: no network, as the image's own user, with its env
        and workdir, `files` (path -> content) put in first; the container is
        removed afterwards. A command that outlives `timeout` seconds is killed."""
        ...

    def path_info(self, image_id: str, path: str, limit: int) -> PathInfo | None:
        """What `path` is in the image (None: it does not exist), with the first
        `limit` bytes of a regular file; read from a container that is never started."""
        ...

    def cancel(self) -> None: ...
