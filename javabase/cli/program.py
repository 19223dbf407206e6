"""The installed `javabase` program: the same tasks as this repository's
tasks.py (javabase.cli.tasks), served by Invoke from any directory.

    javabase --list
    javabase build-all --push --manifest path/to/images.yaml"""

from __future__ import annotations

from invoke.program import Program

from .. import __version__
from .tasks import namespace

program = Program(namespace=namespace, version=__version__, name="javabase", binary="javabase")


def main() -> None:
    """Entry point of the `javabase` console script (pyproject.toml)."""
    program.run()
