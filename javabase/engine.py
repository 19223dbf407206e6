"""Shared by every stage: the seam between javabase and whatever builds images,
a protocol and the typed records that cross it. Nothing outside a backend module sees the
engine's own JSON; a second way of building (BuildKit, podman, a remote
builder) is one new module that implements `Backend`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class LocalImage:
    """An image in the engine, as javabase needs to know it."""

    id: str
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0  # seconds since the epoch
    layers: tuple[str, ...] = ()  # diff IDs of its layers, base first
    last_step: str = ""  # the instruction that made it (its newest history entry), when asked for
    platform: str = ""  # OS/ARCH[/VARIANT], when inspected
    layer_sizes: tuple[int, ...] = ()  # bytes each of `layers` holds in the engine (its diff), when asked for history


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

    def cancel(self) -> None: ...
