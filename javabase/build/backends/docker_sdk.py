"""The Docker engine as a javabase backend: the only module that imports the
docker SDK. It uses the low-level APIClient, so build output streams as it
comes, and turns the engine's JSON into the records of backends.base. Every
failure becomes a one-line EngineError or StepError."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import urllib3.exceptions

from ...clock import parse_time
from ...engine import BuildOutcome, BuildRequest, Credential, LineSink, LocalImage, PathInfo, Ran, last_step
from ...errors import EngineError, Interrupted, JavabaseError, StepError
from ...manifest.references import split_reference
from ...plan.render import DOCKERFILE
from .folding import Commit, Fold, comment, commit_body, parse, plan

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PULL_WAITS = (10.0, 20.0, 40.0)  # seconds between pulls a registry rate-limits
_STREAMED = ("/build", "/images/create", "/images/load", "/images/get", "/get", "/logs")


def connect(url: str, timeout: int = 600, stall: float = 900.0) -> DockerBackend:
    """Connect to the engine at `url` (DOCKER_HOST) and ping it, or raise
    EngineError: one line naming the DOCKER_HOST that was tried. `stall`: the
    seconds a build, pull, load or save stream may stay silent before the engine
    is taken for stalled (JAVABASE_ENGINE_TIMEOUT)."""
    try:
        api = docker.APIClient(base_url=url, version="auto", timeout=timeout)
        api.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        reason = _short(exc)
        raise EngineError(
            f"cannot reach the Docker engine at DOCKER_HOST={url} ({reason}); start one with "
            "`scripts/services.sh start` and `eval \"$(scripts/services.sh env)\"`, or set DOCKER_HOST"
        ) from None
    return DockerBackend(api, url, stall)


def _short(exc: BaseException) -> str:
    """Why a connection failed, in a few words."""
    text = _whole(exc)
    if "No such file or directory" in text or "FileNotFoundError" in text:
        return "no socket there"
    if "Connection refused" in text:
        return "connection refused"
    return text


def _whole(exc: BaseException) -> str:
    """The whole message, its lines joined into one."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


_API_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
# The engine went away while javabase was talking to it (killed, restarted, out of memory).
_LOST = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
         urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError)


def _lost(what: str, exc: BaseException, where: str, stall: float) -> EngineError:
    text = _short(exc)
    if "timed out" in text:
        return EngineError(f"the Docker engine at DOCKER_HOST={where} sent nothing for {stall:.0f} s during {what}; "
                           "it may be stalled (its log says why); raise JAVABASE_ENGINE_TIMEOUT for steps that "
                           "are silent longer, then run again")
    if "Connection broken" in text or "IncompleteRead" in text:
        text = "the connection broke"
    elif "Connection aborted" in text:
        text = "the connection was aborted"
    return EngineError(f"the Docker engine at DOCKER_HOST={where} stopped answering during {what} "
                       f"({text}); check that dockerd is running (its log says why it stopped), then run again")


