"""An HTTP server of a test's own: on a free 127.0.0.1 port, in a thread,
stopped when the block ends (what a real server cannot be made to do on
demand: a token service, a proxy, an API, a file server with faults)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` (a request handler class, or a partial of one) until the
    block ends; yields "127.0.0.1:PORT". The server is shut down, closed and its
    thread joined, also when the block raises."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{_port(server)}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _port(server: Any) -> int:
    return int(server.server_address[1])
