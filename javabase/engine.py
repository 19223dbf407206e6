"""The only module that talks to the Docker engine (through the docker SDK's
low-level APIClient, so build output streams as it comes). Every failure is
turned into a one-line EngineError or StepError; callers pass the client in."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from .errors import EngineError, JavabaseError

LineSink = Callable[[str], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class StepError(JavabaseError):
    """One image's build or push failed; the message names the step."""


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def connect(base_url: str | None = None, timeout: int = 600) -> Engine:
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
    return Engine(api)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "No such file or directory" in text or "FileNotFoundError" in text:
        return "no socket there"
    if "Connection refused" in text:
        return "connection refused"
    return text[:160]


class Engine:
    def __init__(self, api: Any) -> None:
        self.api = api

    # -- builds --------------------------------------------------------------------
    def build(
        self,
        context: Path,
        *,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        network_mode: str,
        on_line: LineSink,
        nocache: bool = False,
    ) -> str:
        """Build context/Dockerfile; stream every output line; return the image ID.
        The first error chunk fails the build with the step it happened in."""
        image_id: str | None = None
        step = "before the first step"
        try:
            stream = self.api.build(
                path=str(context), decode=True, rm=True, forcerm=True, pull=False, nocache=nocache,
                buildargs=dict(buildargs), labels=dict(labels), network_mode=network_mode,
            )
            for chunk in stream:
                if "error" in chunk or "errorDetail" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    message = _clean(str(chunk.get("error") or detail.get("message") or "unknown error"))
                    on_line(f"ERROR {message}")
                    raise StepError(f"{step}: {message}")
                text = chunk.get("stream")
                if isinstance(text, str):
                    for line in _clean(text).splitlines():
                        if line.startswith("Step "):
                            step = line.split(" : ", 1)[0].lower() + " (" + line.split(" : ", 1)[-1][:80] + ")"
                        if line.strip():
                            on_line(line)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                    image_id = aux["ID"]
        except StepError:
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StepError(f"{step}: engine error: {_short(exc)}") from None
        if image_id is None:
            raise StepError(f"{step}: the engine reported no image ID")
        return image_id

    # -- images --------------------------------------------------------------------
    def inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.inspect_image(ref)
            return found
        except docker.errors.ImageNotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"cannot inspect {ref}: {_short(exc)}") from None

    def find_by_label(self, key: str, value: str) -> list[str]:
        """IDs of local images carrying label key=value, newest first."""
        try:
            images = self.api.images(filters={"label": f"{key}={value}"})
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"cannot list images: {_short(exc)}") from None
        images.sort(key=lambda i: i.get("Created", 0), reverse=True)
        return [str(i["Id"]) for i in images]

    def list_labelled(self, key: str) -> list[dict[str, Any]]:
        """Every local image that has label `key`: Id, RepoTags, RepoDigests, Labels."""
        try:
            images: list[dict[str, Any]] = self.api.images(filters={"label": key})
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"cannot list images: {_short(exc)}") from None
        return images

    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        try:
            self.api.tag(image_id, repository, tag, force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StepError(f"tag {reference}: {_short(exc)}") from None

    def remove(self, ref: str) -> None:
        try:
            self.api.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"cannot remove {ref}: {_short(exc)}") from None

    def export(self, image_id: str, dest: Path) -> None:
        """`docker save` of one image into a file."""
        try:
            with dest.open("wb") as sink:
                for chunk in self.api.get_image(image_id, chunk_size=1 << 20):
                    sink.write(chunk)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StepError(f"export {image_id[:19]}: {_short(exc)}") from None

    def load(self, archive: Path) -> None:
        """`docker load` of an archive; the first error chunk fails it."""
        try:
            with archive.open("rb") as source:
                for chunk in self.api.load_image(source):
                    if "error" in chunk or "errorDetail" in chunk:
                        raise StepError(f"load: {chunk.get('error') or chunk.get('errorDetail')}")
        except StepError:
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StepError(f"load: {_short(exc)}") from None

    def remove_untagged(self, image_id: str) -> None:
        """Remove an untagged image and its untagged intermediate parents."""
        try:
            self.api.remove_image(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StepError(f"remove {image_id[:19]}: {_short(exc)}") from None

    # -- registry side ---------------------------------------------------------------
    def push(self, reference: str, on_line: LineSink) -> str:
        """Push one tag; return the manifest digest the registry reported. The SDK
        does not raise on an error inside the stream, so every chunk is checked."""
        repository, tag = split_reference(reference)
        digest: str | None = None
        try:
            for chunk in self.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk or "errorDetail" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    message = _clean(str(chunk.get("error") or detail.get("message") or "unknown error"))
                    raise StepError(f"push {reference}: {message}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                    digest = aux["Digest"]
                status = chunk.get("status")
                if isinstance(status, str) and status in ("Pushed", "Layer already exists", "Mounted from"):
                    on_line(f"{chunk.get('id', '')}: {status}")
        except StepError:
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise StepError(f"push {reference}: {_short(exc)}") from None
        if digest is None:
            raise StepError(f"push {reference}: the registry reported no digest")
        on_line(f"pushed {reference}@{digest}")
        return digest


def split_reference(reference: str) -> tuple[str, str]:
    """registry:5000/ns/name:tag -> (registry:5000/ns/name, tag)."""
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, "latest"


def _clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")
