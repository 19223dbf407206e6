"""One error hierarchy, and every exit code in one table.

Every error a user can cause carries a one-line message and an exit code; the
CLI layer prints the message and exits, with no traceback unless --debug is
given. The README's exit-code table is checked against EXIT_CODES by a test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum


class Exit(IntEnum):
    """Each code means one thing."""

    OK = 0
    COMMAND_LINE = 1  # Invoke's own: javabase never returns it
    MANIFEST = 2
    DRIFT = 3
    ARTIFACT = 4
    ENGINE = 5
    REGISTRY = 6
    IMAGE_FAILED = 7
    LOCK = 8
    USAGE = 9
    TEMPLATE = 10
    CANNOT_WRITE = 11
    NOT_UP_TO_DATE = 12
    ARCHIVE = 13
    BEHIND = 14
    UPSTREAM = 15
    UNVERIFIED = 16
    INTERNAL = 70
    INTERRUPTED = 130


EXIT_CODES: dict[Exit, str] = {
    Exit.OK: "everything asked for was done",
    Exit.COMMAND_LINE: "Invoke itself did not understand the command line (an unknown task or flag, a flag without "
                       "its value), or `invoke` found no `tasks.py` here or above: run it in the checkout, or use the "
                       "installed `javabase` program, which works from any directory",
    Exit.MANIFEST: "the manifest is invalid (every problem is listed, with file:line and key)",
    Exit.DRIFT: "a generated file (`builds/` with `render --check`, a pipeline with `ci --check`) differs from what "
                "the manifest generates",
    Exit.ARTIFACT: "an artifact could not be downloaded or read, or its sha256 or signature does not match",
    Exit.ENGINE: "the Docker engine cannot be reached, stopped answering, or refused a request",
    Exit.REGISTRY: "the registry cannot be reached or read, refused the credentials, or holds an immutable tag",
    Exit.IMAGE_FAILED: "an image failed to build or push, or what landed is not what was built "
                       "(the table and `--report` say which and why)",
    Exit.LOCK: "the lock file is missing, unreadable or disagrees with the manifest (`--frozen`, `lock --check`), "
               "or `--frozen` has no reproducible time (no SOURCE_DATE_EPOCH, no commit)",
    Exit.USAGE: "the command line asks for something that does not exist: an unknown `--image`, `--format` or "
                "registry, or an image to push or save that is not built with the current inputs",
    Exit.TEMPLATE: "a template failed to render (syntax error, undefined variable, missing template)",
    Exit.CANNOT_WRITE: "a file or directory javabase must write cannot be written (permissions, full disk)",
    Exit.NOT_UP_TO_DATE: "`--expect-up-to-date`: an image had to be built or a tag pushed; `publish`: a "
                         "platform is not in the registry (the pipeline's jobs before this one left work undone)",
    Exit.ARCHIVE: "an archive given to `load` is damaged, truncated or not one `invoke save` wrote; nothing was "
                  "loaded or tagged",
    Exit.BEHIND: "`update --check`: a JRE or a base is behind its publisher (each is listed); `invoke update` "
                 "brings it up to date",
    Exit.UPSTREAM: "a publisher's API (`update`: Adoptium's) cannot be reached or answered something that is not "
                   "its format; nothing was changed",
    Exit.UNVERIFIED: "`verify`: an image's signature, provenance or SBOM is missing, does not verify with the key, "
                     "or its provenance records other inputs than the manifest gives",
    Exit.INTERNAL: "a bug in javabase: run again with `--debug` and report the traceback",
    Exit.INTERRUPTED: "interrupted (Ctrl-C): running builds were cancelled, nothing of theirs was tagged",
}


class JavabaseError(Exception):
    """Base of every error meant for a person. `str(err)` is what they see.
    Not raised itself: each subclass has its own exit code."""

    exit_code: Exit = Exit.INTERNAL

    def lines(self) -> list[str]:
        """What a person is shown: one line (text quoted from elsewhere, such as
        tarfile's several-line reasons, has its line breaks made spaces)."""
        return [one_line(str(self))]


def one_line(text: str) -> str:
    """`text` with each line break (and the spaces around it) made one space."""
    return re.sub(r"\s*\n\s*", " ", text.strip())


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

    exit_code = Exit.MANIFEST

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.key, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class DriftError(JavabaseError):
    """Committed Dockerfiles differ from what the manifest renders."""

    exit_code = Exit.DRIFT

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        super().__init__("\n".join(differences))

    def lines(self) -> list[str]:
        return [*self.differences, self.advice]

    @property
    def advice(self) -> str:
        return f"{len(self.differences)} file(s) in builds/ are stale; run `invoke render` and commit the result"


class PipelineDrift(DriftError):
    """A committed CI pipeline differs from what `invoke ci` generates."""

    @property
    def advice(self) -> str:
        return "the pipeline is stale; run `invoke ci` with the same options and commit the result"


class UsageError(JavabaseError):
    """The command line names something that does not exist (an image, a format,
    a registry), or asks for an image that was not built."""

    exit_code = Exit.USAGE


class ArtifactError(JavabaseError):
    """An artifact could not be fetched, or its sha256 does not match."""

    exit_code = Exit.ARTIFACT


class EngineError(JavabaseError):
    """The Docker engine cannot be reached or refused a request."""

    exit_code = Exit.ENGINE


class RegistryError(JavabaseError):
    """The registry cannot be reached or answered with an error."""

    exit_code = Exit.REGISTRY


class StepError(JavabaseError):
    """One image's build or push failed; the message names the step. Caught per
    image: the run goes on with the others and ends with BuildFailed."""

    exit_code = Exit.IMAGE_FAILED


class BuildFailed(JavabaseError):
    """One or more images failed to build or push; the report has the details."""

    exit_code = Exit.IMAGE_FAILED


class NotUpToDate(JavabaseError):
    """--expect-up-to-date found work to do."""

    exit_code = Exit.NOT_UP_TO_DATE


class ArchiveError(JavabaseError):
    """An archive to load is damaged, truncated or not javabase's."""

    exit_code = Exit.ARCHIVE


class Behind(JavabaseError):
    """`update --check`: something is behind its publisher; one line per item."""

    exit_code = Exit.BEHIND

    def __init__(self, items: list[str]) -> None:
        self.items = items
        super().__init__("\n".join(items))

    def lines(self) -> list[str]:
        return [*self.items, f"{len(self.items)} item(s) behind; run `invoke update` and commit the result"]


class UpstreamError(JavabaseError):
    """A publisher's API (Adoptium's) cannot be reached or answered garbage."""

    exit_code = Exit.UPSTREAM


class RenderError(JavabaseError):
    """A template failed to render (undefined variable, syntax error)."""

    exit_code = Exit.TEMPLATE


class CannotWrite(JavabaseError):
    """A file or directory javabase must write cannot be written."""

    exit_code = Exit.CANNOT_WRITE

    @classmethod
    def at(cls, path: object, exc: OSError, what: str) -> CannotWrite:
        reason = exc.strerror or type(exc).__name__
        return cls(f"cannot write {what} {path}: {reason}; fix the permissions or free some space, then run again")


class Interrupted(JavabaseError):
    """The run was interrupted (Ctrl-C, SIGINT): running builds were cancelled."""

    exit_code = Exit.INTERRUPTED


class Unverified(JavabaseError):
    """verify found a check that does not hold."""

    exit_code = Exit.UNVERIFIED


class LockError(JavabaseError):
    """The lock file is missing, unreadable, or disagrees with the manifest (--frozen)."""

    exit_code = Exit.LOCK

    def __init__(self, header: str, differences: list[str] | None = None) -> None:
        self.header = header
        self.differences = differences or []
        super().__init__("\n".join([header, *self.differences]))

    def lines(self) -> list[str]:
        return [self.header, *(f"  {d}" for d in self.differences)]