def _stream_error(chunk: Mapping[str, Any]) -> str | None:
    """The message of an error chunk of a build, push or load stream, else None."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    detail = chunk.get("errorDetail") or {}
    text = _clean(str(chunk.get("error") or detail.get("message") or "unknown error"))
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class DockerBackend:
    name = "docker"

    def __init__(self, api: Any, where: str, stall: float = 900.0) -> None:
        self.api = api
        self.where = where
        self.stall = stall
        self.pull_waits: tuple[float, ...] = PULL_WAITS
        # The HTTP responses of the builds under way, by thread, so that cancel()
        # can cut them: the engine then stops the build and removes its container.
        self._streams: dict[int, Any] = {}
        self._containers: set[str] = set()  # the test containers running now, killed by cancel()
        self._configs: dict[str, dict[str, Any]] = {}  # image ID -> its inspect (an ID's image never changes)
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        api.hooks["response"].append(self._remember_build)

    @contextmanager
    def _calling(self, what: str, error: type[JavabaseError] = StepError) -> Iterator[None]:
        """Turn the SDK's exceptions into one line: `<what>: <reason>`. ImageNotFound
        passes through for the callers that expect it."""
        try:
            yield
        except docker.errors.ImageNotFound:
            raise
        except _LOST as exc:
            raise _lost(what, exc, self.where, self.stall) from None
        except _API_ERRORS as exc:
            raise error(f"{what}: {_whole(exc)}") from None

    @property
    def version(self) -> str:
        with self._calling("cannot ask the engine its version", EngineError):
            return str(self.api.version().get("Version") or "unknown")

    @property
    def native(self) -> str:
        with self._calling("cannot ask the engine its version", EngineError):
            version = self.api.version()
        return f"{version.get('Os', 'linux')}/{version.get('Arch', 'amd64')}"

    def _remember_build(self, response: Any, *_args: Any, **_kwargs: Any) -> Any:
        """Every streamed answer gets a read timeout (the SDK gives none: a stalled
        engine would hang the run); a build's is kept so that cancel() can cut it."""
        path = str(response.request.url).split("?")[0] if response.request is not None else ""
        if path.endswith(_STREAMED):
            sock = _socket_of(response)
            if sock is not None:
                sock.settimeout(self.stall)
        if path.endswith("/build"):
            with self._lock:
                self._streams[threading.get_ident()] = response
        return response

    def cancel(self) -> None:
        """Stop every build under way (from another thread, e.g. on Ctrl-C)."""
        self._cancelled.set()
        with self._lock:
            streams = list(self._streams.values())
            containers = list(self._containers)
        for response in streams:
            sock = _socket_of(response)
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for container in containers:
            with suppress(*_API_ERRORS):
                self.api.kill(container)

    # -- builds --------------------------------------------------------------------
    def build(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome:
        """Build context/Dockerfile; stream every output line; return the image ID.
        The first error chunk fails the build with the step it happened in, and
        why: the line a template's check printed (`javabase: ...`), else the
        engine's message. An image of another platform than the one asked for is built again without
        the layer cache (the classic builder's cache does not tell platforms apart
        on the steps of a FROM scratch image: an arm64 build could get the amd64
        build's COPY step, and so an amd64 image); StepError if it still is."""
        outcome = self._build_folded(request, on_line) or self._build_once(request, on_line)
        if request.platform is None:
            return outcome
        made = self._platform_of(outcome.image_id)
        if _same_platform(made, request.platform):
            return outcome
        if not request.no_cache:
            on_line(f"the engine's layer cache gave a {made} image for {request.platform}; building it again "
                    "without the cache")
            outcome = self._build_once(replace(request, no_cache=True), on_line)
            made = self._platform_of(outcome.image_id)
            if _same_platform(made, request.platform):
                return outcome
        raise StepError(f"the engine built a {made} image for {request.platform}; check that the engine can build "
                        f"for {request.platform} (`scripts/services.sh start` registers the emulators)")

    def _build_folded(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome | None:
        """Build a Dockerfile of folding's subset with one container and one commit
        per RUN (its config instructions folded into the commits), or None when it
        is outside the subset (then the classic builder builds it). The image equals
        the classic builder's (files, Env, WorkingDir, User, Cmd, Entrypoint,
        ExposedPorts, Labels); its layers are fewer (one per RUN). The last commit's
        history comment names its instructions (the reuse check finds the LABEL and
        the input digest there). A failed RUN or a cancel removes the containers and
        the images made so far; StepError names the step."""
        if self._cancelled.is_set():
            raise Interrupted("interrupted before the build started")
        try:
            fold = parse((request.context / DOCKERFILE).read_text(encoding="utf-8"), request.build_args)
        except (OSError, UnicodeDecodeError):
            return None
        if fold is None:
            return None
        parent = self._configs.get(fold.base)
        if parent is None:
            try:
                with self._calling(f"cannot inspect {fold.base}", EngineError):
                    parent = dict(self.api.inspect_image(fold.base))
            except docker.errors.ImageNotFound:
                return None  # the classic builder says so in its words
            if fold.base == parent.get("Id"):  # FROM an image ID (a javabase parent): the same for every child
                with self._lock:
                    self._configs[fold.base] = parent
        made = "/".join(str(parent[k]) for k in ("Os", "Architecture") if parent.get(k))
        commits = plan(fold, parent.get("Config") or {})
        if commits is None or (request.platform is not None and not _same_platform(made, request.platform)):
            return None
        return self._run_folded(fold, commits, str(parent["Id"]), request, on_line)

    def _run_folded(self, fold: Fold, commits: list[Commit], image: str, request: BuildRequest,
                    on_line: LineSink) -> BuildOutcome:
        steps = _Steps()
        total = len(fold.head) + len(fold.steps)
        number = iter(range(len(fold.head) + 1, total + 1))
        lines = [f"Step {n}/{total} : {text}" for n, text in enumerate(fold.head, 1)]
        for line in (*lines, f" ---> {image.split(':')[-1][:12]}"):
            steps.see(line)
            on_line(line)
        made: list[str] = []
        try:
            for commit in commits:
                image = self._fold_one(image, commit, request, steps, lambda: next(number, total), total, on_line)
                made.append(image)
        except BaseException:
            for image_id in reversed(made):
                with suppress(*_API_ERRORS):
                    self.api.remove_image(image_id, force=True, noprune=True)
            raise
        on_line(f"Successfully built {image.split(':')[-1][:12]} ({len(fold.steps)} instruction(s) in "
                f"{len(commits)} commit(s))")
        return BuildOutcome(image, len(commits))

    def _fold_one(self, image: str, commit: Commit, request: BuildRequest, steps: _Steps,
                  number: Callable[[], int], total: int, on_line: LineSink) -> str:
        """One container of `image` running the commit's RUN (if any), committed."""
        def say(instruction: str) -> None:
            line = f"Step {number()}/{total} : {instruction}"
            steps.see(line)
            on_line(line)

        ran = next((i for i, text in enumerate(commit.instructions) if text.startswith("RUN ")), -1)
        for text in commit.instructions[: ran + 1] if commit.run else ():
            say(text)
        container = ""
        try:
            with self._in_step(steps):  # a cancel while the engine creates it raises after: the finally removes it
                container = self._fold_container(image, commit, request)
                self._make_dirs(container, commit.before, steps.current)
                if commit.run is not None:
                    self._fold_run(container, commit.run, steps, on_line)
            for text in commit.instructions[ran + 1:] if commit.run else commit.instructions:
                say(text)
            with self._in_step(steps):
                self._make_dirs(container, commit.after, steps.current)
                made = str(self.api.commit(container, message=comment(commit),
                                           conf=commit_body(commit.config))["Id"])
        finally:
            if container:
                with self._lock:
                    self._containers.discard(container)
                with suppress(*_API_ERRORS, *_LOST):
                    self.api.remove_container(container, force=True, v=True)
        on_line(f" ---> {made.split(':')[-1][:12]}")
        return made

    @contextmanager
    def _in_step(self, steps: _Steps) -> Iterator[None]:
        """A folded build's engine calls: a cancel is Interrupted; an engine that
        goes away is one line naming the step, as the classic builder's stream
        says it; any other engine error is StepError naming the step (an
        APIError is an answer of the engine, though the SDK makes it an OSError:
        a parent removed meanwhile is a 404, not an engine gone)."""
        if self._cancelled.is_set():
            raise Interrupted(f"interrupted during {steps.current}; the build was cancelled")
        try:
            yield
        except (*_LOST, *_API_ERRORS, OSError) as exc:
            if self._cancelled.is_set():
                raise Interrupted(f"interrupted during {steps.current}; the build was cancelled") from None
            if isinstance(exc, (*_LOST, OSError)) and not isinstance(exc, docker.errors.APIError):
                broke = exc if "timed out" in _short(exc) else ConnectionError("Connection broken")
                raise _lost(f"the build ({steps.current})", broke, self.where, self.stall) from None
            raise StepError(f"{steps.current}: engine error: {_whole(exc)}") from None
        if self._cancelled.is_set():
            raise Interrupted(f"interrupted during {steps.current}; the build was cancelled")

    def _fold_container(self, image: str, commit: Commit, request: BuildRequest) -> str:
        """A container of `image` with the config the RUN runs with; the RUN is its
        Entrypoint, so that its Cmd stays empty (the commit would inherit it)."""
        run_as = commit.run_as
        created = self.api.create_container(
            image, entrypoint=list(commit.run or ("/javabase-never-started",)), environment=list(run_as.env),
            user=run_as.user or None, working_dir=run_as.workdir or None, platform=request.platform,
            host_config=self.api.create_host_config(network_mode=request.network))
        container = str(created["Id"])
        with self._lock:
            self._containers.add(container)
        return container

    def _fold_run(self, container: str, run: tuple[str, ...], steps: _Steps, on_line: LineSink) -> None:
        """Start the container, stream its output as build lines, fail on a non-zero
        exit. A cancel() that came before the container started kills it here."""
        self.api.start(container)
        if self._cancelled.is_set():
            self.api.kill(container)
        rest = b""
        for chunk in self.api.logs(container, stream=True, follow=True):
            *lines, rest = (rest + chunk).split(b"\n")
            for raw in lines:
                line = _clean(raw.decode("utf-8", "replace"))
                steps.see(line)
                on_line(line)
        if rest.strip():
            steps.see(_clean(rest.decode("utf-8", "replace")))
            on_line(_clean(rest.decode("utf-8", "replace")))
        code = int(self.api.wait(container).get("StatusCode", -1))
        if code != 0 and not self._cancelled.is_set():
            message = f"The command '{' '.join(run)}' returned a non-zero code: {code}"
            on_line(f"ERROR {message}")
            raise StepError(steps.failure(message))

    def _make_dirs(self, container: str, paths: Sequence[str], step: str) -> None:
        """Make each directory of `paths` and its parents where missing (mode 0755,
        owned by root), as the classic builder's WORKDIR makes them."""
        for path in paths:
            parts = [p for p in path.split("/") if p]
            for depth in range(1, len(parts) + 1):
                kind = self._kind(container, "/" + "/".join(parts[:depth]))
                if kind == "file":
                    raise StepError(f"{step}: Cannot mkdir: /{'/'.join(parts[:depth])} is not a directory")
                if kind is None:
                    self.api.put_archive(container, "/" + "/".join(parts[: depth - 1]), _dirs_tar(parts[depth - 1:]))
                    break

    def _kind(self, container: str, path: str) -> str | None:
        """"dir" (or a symbolic link), "file", or None when the container has no `path`."""
        response = self.api.head(self.api._url("/containers/{0}/archive", container), params={"path": path})
        if response.status_code == 404:
            return None
        self.api._raise_for_status(response)
        stat = json.loads(base64.b64decode(response.headers.get("X-Docker-Container-Path-Stat", "e30=")))
        mode = int(stat.get("mode") or 0)
        return "dir" if mode & (_MODE_DIR | _MODE_SYMLINK) else "file"

    def _platform_of(self, image_id: str) -> str:
        found = self.image(image_id)
        return found.platform if found is not None else ""

    def _build_once(self, request: BuildRequest, on_line: LineSink) -> BuildOutcome:
        image_id: str | None = None
        steps = _Steps()
        if self._cancelled.is_set():
            raise Interrupted("interrupted before the build started")
        try:
            stream = self.api.build(
                path=str(request.context), decode=True, rm=True, forcerm=True, pull=False,
                nocache=request.no_cache, buildargs=dict(request.build_args),
                network_mode=request.network, platform=request.platform,
            )
            for chunk in stream:
                message = _stream_error(chunk)
                if message is not None:
                    on_line(f"ERROR {message}")
                    raise StepError(steps.failure(message))
                text = chunk.get("stream")
                if isinstance(text, str):
                    for line in _clean(text).splitlines():
                        steps.see(line)
                        if line.strip():
                            on_line(line)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                    image_id = aux["ID"]
        except (*_LOST, *_API_ERRORS, OSError, ValueError) as exc:
            if self._cancelled.is_set():
                raise Interrupted(f"interrupted during {steps.current}; the build was cancelled") from None
            if isinstance(exc, _LOST):
                raise _lost(f"the build ({steps.current})", exc, self.where, self.stall) from None
            if isinstance(exc, _API_ERRORS):
                raise StepError(f"{steps.current}: engine error: {_whole(exc)}") from None
            raise
        finally:
            with self._lock:
                self._streams.pop(threading.get_ident(), None)
        if image_id is None:
            raise StepError(f"{steps.current}: the engine reported no image ID")
        return BuildOutcome(image_id, steps.count)

    def run_probe(self, platform: str, program: bytes) -> str | None:
        """Build FROM scratch, for `platform`, with no cache and no network, an
        image whose one RUN step is `program`; None when it ran, else the engine's
        error. The probe's images are removed."""
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            for name, data, mode in (("Dockerfile", b'FROM scratch\nCOPY probe /probe\nRUN ["/probe"]\n', 0o644),
                                     ("probe", program, 0o755)):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
        made: list[str] = []
        failed = None
        with self._calling(f"check that the engine runs {platform} programs", EngineError):
            for chunk in self.api.build(fileobj=io.BytesIO(context.getvalue()), custom_context=True, decode=True,
                                        rm=True, forcerm=True, pull=False, nocache=True, network_mode="none",
                                        platform=platform):
                failed = failed or _stream_error(chunk)
                made += re.findall(r"---> ([0-9a-f]{12,64})\b", _clean(str(chunk.get("stream") or "")))
        for image_id in reversed(made):
            self.remove(image_id)
        return failed

    # -- images --------------------------------------------------------------------
    def image(self, reference: str, history: bool = False) -> LocalImage | None:
        """The image, or None; with history, also the instruction that made it."""
        try:
            with self._calling(f"cannot inspect {reference}", EngineError):
                found: dict[str, Any] = self.api.inspect_image(reference)
                steps: list[dict[str, Any]] = self.api.history(found["Id"]) if history else []
        except docker.errors.ImageNotFound:
            return None
        return LocalImage(
            id=str(found["Id"]),
            tags=tuple(found.get("RepoTags") or ()),
            labels=dict((found.get("Config") or {}).get("Labels") or {}),
            created=parse_time(str(found.get("Created") or "")),
            layers=tuple((found.get("RootFS") or {}).get("Layers") or ()),
            last_step=last_step(str(steps[0].get("CreatedBy") or ""), str(steps[0].get("Comment") or ""))
            if steps else "",
            platform="/".join(str(found[k]) for k in ("Os", "Architecture", "Variant") if found.get(k)),
            user=str((found.get("Config") or {}).get("User") or ""),
            env=_env_pairs((found.get("Config") or {}).get("Env") or ()),
            workdir=str((found.get("Config") or {}).get("WorkingDir") or ""),
            layer_sizes=layer_sizes(steps, len((found.get("RootFS") or {}).get("Layers") or ())) if steps else (),
            size=int(found.get("Size") or 0),
        )

    def listed_layers(self) -> dict[str, tuple[str, ...]]:
        with self._calling("cannot list images", EngineError):
            listed = [str(i["Id"]) for i in self.api.images()]
        out = {}
        for image_id in listed:
            found = self.image(image_id)
            if found is not None:  # removed meanwhile
                out[found.id] = found.layers
        return out

    def images(self, label: str) -> list[LocalImage]:
        """Every local image that has `label` (one engine call; no layers)."""
        with self._calling("cannot list images", EngineError):
            listed: list[dict[str, Any]] = self.api.images(filters={"label": label})
        return [LocalImage(id=str(i["Id"]), tags=tuple(t for t in i.get("RepoTags") or () if t != "<none>:<none>"),
                           labels=dict(i.get("Labels") or {}), created=float(i.get("Created") or 0))
                for i in listed]

    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        with self._calling(f"tag {reference}"):
            self.api.tag(image_id, repository, tag, force=True)

    def pull(self, reference: str, on_line: LineSink, credential: Credential | None = None) -> str:
        """Pull NAME@DIGEST with the run's credentials (not the engine's login
        state); every chunk of the stream is checked for an error. A registry that
        rate-limits the pull (toomanyrequests) is asked again after each of
        PULL_WAITS seconds, one line per wait."""
        repository, _, digest = reference.partition("@")
        auth: dict[str, str] | None = None
        if credential is not None:
            auth = ({"identitytoken": credential.secret} if credential.identity_token else
                    {"username": credential.username, "password": credential.secret})
        for attempt, wait in enumerate((*self.pull_waits, None), 1):
            message = self._pull_once(reference, repository, digest, auth, on_line)
            if message is None:
                break
            limited = any(word in message.lower() for word in ("toomanyrequests", "too many requests", "429"))
            if not limited or wait is None:
                raise StepError(f"pull {reference}: {message}" + ("; the registry rate-limits pulls: wait, then "
                                                                   "run again (with credentials, limits are higher)"
                                                                   if limited else ""))
            on_line(f"pull {reference}: rate-limited ({message}); waiting {wait:.0f} s, then trying again "
                    f"({attempt} of {len(self.pull_waits)})")
            time.sleep(wait)
        found = self.image(reference)
        if found is None:
            raise StepError(f"pull {reference}: the engine reported success but does not have the image")
        return found.id

    def _pull_once(self, reference: str, repository: str, digest: str, auth: dict[str, str] | None,
                   on_line: LineSink) -> str | None:
        """One pull; the message of its error chunk, or None when it succeeded."""
        with self._calling(f"pull {reference}"):
            for chunk in self.api.pull(repository, tag=digest, stream=True, decode=True, auth_config=auth):
                message = _stream_error(chunk)
                if message is not None:
                    return message
                status = chunk.get("status")
                if isinstance(status, str) and status.startswith(("Digest:", "Status:", "Pull complete")):
                    on_line(f"{chunk.get('id', '')}: {status}".lstrip(": "))
        return None

    def export(self, image_id: str, dest: Path) -> None:
        """`docker save` of one image into a file."""
        with self._calling(f"export {image_id[:19]}"), dest.open("wb") as sink:
            for chunk in self.api.get_image(image_id, chunk_size=1 << 20):
                sink.write(chunk)

    def save(self, references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        """`docker save` of several tags at once: one archive `docker load` reads."""
        with self._calling("save"), dest.open("wb") as sink:
            response = self.api._get(self.api._url("/images/get"), params={"names": references}, stream=True)
            self.api._raise_for_status(response)
            for chunk in response.iter_content(chunk_size=1 << 20):
                sink.write(chunk)
                on_bytes(len(chunk))

    def in_use(self) -> set[str]:
        with self._calling("cannot list containers", EngineError):
            return {str(c["ImageID"]) for c in self.api.containers(all=True)}

    def untag(self, reference: str) -> None:
        with self._calling(f"untag {reference}"):
            self.api.remove_image(reference, noprune=True)

    def load(self, archive: Path) -> None:
        """`docker load` of an archive; the first error chunk fails it."""
        with self._calling("load"), archive.open("rb") as source:
            for chunk in self.api.load_image(source):
                message = _stream_error(chunk)
                if message is not None:
                    raise StepError(f"load: {message}")

    # -- containers (image tests) -------------------------------------------------------
    def _container(self, image_id: str, command: Sequence[str]) -> str:
        """A new container of the image, with no network; removed by the caller."""
        created = self.api.create_container(
            image_id, command=list(command), entrypoint=[],
            host_config=self.api.create_host_config(network_mode="none"), labels={"io.javabase.test": "1"})
        return str(created["Id"])

    def run(self, image_id: str, command: Sequence[str], files: Mapping[str, bytes], timeout: float) -> Ran:
        """Run a command in a new container of the image (no network, its own user),
        removed afterwards; killed after `timeout` seconds (exit_code None)."""
        if self._cancelled.is_set():
            raise Interrupted("interrupted before the test started")
        with self._calling(f"run {command[0]} in {image_id.split(':')[-1][:12]}"):
            container = self._container(image_id, command)
            with self._lock:
                self._containers.add(container)
            try:
                if files:
                    self.api.put_archive(container, "/", _tar_of(files))
                self.api.start(container)
                code = self._wait(container, timeout)
                stdout = self.api.logs(container, stdout=True, stderr=False)
                stderr = self.api.logs(container, stdout=False, stderr=True)
            finally:
                with self._lock:
                    self._containers.discard(container)
                with suppress(*_API_ERRORS):
                    self.api.remove_container(container, force=True)
        if self._cancelled.is_set():
            raise Interrupted("interrupted during a test; its container was removed")
        return Ran(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))

    def _wait(self, container: str, timeout: float) -> int | None:
        """The container's exit code, or None after killing it at the deadline."""
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            state = self.api.inspect_container(container)["State"]
            if not state.get("Running") and state.get("Status") != "created":
                return int(state.get("ExitCode", -1))
            if time.monotonic() > deadline or self._cancelled.is_set():
                with suppress(*_API_ERRORS):
                    self.api.kill(container)
                return None
            time.sleep(pause)
            pause = min(0.2, pause * 2)

    def path_info(self, image_id: str, path: str, limit: int) -> PathInfo | None:
        """A path in the image, read from the archive of a container that is never
        started (and removed); only the first tar entry is read."""
        with self._calling(f"read {path} in {image_id.split(':')[-1][:12]}"):
            container = self._container(image_id, ["/javabase-never-started"])
            try:
                response = self.api._get(self.api._url("/containers/{0}/archive", container), params={"path": path},
                                         stream=True)
                if response.status_code == 404:
                    response.close()
                    return None
                self.api._raise_for_status(response)
                response.raw.decode_content = True  # the engine gzips it when asked to (requests asks)
                try:
                    return _first_entry(response.raw, limit)
                finally:
                    response.close()
            finally:
                with suppress(*_API_ERRORS):
                    self.api.remove_container(container, force=True)

    def remove(self, image_id: str, force: bool = True) -> None:
        """Remove an image and its untagged intermediate parents; without force the
        engine refuses an image a container uses or that has tags in other names."""
        try:
            with self._calling(f"remove {image_id[:19]}"):
                self.api.remove_image(image_id, force=force)
        except docker.errors.ImageNotFound:
            pass



CHECK_PREFIX = "javabase: "  # how a template's check says why it fails its step


class _Steps:
    """Which step of a build the output is at, and what a template's check said in it."""

    def __init__(self) -> None:
        self.current = "before the first step"
        self.count = 0
        self.said: str | None = None

    def see(self, line: str) -> None:
        if line.startswith("Step "):
            number, _, instruction = line.partition(" : ")
            self.current = f"{number.lower()} ({instruction[:80]})"
            self.count += 1
            self.said = None
        elif line.startswith(CHECK_PREFIX):
            self.said = line[len(CHECK_PREFIX):].strip()

    def failure(self, message: str) -> str:
        """One line: the step, and the check's own words when it printed any."""
        return f"{self.current}: {self.said}" if self.said else f"{self.current}: {message}"


def _env_pairs(env: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    """Config.Env (K=V strings) as pairs."""
    return tuple((key, value) for key, _, value in (str(item).partition("=") for item in env))


_MODE_DIR, _MODE_SYMLINK = 1 << 31, 1 << 27  # Go's os.ModeDir and os.ModeSymlink, in the engine's stat


def _dirs_tar(parts: Sequence[str]) -> bytes:
    """A tar of the directories parts[0], parts[0]/parts[1], ... (0755, root's, now)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for depth in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
    return buffer.getvalue()


def _tar_of(files: Mapping[str, bytes]) -> bytes:
    """A tar of `files` (absolute path -> content) and their directories, owned by
    root, readable by everyone, to put into a container at /."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        made: set[str] = set()
        for path, content in sorted(files.items()):
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _first_entry(raw: Any, limit: int) -> PathInfo:
    """The first entry of a tar stream (what the engine's archive of a path starts with)."""
    with tarfile.open(fileobj=raw, mode="r|") as tar:
        member = tar.next()
        if member is None:
            raise StepError("the engine sent an empty archive")
        kind = ("file" if member.isreg() else "directory" if member.isdir() else "symlink" if member.issym()
                else "other")
        text = b""
        if member.isreg():
            handle = tar.extractfile(member)
            text = handle.read(limit) if handle is not None else b""
        return PathInfo(kind, member.mode & 0o7777, member.uid, member.gid, member.linkname, text)
def _same_platform(made: str, wanted: str) -> bool:
    """OS and architecture as the engine says them, against OS/ARCH[/VARIANT] asked for."""
    return made.split("/")[:2] == wanted.split("/")[:2]


# The instructions of the classic builder and BuildKit that make a layer; the others
# (ENV, LABEL, CMD, ... and `#(nop)` steps other than ADD and COPY) only change the config.
_LAYER_STEP = re.compile(r"^(?:/bin/sh -c #\(nop\) (?:ADD|COPY) |(?!/bin/sh -c #\(nop\))(?!(?:ENV|LABEL|CMD|ENTRYPOINT|"
                         r"WORKDIR|USER|EXPOSE|VOLUME|STOPSIGNAL|HEALTHCHECK|SHELL|ARG|ONBUILD|MAINTAINER) ))")


def layer_sizes(steps: list[dict[str, Any]], count: int) -> tuple[int, ...]:
    """Each of an image's `count` layers' size in bytes (its diff, as `docker system
    df` counts it), base first, from its history (newest first, as the engine
    gives it). The engine does not say which history entries made a layer: an
    entry with a size did; of those without, the instructions that make layers
    (RUN, ADD, COPY) did, as many as the count needs (a size of 0 counts nothing,
    so a wrong guess among them only shifts where a later size is counted)."""
    entries = [(int(s.get("Size") or 0), str(s.get("CreatedBy") or "")) for s in reversed(steps)]
    sized = sum(1 for size, _ in entries if size > 0)
    spare = max(0, count - sized)  # empty layers still to place
    sizes = []
    for size, made_by in entries:
        if size > 0:
            sizes.append(size)
        elif spare and _LAYER_STEP.match(made_by):
            sizes.append(0)
            spare -= 1
    sizes += [0] * (count - len(sizes))
    return tuple(sizes[:count])


def _socket_of(response: Any) -> socket.socket | None:
    """The socket under a streaming requests response (urllib3 keeps it on the connection)."""
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r", "")
