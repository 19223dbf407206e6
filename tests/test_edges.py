"""Faults a real server cannot produce on demand: a truncated download, a 503,
an error chunk in a build or push stream. Real HTTP on 127.0.0.1 where it can."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest

from javabase.build.artifacts import ArtifactStore
from javabase.build.backends.docker_sdk import DockerBackend as Engine
from javabase.engine import BuildRequest
from javabase.errors import ArtifactError, CannotWrite, StepError
from javabase.manifest.model import Artifact
from javabase.manifest.references import split_reference
from javabase.report import Progress
from loopback import serving

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FaultyHandler(http.server.SimpleHTTPRequestHandler):
    faults: ClassVar[list[str]] = []
    served: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.served.append(self.path)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "503":
            self.send_error(503, "busy")
            return
        if fault == "429":  # rate-limited, with the wait the server wants (seconds)
            self.send_response(429, "Too Many Requests")
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "404":
            self.send_error(404, "gone")
            return
        if fault == "silent":  # accepts the request, never answers
            time.sleep(1.5)
            return
        if fault == "trickle":  # a byte every 0.2 s: never stalls, never finishes
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            for byte in PAYLOAD[:20]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
            return
        if fault == "short-no-length":  # HTTP/1.0 style: the end of the body is the end of the connection
            self.send_response(200)
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3] if fault == "truncate" else PAYLOAD)


@pytest.fixture
def server() -> Iterator[str]:
    FaultyHandler.faults, FaultyHandler.served = [], []
    with serving(partial(FaultyHandler, directory="/nonexistent")) as host:
        yield f"http://{host}"


def artifact(url: str, sha: str = SHA) -> Artifact:
    return Artifact(url=url, path=None, sha256=sha, filename="jre.tar.gz", dest="/usr/java/", unpack=True,
                    key="images.jre.versions[0]", line=7)


def store(tmp_path: Path, out: io.StringIO | None = None, **limits: float) -> ArtifactStore:
    return ArtifactStore(tmp_path / "cache", progress=Progress(out or io.StringIO()), backoff=0.01, **limits)


def test_download_is_verified_cached_and_not_repeated(server: str, tmp_path: Path) -> None:
    out = io.StringIO()
    fetched = store(tmp_path, out).fetch(artifact(f"{server}/jre.tar.gz"))
    assert fetched.downloaded and fetched.path == tmp_path / "cache" / "sha256" / SHA
    assert fetched.path.read_bytes() == PAYLOAD
    lines = out.getvalue().splitlines()
    assert (lines[0], lines[-1]) == ("download jre.tar.gz (1.0 MB): started",
                                     "download jre.tar.gz: 1.0 MB, sha256 verified")
    assert set(lines[1:-1]) <= {"download jre.tar.gz: 25%", "download jre.tar.gz: 50%", "download jre.tar.gz: 75%"}
    again = store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz"))
    assert not again.downloaded and FaultyHandler.served == ["/jre.tar.gz"]


def test_a_download_under_another_name_says_both(server: str, tmp_path: Path) -> None:
    """A platform's tarball goes into the image under the artifact's one name; the
    line says which file it is."""
    out = io.StringIO()
    assert store(tmp_path, out).fetch(artifact(f"{server}/jre-aarch64.tar.gz")).downloaded
    lines = out.getvalue().splitlines()
    assert (lines[0], lines[-1]) == ("download jre.tar.gz from jre-aarch64.tar.gz (1.0 MB): started",
                                     "download jre.tar.gz from jre-aarch64.tar.gz: 1.0 MB, sha256 verified")


def test_truncated_and_busy_downloads_are_retried(server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["truncate", "503"]
    fetched = store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz"))
    assert fetched.path.read_bytes() == PAYLOAD
    assert len(FaultyHandler.served) == 3
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_a_partial_download_never_enters_the_cache(server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["truncate"] * 3
    with pytest.raises(ArtifactError) as caught:
        store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz"))
    assert str(caught.value) == (
        f"images.yaml:7: images.jre.versions[0]: cannot download {server}/jre.tar.gz after 3 attempts: "
        f"connection closed after {len(PAYLOAD) // 3} of {len(PAYLOAD)} bytes; check the URL and the network, "
        "then run again")
    assert not (tmp_path / "cache" / "sha256" / SHA).exists()
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []


def test_not_found_is_not_retried(server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["404"]
    with pytest.raises(ArtifactError) as caught:
        store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz"))
    assert str(caught.value) == (f"images.yaml:7: images.jre.versions[0]: cannot download {server}/jre.tar.gz: "
                                 "HTTP 404 gone; fix the URL in the manifest")
    assert len(FaultyHandler.served) == 1


def test_mismatch_names_both_digests_and_keeps_nothing(server: str, tmp_path: Path) -> None:
    wrong = "f" * 64
    with pytest.raises(ArtifactError) as caught:
        store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz", wrong))
    assert str(caught.value) == (
        f"images.yaml:7: images.jre.versions[0]: sha256 mismatch for {server}/jre.tar.gz: expected {wrong}, "
        f"got {SHA}; nothing was built or pushed - check the file or the sha256 in the manifest")
    assert list((tmp_path / "cache" / "sha256").iterdir()) == []


def test_local_path_is_verified(tmp_path: Path) -> None:
    local = tmp_path / "rootfs.tar.gz"
    local.write_bytes(PAYLOAD)
    item = Artifact(url=None, path=local, sha256=SHA, filename="rootfs.tar.gz", dest="/", unpack=True,
                    key="images.root.artifacts[0]", line=3)
    assert store(tmp_path).fetch(item).path == local
    local.write_bytes(PAYLOAD + b"!")
    with pytest.raises(ArtifactError, match=r"^images.yaml:3: images.root.artifacts\[0\]: sha256 mismatch for "):
        store(tmp_path).fetch(item)


class FakeAPI:
    """Stands in for docker.APIClient where the engine cannot be made to fail on demand."""

    hooks: ClassVar[dict[str, list[Any]]] = {"response": []}

    def __init__(self, build_chunks: list[dict[str, Any]] = (), push_chunks: list[dict[str, Any]] = (),
                 limited: int = 0) -> None:
        self.build_chunks, self.push_chunks = list(build_chunks), list(push_chunks)
        self.limited = limited  # pulls answered with toomanyrequests first

    def build(self, **_: Any) -> Iterator[dict[str, Any]]:
        return iter(self.build_chunks)

    def pull(self, *_: Any, **__: Any) -> Iterator[dict[str, Any]]:
        self.pulls = getattr(self, "pulls", 0) + 1
        if self.pulls <= self.limited:
            return iter([{"status": "Pulling from base/root"}, {"errorDetail": {"message": "toomanyrequests: You "
                        "have reached your pull rate limit"}, "error": "toomanyrequests: You have reached your pull "
                        "rate limit"}])
        return iter([{"status": "Digest: sha256:" + "d" * 64}, {"status": "Status: Downloaded newer image"}])

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return {"Id": "sha256:" + "e" * 64}

    def history(self, ref: str) -> list[Any]:
        return []



def test_a_build_error_chunk_names_the_step(tmp_path: Path) -> None:
    api = FakeAPI(build_chunks=[
        {"stream": "Step 1/2 : FROM scratch\n"},
        {"stream": "Step 2/2 : ADD rootfs.tar.gz /\n"},
        {"errorDetail": {"message": "failed to unpack"}, "error": "failed to unpack"},
    ])
    lines: list[str] = []
    with pytest.raises(StepError) as caught:
        Engine(api, "unix:///test.sock").build(BuildRequest(tmp_path, {}, network="none"), lines.append)
    assert str(caught.value) == "step 2/2 (ADD rootfs.tar.gz /): failed to unpack"
    assert lines == ["Step 1/2 : FROM scratch", "Step 2/2 : ADD rootfs.tar.gz /", "ERROR failed to unpack"]


def test_a_rate_limited_pull_is_asked_again_and_a_lasting_limit_is_one_line() -> None:
    backend = Engine(FakeAPI(limited=2), "unix:///test.sock")
    backend.pull_waits = (0.0, 0.0, 0.0)
    lines: list[str] = []
    assert backend.pull("r:5000/base/root@sha256:" + "d" * 64, lines.append) == "sha256:" + "e" * 64
    assert lines[0] == (f"pull r:5000/base/root@sha256:{'d' * 64}: rate-limited (toomanyrequests: You have reached "
                        "your pull rate limit); waiting 0 s, then trying again (1 of 3)")
    always = Engine(FakeAPI(limited=99), "unix:///test.sock")
    always.pull_waits = (0.0,)
    with pytest.raises(StepError) as caught:
        always.pull("r:5000/base/root@sha256:" + "d" * 64, lambda _line: None)
    assert str(caught.value) == (f"pull r:5000/base/root@sha256:{'d' * 64}: toomanyrequests: You have reached your "
                                 "pull rate limit; the registry rate-limits pulls: wait, then run again (with "
                                 "credentials, limits are higher)")


@pytest.mark.parametrize(("reference", "parts"), [
    ("127.0.0.1:5000/base/jre17:17", ("127.0.0.1:5000/base/jre17", "17")),
    ("127.0.0.1:5000/base/jre17", ("127.0.0.1:5000/base/jre17", "latest")),
])
def test_split_reference(reference: str, parts: tuple[str, str]) -> None:
    assert split_reference(reference) == parts


def test_inspect_of_a_missing_image_is_none_and_other_errors_are_one_line() -> None:
    import docker.errors

    class MissingAPI:
        hooks: ClassVar[dict[str, list[Any]]] = {"response": []}

        def inspect_image(self, ref: str) -> dict[str, Any]:
            raise docker.errors.ImageNotFound("no such image")

    class BrokenAPI:
        hooks: ClassVar[dict[str, list[Any]]] = {"response": []}

        def inspect_image(self, ref: str) -> dict[str, Any]:
            raise docker.errors.APIError("500 Server Error: boom")

    from javabase.errors import EngineError

    assert Engine(MissingAPI(), "unix:///test.sock").image("a:1") is None
    with pytest.raises(EngineError) as caught:
        Engine(BrokenAPI(), "unix:///test.sock").image("a:1")
    assert str(caught.value) == "cannot inspect a:1: 500 Server Error: boom"


def test_a_server_that_never_answers_fails_after_the_stall_timeout(server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["silent"] * 3
    out = io.StringIO()
    started = time.monotonic()
    with pytest.raises(ArtifactError) as caught:
        store(tmp_path, out, stall=0.3).fetch(artifact(f"{server}/jre.tar.gz"))
    assert time.monotonic() - started < 3
    assert str(caught.value) == (f"images.yaml:7: images.jre.versions[0]: cannot download {server}/jre.tar.gz "
                                 "after 3 attempts: no answer within 0 s; check the URL and the network, then run "
                                 "again")
    assert out.getvalue().splitlines() == [
        "download jre.tar.gz: attempt 1 of 3 failed (no answer within 0 s); retrying",
        "download jre.tar.gz: attempt 2 of 3 failed (no answer within 0 s); retrying"]


def test_a_trickling_server_hits_the_attempt_limit(server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["trickle"]
    started = time.monotonic()
    with pytest.raises(ArtifactError, match=r"after 1 attempts: took longer than 1 s \(\d+ bytes so far\)"):
        ArtifactStore(tmp_path / "cache", progress=Progress(io.StringIO()), retries=1, stall=5,
                      attempt_limit=1).fetch(artifact(f"{server}/jre.tar.gz"))
    assert time.monotonic() - started < 4


def test_a_server_that_trickles_fails_on_the_low_speed_limit(server: str, tmp_path: Path) -> None:
    """100 bytes every few tenths of a second never stalls; the low-speed limit
    (curl's --speed-limit/--speed-time) ends each attempt, well before the
    attempt limit."""
    FaultyHandler.faults = ["trickle"] * 2
    out = io.StringIO()
    started = time.monotonic()
    with pytest.raises(ArtifactError) as caught:
        store(tmp_path, out, retries=2, stall=5, low_speed=1000, low_speed_time=1).fetch(
            artifact(f"{server}/jre.tar.gz"))
    assert time.monotonic() - started < 6
    assert re.fullmatch(
        rf"images.yaml:7: images.jre.versions\[0\]: cannot download {server}/jre.tar.gz after 2 attempts: too "
        r"slow: \d+ bytes in the last 1 s \(less than 1000 bytes a second\); check the URL and the network, then "
        r"run again", str(caught.value)), str(caught.value)


def test_a_rate_limited_download_waits_as_long_as_the_server_asks(server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["429"]
    out = io.StringIO()
    started = time.monotonic()
    fetched = store(tmp_path, out).fetch(artifact(f"{server}/jre.tar.gz"))
    assert fetched.path.read_bytes() == PAYLOAD
    assert time.monotonic() - started >= 1
    assert out.getvalue().splitlines()[0] == ("download jre.tar.gz: attempt 1 of 3 failed (HTTP 429 Too Many "
                                              "Requests); the server asked to wait 1 s; retrying")


def test_retry_after_in_seconds_or_as_a_date() -> None:
    from javabase.clock import retry_after

    assert retry_after("120") == 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412450) == 30
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500) == 0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_body_cut_short_without_content_length_is_called_truncation_and_retried(
        server: str, tmp_path: Path) -> None:
    FaultyHandler.faults = ["short-no-length"]
    out = io.StringIO()
    fetched = store(tmp_path, out).fetch(artifact(f"{server}/jre.tar.gz"))
    assert fetched.path.read_bytes() == PAYLOAD
    assert out.getvalue().splitlines()[2] == (
        f"download jre.tar.gz: attempt 1 of 3 failed (the body ended after {len(PAYLOAD) // 2} bytes without a "
        "Content-Length and its sha256 does not match: probably cut short); retrying")


def test_a_corrupted_cache_entry_is_deleted_and_fetched_again(server: str, tmp_path: Path) -> None:
    store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz"))
    entry = tmp_path / "cache" / "sha256" / SHA
    data = bytearray(entry.read_bytes())
    data[1000] ^= 0xFF
    entry.write_bytes(bytes(data))
    out = io.StringIO()
    fetched = store(tmp_path, out).fetch(artifact(f"{server}/jre.tar.gz"))
    assert fetched.downloaded and entry.read_bytes() == PAYLOAD
    bad = hashlib.sha256(bytes(data)).hexdigest()
    assert out.getvalue().splitlines()[0] == (
        f"download jre.tar.gz: the cached copy {entry} is corrupt (its sha256 is {bad}); deleted, fetching it again")
    assert FaultyHandler.served == ["/jre.tar.gz", "/jre.tar.gz"]


def test_an_unwritable_cache_is_one_line(server: str, tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the cache directory should be")
    with pytest.raises(CannotWrite) as caught:
        store(tmp_path).fetch(artifact(f"{server}/jre.tar.gz"))
    assert str(caught.value) == (f"cannot write the artifact cache (JAVABASE_CACHE) {tmp_path / 'cache'}: Not a "
                                 "directory; fix the permissions or free some space, then run again")
    assert caught.value.exit_code == 11


def test_a_file_is_hashed_once_until_it_changes_even_with_its_mtime_put_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from javabase.build import cache

    local = tmp_path / "rootfs.tar.gz"
    local.write_bytes(PAYLOAD)
    item = Artifact(url=None, path=local, sha256=SHA, filename="rootfs.tar.gz", dest="/", unpack=True,
                    key="images.root.artifacts[0]", line=3)
    hashed: list[Path] = []
    real = cache.sha256_of
    monkeypatch.setattr(cache, "sha256_of", lambda path: hashed.append(path) or real(path))
    store(tmp_path).fetch_all([item])
    store(tmp_path).fetch_all([item])
    assert hashed == [local]
    before = local.stat()
    data = bytearray(PAYLOAD)
    data[5] ^= 1
    local.write_bytes(bytes(data))
    os.utime(local, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: only ctime moved
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        store(tmp_path).fetch_all([item])
    assert hashed == [local, local]


def test_a_run_does_not_trim_entries_another_run_is_using(server: str, tmp_path: Path) -> None:
    """Two runs share one cache: the second's size limit does not remove what the
    first verified and has not copied into its builds yet; once the first is done,
    the limit applies again."""
    first = store(tmp_path)
    first.fetch_all([artifact(f"{server}/jre.tar.gz")])
    other = tmp_path / "cache" / "sha256" / SHA
    second_out = io.StringIO()
    second = store(tmp_path, second_out, cache_max=1)
    local = tmp_path / "rootfs.tar.gz"
    local.write_bytes(PAYLOAD)
    second.keep_within_limit({"0" * 64})
    assert other.exists()
    assert second_out.getvalue().splitlines() == [
        "artifact cache: over JAVABASE_CACHE_MAX (0.0 GB), but another run is using it: a later run trims it"]
    first.close()
    second.keep_within_limit({"0" * 64})
    assert not other.exists()
    second.close()
