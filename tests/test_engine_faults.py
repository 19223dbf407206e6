"""An engine that stops talking: what no real engine does on demand, so a fake
one on a unix socket answers the docker SDK's handshake, starts a build's
stream, then says nothing. The build fails within the stall time, one line."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from javabase.build.backends.docker_sdk import connect
from javabase.engine import BuildRequest
from javabase.errors import EngineError


class StallingEngine(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def log_message(self, *_: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _json(self, value: object) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.endswith("/version"):
            self._json({"ApiVersion": "1.41", "Version": "20.10.24", "Os": "linux", "Arch": "amd64"})
        else:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = json.dumps({"stream": "Step 1/2 : FROM scratch\n"}).encode() + b"\r\n"
        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.flush()
        self.release.wait(20)  # then nothing, as a stalled engine


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False  # the SDK keeps its connections open


@contextmanager
def stalling_engine(path: Path) -> Iterator[str]:
    server = _Server(str(path), StallingEngine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        StallingEngine.release.set()
        server.shutdown()
        server.server_close()


def test_a_build_stream_that_goes_silent_is_exit_5_within_the_stall_time(tmp_path: Path) -> None:
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "Dockerfile").write_text("FROM scratch\n")
    with stalling_engine(tmp_path / "engine.sock") as where:
        backend = connect(where, timeout=5, stall=1.0)
        started = time.monotonic()
        with pytest.raises(EngineError) as caught:
            backend.build(BuildRequest(tmp_path / "context", {}, network="none"), lambda _line: None)
        took = time.monotonic() - started
    assert took < 10
    assert str(caught.value) == (
        f"the Docker engine at DOCKER_HOST={where} sent nothing for 1 s during the build (step 1/2 (FROM "
        "scratch)); it may be stalled (its log says why); raise JAVABASE_ENGINE_TIMEOUT for steps that are "
        "silent longer, then run again")
