"""The Docker engine as a javabase backend: the only module that imports the
docker SDK. It uses the low-level APIClient, so build output streams as it
comes, and turns the engine's JSON into the records of backends.base. Every
failure becomes a one-line EngineError or StepError."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from ..errors import EngineError, JavabaseError, StepError
from ..provenance import parse_time
from ..references import split_reference
from .base import BuildOutcome, BuildRequest, LineSink, LocalImage

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def connect(base_url: str | None = None, timeout: int = 600) -> DockerBackend:
    """Connect and ping, or raise one line naming the DOCKER_HOST that was tried."""
    url = base_url or docker_host()
    try:
        api = docker.APIClient(base_url=url, version="auto", timeout=timeout)
        api.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        reason = _short(exc)
        raise EngineError(
            f"cannot reach the Docker engine at DOCKER_HOST={url} ({reason}); start one with "
            "`scripts/services.sh start` and `eval \"$(scripts/services.sh env)\"`, or set DOCKER_HOST"
        ) from None
    return DockerBackend(api)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "No such file or directory" in text or "FileNotFoundError" in text:
        return "no socket there"
    if "Connection refused" in text:
        return "connection refused"
    return text[:160]


_API_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


@contextmanager
def _calling(what: str, error: type[JavabaseError] = StepError) -> Iterator[None]:
    """Turn the SDK's exceptions into one line: `<what>: <reason>`. ImageNotFound
    passes through for the callers that expect it."""
    try:
        yield
    except docker.errors.ImageNotFound:
        raise
    except _API_ERRORS as exc:
        raise error(f"{what}: {_short(exc)}") from None


def _stream_error(chunk: Mapping[str, Any]) -> str | None:
    """The message of an error chunk of a build, push or load stream, else None."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    detail = chunk.get("errorDetail") or {}
    return _clean(str(chunk.get("error") or detail.get("message") or "unknown error"))


class DockerBackend:
    name = "docker"

    def __init__(self, api: Any) -> None:
        self.api = api

    # -- builds --------------------------------------------------------------------
    def build(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome:
        """Build context/Dockerfile; stream every output line; return the image ID.
        The first error chunk fails the build with the step it happened in."""
        image_id: str | None = None
        step = "before the first step"
        steps = 0
        try:
            stream = self.api.build(
                path=str(request.context), decode=True, rm=True, forcerm=True, pull=False,
                nocache=request.no_cache, buildargs=dict(request.build_args),
                network_mode="host" if request.network else "none",
            )
            for chunk in stream:
                message = _stream_error(chunk)
                if message is not None:
                    on_line(f"ERROR {message}")
                    raise StepError(f"{step}: {message}")
                text = chunk.get("stream")
                if isinstance(text, str):
                    for line in _clean(text).splitlines():
                        if line.startswith("Step "):
                            number, _, instruction = line.partition(" : ")
                            step = f"{number.lower()} ({instruction[:80]})"
                            steps += 1
                        if line.strip():
                            on_line(line)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                    image_id = aux["ID"]
        except _API_ERRORS as exc:
            raise StepError(f"{step}: engine error: {_short(exc)}") from None
        if image_id is None:
            raise StepError(f"{step}: the engine reported no image ID")
        return BuildOutcome(image_id, steps)

    # -- images --------------------------------------------------------------------
    def image(self, reference: str) -> LocalImage | None:
        try:
            with _calling(f"cannot inspect {reference}", EngineError):
                found: dict[str, Any] = self.api.inspect_image(reference)
        except docker.errors.ImageNotFound:
            return None
        return LocalImage(
            id=str(found["Id"]),
            tags=tuple(found.get("RepoTags") or ()),
            labels=dict((found.get("Config") or {}).get("Labels") or {}),
            created=parse_time(str(found.get("Created") or "")),
            layers=tuple((found.get("RootFS") or {}).get("Layers") or ()),
        )

    def images(self, label: str) -> list[LocalImage]:
        """Every local image that has `label` (one engine call; no layers)."""
        with _calling("cannot list images", EngineError):
            listed: list[dict[str, Any]] = self.api.images(filters={"label": label})
        return [LocalImage(id=str(i["Id"]), tags=tuple(i.get("RepoTags") or ()), labels=dict(i.get("Labels") or {}),
                           created=float(i.get("Created") or 0)) for i in listed]

    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        with _calling(f"tag {reference}"):
            self.api.tag(image_id, repository, tag, force=True)

    def export(self, image_id: str, dest: Path) -> None:
        """`docker save` of one image into a file."""
        with _calling(f"export {image_id[:19]}"), dest.open("wb") as sink:
            for chunk in self.api.get_image(image_id, chunk_size=1 << 20):
                sink.write(chunk)

    def load(self, archive: Path) -> None:
        """`docker load` of an archive; the first error chunk fails it."""
        with _calling("load"), archive.open("rb") as source:
            for chunk in self.api.load_image(source):
                message = _stream_error(chunk)
                if message is not None:
                    raise StepError(f"load: {message}")

    def remove(self, image_id: str) -> None:
        """Remove an untagged image and its untagged intermediate parents."""
        try:
            with _calling(f"remove {image_id[:19]}"):
                self.api.remove_image(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass

    # -- registry side ---------------------------------------------------------------
    def push(self, reference: str, on_line: LineSink) -> str:
        """Push one tag; return the manifest digest the registry reported. The SDK
        does not raise on an error inside the stream, so every chunk is checked."""
        repository, tag = split_reference(reference)
        digest: str | None = None
        with _calling(f"push {reference}"):
            for chunk in self.api.push(repository, tag=tag, stream=True, decode=True):
                message = _stream_error(chunk)
                if message is not None:
                    raise StepError(f"push {reference}: {message}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                    digest = aux["Digest"]
                status = chunk.get("status")
                if isinstance(status, str) and status in ("Pushed", "Layer already exists", "Mounted from"):
                    on_line(f"{chunk.get('id', '')}: {status}")
        if digest is None:
            raise StepError(f"push {reference}: the registry reported no digest")
        on_line(f"pushed {reference}@{digest}")
        return digest


def _clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")
