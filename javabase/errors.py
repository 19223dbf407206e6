"""One error hierarchy. Every error a user can cause carries a one-line message
and an exit code; the CLI layer prints the message and exits, with no traceback
unless --debug is given."""

from __future__ import annotations

from dataclasses import dataclass


class JavabaseError(Exception):
    """Base of every error meant for a person. `str(err)` is what they see."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True, order=True)
class Problem:
    """One finding in a manifest: where it is and what to do about it."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ManifestError(JavabaseError):
    """The manifest is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.key, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class DriftError(JavabaseError):
    """Committed Dockerfiles differ from what the manifest renders."""

    exit_code = 3

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        super().__init__("\n".join(differences))

    def lines(self) -> list[str]:
        return [
            *self.differences,
            f"{len(self.differences)} file(s) in builds/ are stale; run `invoke render` and commit the result",
        ]


class SelectionError(JavabaseError):
    """--image names an image the manifest does not have."""

    exit_code = 2


class ArtifactError(JavabaseError):
    """An artifact could not be fetched, or its sha256 does not match."""

    exit_code = 4


class EngineError(JavabaseError):
    """The Docker engine cannot be reached or refused a request."""

    exit_code = 5


class RegistryError(JavabaseError):
    """The registry cannot be reached or answered with an error."""

    exit_code = 6


class BuildFailed(JavabaseError):
    """One or more images failed to build or push; the report has the details."""

    exit_code = 7


class RenderError(JavabaseError):
    """A template failed to render (undefined variable, syntax error)."""

    exit_code = 3


class LockError(JavabaseError):
    """The lock file is missing, unreadable, or disagrees with the manifest (--frozen)."""

    exit_code = 8

    def __init__(self, header: str, differences: list[str] | None = None) -> None:
        self.header = header
        self.differences = differences or []
        super().__init__("\n".join([header, *self.differences]))

    def lines(self) -> list[str]:
        return [self.header, *(f"  {d}" for d in self.differences)]
