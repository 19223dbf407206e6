"""Ways of building images, chosen by name. Only the chosen backend's module
is imported, so `import javabase.<anything else>` never loads its client."""

from __future__ import annotations

from ...engine import Backend
from ...errors import UsageError

BACKENDS = ("docker",)


def open_backend(name: str = "docker", *, where: str, timeout: int = 600, stall: float = 900.0) -> Backend:
    """Connect to the named backend at `where` (for docker: DOCKER_HOST), or raise
    one line saying why not (EngineError; UsageError for an unknown name).
    timeout: seconds for a request; stall: seconds a stream may stay silent."""
    if name == "docker":
        from .docker_sdk import connect

        return connect(where, timeout=timeout, stall=stall)
    raise UsageError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
