"""Runs the tests an image declares (`tests:`, javabase.manifest.model.ImageTest)
against an image in the engine: a command in a container of it (no network, as
the image's own user, removed afterwards, killed at its time limit), a path in
it (read from a container that is never started), or its configuration. The
run calls this between building an image and tagging it; `invoke test` calls
it on images built before.

Command tests find javabase's probe classes (package data, compiled for Java 8)
at /javabase-probes when their command names that directory. The checks of what
came back are pure functions of the test and the engine's answer."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from ..engine import Backend, LineSink, LocalImage, PathInfo, Ran
from ..errors import StepError
from ..manifest.model import Image, ImageTest

PROBES_DIR = "/javabase-probes"
PROBES = Path(str(files("javabase").joinpath("probes")))
FILE_TEXT_LIMIT = 1 << 20  # bytes of a file that `contains` searches
SHOWN = 160  # characters of output a failure line quotes


@dataclass(frozen=True)
class Outcome:
    """One test's result: failure is None when it passed."""

    test: ImageTest
    failure: str | None
    seconds: float


@cache
def probe_files() -> dict[str, bytes]:
    """javabase's probes as a command test's container gets them."""
    return {f"{PROBES_DIR}/{path.name}": path.read_bytes() for path in sorted(PROBES.glob("*.class"))}


def run_tests(backend: Backend, image: Image, image_id: str, log: LineSink) -> list[Outcome]:
    """Run every test of `image` against `image_id`, in order; log one line each.
    Raises EngineError when the engine fails, Interrupted on Ctrl-C."""
    outcomes = []
    local: LocalImage | None = None
    for test in image.tests:
        started = time.monotonic()
        if test.command is not None:
            uses_probes = any(PROBES_DIR in word for word in test.command)
            ran = backend.run(image_id, test.command, probe_files() if uses_probes else {}, test.timeout)
            failure = check_command(test, ran)
        elif test.file is not None:
            failure = check_file(test, backend.path_info(image_id, test.file, FILE_TEXT_LIMIT))
        else:
            local = local or backend.image(image_id)
            failure = check_metadata(test, local) if local is not None else "the image is not in the engine"
        outcome = Outcome(test, failure, time.monotonic() - started)
        log(f"test {test.name!r}: " + (f"ok ({outcome.seconds:.1f} s)" if failure is None else f"FAILED: {failure}"))
        outcomes.append(outcome)
    return outcomes


def require_passed(outcomes: list[Outcome]) -> None:
    """Raise StepError naming the first test that failed (and how many more did)."""
    failed = [o for o in outcomes if o.failure is not None]
    if failed:
        more = f" (and {len(failed) - 1} more test(s) failed; see the log)" if len(failed) > 1 else ""
        raise StepError(f"test {failed[0].test.name!r} failed: {failed[0].failure}{more}")


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= SHOWN else line[:SHOWN] + "..."


def _search(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.MULTILINE) is not None


def check_command(test: ImageTest, ran: Ran) -> str | None:
    """Why a command's result fails its test, or None. Pure."""
    streams = {"stdout": ran.stdout, "stderr": ran.stderr}
    if ran.exit_code is None:
        return f"{' '.join(test.command or ())!r} did not finish within {test.timeout} s and was killed"
    if ran.exit_code != test.exit_code:
        said = _first_line(ran.stderr) or _first_line(ran.stdout)
        return f"exit code {ran.exit_code}, expected {test.exit_code}" + (f" ({said})" if said else "")
    for name, patterns, wanted in (("stdout", test.stdout, True), ("stderr", test.stderr, True),
                                   ("stdout", test.excluded_stdout, False), ("stderr", test.excluded_stderr, False)):
        for pattern in patterns:
            if _search(pattern, streams[name]) != wanted:
                shown = _first_line(streams[name]) or "nothing"
                return (f"{name} does not match '{pattern}' (it begins: {shown})" if wanted
                        else f"{name} matches '{pattern}', which it must not (it begins: {shown})")
    return None


def check_file(test: ImageTest, info: PathInfo | None) -> str | None:
    """Why a path fails its test, or None. Pure."""
    path = test.file
    if info is None:
        return f"{path} does not exist" if test.exists else None
    if not test.exists:
        return f"{path} exists (a {info.kind}), and must not"
    if test.mode is not None and info.mode != test.mode:
        return f"{path} has mode {info.mode:04o}, expected {test.mode:04o}"
    owner = f"{info.uid}:{info.gid}"
    if test.owner is not None and owner != test.owner:
        return f"{path} is owned by {owner}, expected {test.owner}"
    if test.contains and info.kind != "file":
        return f"{path} is a {info.kind}, not a file whose text can be searched"
    text = info.text.decode("utf-8", "replace")
    for pattern in test.contains:
        if not _search(pattern, text):
            return f"{path} does not match '{pattern}' (it begins: {_first_line(text) or 'empty'})"
    return None


def check_metadata(test: ImageTest, image: LocalImage) -> str | None:
    """Why an image's configuration fails its test, or None. Pure."""
    if test.user is not None and image.user != test.user:
        return f"the image's user is {image.user or 'root (none set)'!r}, expected {test.user!r}"
    env = dict(image.env)
    for key, value in test.env:
        if key not in env:
            return f"the image does not set {key} (expected {value!r})"
        if env[key] != value:
            return f"the image sets {key}={env[key]!r}, expected {value!r}"
    if test.workdir is not None and image.workdir != test.workdir:
        return f"the image's workdir is {image.workdir or '/ (none set)'!r}, expected {test.workdir!r}"
    return None


def pass_before_tagging(backend: Backend, image: Image, image_id: str, log: LineSink) -> None:
    """The run's step between building an image and tagging it: run its tests;
    when one fails, remove the image (unless something tags it already) so that
    no later run reuses it untested, keeping the layers below it (the next
    build's cache), and raise StepError naming the test."""
    if not image.tests:
        return
    outcomes = run_tests(backend, image, image_id, log)
    if all(o.failure is None for o in outcomes):
        return
    found = backend.image(image_id)
    if found is not None and not found.tags:
        try:
            backend.untag(image_id)
        except StepError as exc:
            log(f"the image that failed its tests was not removed: {exc}")
    require_passed(outcomes)
