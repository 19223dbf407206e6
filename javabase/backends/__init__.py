"""Ways of building images, chosen by name. Only the chosen backend's module
is imported, so `import javabase.<anything else>` never loads its client."""

from __future__ import annotations

from .base import Backend, BuildOutcome, BuildRequest, LineSink, LocalImage

BACKENDS = ("docker",)

__all__ = ["BACKENDS", "Backend", "BuildOutcome", "BuildRequest", "LineSink", "LocalImage", "open_backend"]


def open_backend(name: str = "docker", *, timeout: int = 600) -> Backend:
    """Connect to the named backend, or raise one line saying why not."""
    if name == "docker":
        from .docker_sdk import connect

        return connect(timeout=timeout)
    from ..errors import UsageError

    raise UsageError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
