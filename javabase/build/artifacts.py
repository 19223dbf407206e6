"""Artifacts: download with retries into a content-addressed cache, verify by
sha256 before anything is built, and put them into build contexts.

A download goes to a temporary file and is renamed into the cache only after
its sha256 matched, so a partial or wrong download never enters the cache.
A cache entry is verified again every time it is used: a byte flipped on disk
is found, the entry deleted and fetched again.

Each attempt has a stall timeout (no byte for STALL seconds), a low-speed
limit (fewer than LOW_SPEED bytes a second over LOW_SPEED_TIME seconds) and a
total time limit (ATTEMPT seconds), so a server that never answers, or
trickles a few bytes every few seconds, fails the attempt instead of hanging
the run. A 429 or 5xx answer is retried after the wait its Retry-After asks
for (at most MAX_WAIT seconds)."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from http.client import HTTPException
from pathlib import Path
from typing import IO, Protocol

from ..clock import retry_after
from ..errors import ArtifactError, CannotWrite
from ..files import replacing
from ..manifest.model import Artifact
from ..report import Progress
from ..settings import DEFAULT_CACHE_MAX
from .cache import CacheLock, DigestMemo, plan_cache, touch

CHUNK = 1 << 20
RETRIES = 3
STALL = 20.0
ATTEMPT = 600.0
LOW_SPEED, LOW_SPEED_TIME = 1000, 20.0  # curl's --speed-limit and --speed-time
MAX_WAIT = 60.0  # the longest wait between attempts, whatever Retry-After says


class Response(Protocol):
    """What urlopen returns, as far as downloads use it."""

    headers: object

    def read(self, size: int = ...) -> bytes: ...

    def read1(self, size: int = ...) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[str, float], Response]


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def default_opener(url: str, timeout: float) -> Response:
    """urllib with TLS certificate verification (the default context verifies)."""
    request = urllib.request.Request(url, headers={"User-Agent": "javabase"})
    context = _tls() if url.startswith("https:") else None
    response: Response = urllib.request.urlopen(request, timeout=timeout, context=context)
    return response


@dataclass(frozen=True)
class Fetched:
    artifact: Artifact
    path: Path
    downloaded: bool


class _Transient(Exception):
    """A failure worth retrying: connection reset, timeout, 5xx, 429, truncated
    body; `wait` is what the server asked for (Retry-After), in seconds."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class ArtifactStore:
    """Fetches and verifies artifacts. The opener is a parameter so that tests can
    inject faults a real server cannot produce on demand."""

    def __init__(
        self,
        root: Path,
        opener: Opener = default_opener,
        progress: Progress | None = None,
        retries: int = RETRIES,
        backoff: float = 0.5,
        manifest_name: str = "images.yaml",
        stall: float = STALL,
        attempt_limit: float = ATTEMPT,
        cache_max: int = DEFAULT_CACHE_MAX,
        low_speed: int = LOW_SPEED,
        low_speed_time: float = LOW_SPEED_TIME,
    ) -> None:
        """root: the cache directory; opener: how a URL is opened (tests inject
        faults); stall, attempt_limit and low_speed_time in seconds; low_speed in
        bytes a second; cache_max in bytes."""
        self.root = root
        self.opener = opener
        self.progress = progress or Progress()
        self.retries = retries
        self.backoff = backoff
        self.manifest_name = manifest_name
        self.stall = stall
        self.attempt_limit = attempt_limit
        self.cache_max = cache_max
        self.low_speed, self.low_speed_time = low_speed, low_speed_time
        self.memo = DigestMemo(root / "verified.json")
        self.lock = CacheLock(root)

    def cached_path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256

    def fetch_all(self, artifacts: Iterable[Artifact]) -> dict[str, Fetched]:
        """Fetch every artifact (each sha256 once); raise ArtifactError on the first
        that cannot be fetched or does not match. Returns the verified file by sha256."""
        out: dict[str, Fetched] = {}
        self.lock.share()
        try:
            for artifact in artifacts:
                if artifact.sha256 not in out:
                    out[artifact.sha256] = self.fetch(artifact)
        finally:
            self.memo.save()
        self.keep_within_limit(set(out))
        return out

    def keep_within_limit(self, needed: set[str]) -> None:
        """Record this run's use of its entries and bring the cache under
        JAVABASE_CACHE_MAX, least recently used first, never one of `needed`."""
        touch(self.root, needed)
        doomed = plan_cache(self.root, needed, self.cache_max)
        if not doomed:
            return
        with self.lock.exclusive() as alone:
            if not alone:
                self.progress.note(f"artifact cache: over JAVABASE_CACHE_MAX ({self.cache_max / 1e9:.1f} GB), but "
                                   "another run is using it: a later run trims it")
                return
            for path, _ in plan_cache(self.root, needed, self.cache_max):
                self.memo.forget(path)
                path.unlink(missing_ok=True)
        self.memo.save()

    def close(self) -> None:
        """The run is done with its entries: another run may trim them."""
        self.lock.release()

    def fetch(self, artifact: Artifact) -> Fetched:
        """One artifact, verified: a local file, a cache entry, or downloaded."""
        if artifact.path is not None:
            return Fetched(artifact, self._verify_local(artifact.path, artifact), downloaded=False)
        cached = self.cached_path(artifact.sha256)
        if cached.is_file():
            actual = self.memo.sha256(cached)
            if actual == artifact.sha256:
                return Fetched(artifact, cached, downloaded=False)
            self.progress.finish(f"the cached copy {cached} is corrupt (its sha256 is {actual}); deleted, "
                                 "fetching it again", artifact.filename)
            self.memo.forget(cached)
            try:
                cached.unlink()
            except OSError as exc:
                raise CannotWrite.at(cached, exc, "the artifact cache entry") from None
        if artifact.url is None:
            raise ArtifactError(f"{self._where(artifact)}: has neither `url` nor `path`; give one")
        return Fetched(artifact, self._download(artifact, artifact.url, cached), downloaded=True)

    def _where(self, artifact: Artifact) -> str:
        return f"{self.manifest_name}:{artifact.line}: {artifact.key}"

    def _verify_local(self, path: Path, artifact: Artifact) -> Path:
        if not path.is_file():
            raise ArtifactError(f"{self._where(artifact)}: {path} does not exist; create it or fix `path`")
        actual = self.memo.sha256(path)
        if actual != artifact.sha256:
            raise ArtifactError(self._mismatch(artifact, str(path), actual))
        return path

    def _mismatch(self, artifact: Artifact, origin: str, actual: str) -> str:
        return (f"{self._where(artifact)}: sha256 mismatch for {origin}: expected {artifact.sha256}, "
                f"got {actual}; nothing was built or pushed - check the file or the sha256 in the manifest")

    def _download(self, artifact: Artifact, url: str, target: Path) -> Path:
        """Download into a temporary file, renamed into the cache only when its
        sha256 matched. Raises ArtifactError, or CannotWrite."""
        try:
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CannotWrite.at(self.root, exc, "the artifact cache (JAVABASE_CACHE)") from None
        last_error = ""
        unsized: set[str] = set()  # digests of bodies that came without Content-Length
        for attempt in range(1, self.retries + 1):
            try:
                with replacing(target, "the artifact cache (JAVABASE_CACHE)", tmp_dir=self.root / "tmp") as tmp, \
                        tmp.open("wb") as sink:
                    actual, sized, received = self._stream(artifact, url, sink)
                    if actual != artifact.sha256:
                        if sized or actual in unsized:
                            raise ArtifactError(self._mismatch(artifact, artifact.origin, actual))
                        # No Content-Length: a body cut short looks complete. Fetch again; the
                        # same wrong bytes twice are a real mismatch, not the network.
                        unsized.add(actual)
                        raise _Transient(f"the body ended after {received} bytes without a Content-Length and "
                                         "its sha256 does not match: probably cut short")
                return target
            except _Transient as exc:
                last_error = str(exc)
                if attempt < self.retries:
                    wait = min(MAX_WAIT, exc.wait if exc.wait is not None else self.backoff * 2 ** (attempt - 1))
                    asked = f"; the server asked to wait {wait:.0f} s" if exc.wait is not None else ""
                    self.progress.finish(f"attempt {attempt} of {self.retries} failed ({last_error}){asked}; "
                                         "retrying", artifact.filename)
                    time.sleep(wait)
        raise ArtifactError(f"{self._where(artifact)}: cannot download {artifact.origin} after {self.retries} "
                            f"attempts: {last_error}; check the URL and the network, then run again")

    def _stream(self, artifact: Artifact, url: str, sink: IO[bytes]) -> tuple[str, bool, int]:
        """Download into sink: (sha256, whether a Content-Length was given, bytes received)."""
        response = self._open(artifact, url)
        try:
            length = getattr(response.headers, "get", lambda _k: None)("Content-Length")
            total = int(length) if length and str(length).isdigit() else None
            # The file's name in the image, and the URL's when it differs (one ADD serves every
            # platform's file under one name: say which platform's file this is).
            fetched = url.rsplit("/", 1)[-1].split("?")[0]
            self.progress.start(artifact.filename if fetched in ("", artifact.filename)
                                else f"{artifact.filename} from {fetched}", total)
            digest, received = self._read(response, sink)
            if total is not None and received != total:
                raise _Transient(f"connection closed after {received} of {total} bytes")
            self.progress.finish(f"{received / 1e6:.1f} MB, sha256 verified" if digest == artifact.sha256
                                 else f"{received / 1e6:.1f} MB")
            return digest, total is not None, received
        finally:
            response.close()

    def _open(self, artifact: Artifact, url: str) -> Response:
        """The answer to GET url; a transient failure (5xx, 429, no answer) is _Transient,
        with the wait the server asked for (Retry-After)."""
        try:
            return self.opener(url, self.stall)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                wait = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                raise _Transient(f"HTTP {exc.code} {exc.reason}", wait) from None
            raise ArtifactError(f"{self._where(artifact)}: cannot download {artifact.origin}: HTTP {exc.code} "
                                f"{exc.reason}; fix the URL in the manifest") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise ArtifactError(f"{self._where(artifact)}: TLS certificate of {artifact.origin} does not verify "
                                    f"({reason.verify_message}); javabase does not download without TLS "
                                    "verification") from None
            raise _Transient(str(reason)) from None
        except TimeoutError:
            raise _Transient(f"no answer within {self.stall:.0f} s") from None
        except (OSError, HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from None

    def _read(self, response: Response, sink: IO[bytes]) -> tuple[str, int]:
        """Read the body into sink: (sha256 hex, bytes). An attempt fails when no byte
        comes for `stall` s, when it takes longer than `attempt_limit` s, or when fewer
        than `low_speed` bytes a second came over the last `low_speed_time` s."""
        digest = hashlib.sha256()
        started = time.monotonic()
        window_start, window_bytes, received = started, 0, 0
        while True:
            now = time.monotonic()
            if now - started > self.attempt_limit:
                raise _Transient(f"took longer than {self.attempt_limit:.0f} s ({received} bytes so far)")
            if now - window_start >= self.low_speed_time:
                if (received - window_bytes) / (now - window_start) < self.low_speed:
                    raise _Transient(f"too slow: {received - window_bytes} bytes in the last "
                                     f"{now - window_start:.0f} s (less than {self.low_speed} bytes a second)")
                window_start, window_bytes = now, received
            try:
                block = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
            except TimeoutError:
                raise _Transient(f"stalled: no data for {self.stall:.0f} s after {received} bytes") from None
            except (OSError, HTTPException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            if not block:
                return digest.hexdigest(), received
            received += len(block)
            digest.update(block)
            sink.write(block)
            self.progress.advance(len(block))


def place(fetched: Fetched, context_dir: Path) -> None:
    """Put a verified artifact into a build context, as a copy: a hard link would
    change the cache entry's ctime (twice: link, then unlink with the context),
    and so its fingerprint in the DigestMemo, which would then hash it again."""
    try:
        shutil.copyfile(fetched.path, context_dir / fetched.artifact.filename)
    except FileNotFoundError:
        raise ArtifactError(f"{fetched.path} ({fetched.artifact.filename}) went away after it was verified (removed "
                            "from the cache by hand?); run again") from None
    except OSError as exc:
        raise CannotWrite.at(context_dir, exc, "the build context") from None
