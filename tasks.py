"""This repository's Invoke tasks: javabase's own (javabase.cli.tasks, the same
as the installed `javabase` program) and `bench`, which needs the checkout.

    invoke --list"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invoke import Context, Exit, task

from javabase.cli.tasks import namespace


@task(help={"quick": "small sizes, only to check that the benchmark works (CI)",
            "write": "also write the figures into this Markdown file (e.g. docs/benchmarks.md)"})
def bench(c: Context, quick: bool = False, write: str | None = None) -> None:
    """Measure no-op, one-change, parallel and render speed; print the figures."""
    script = Path(__file__).resolve().parent / "benchmarks" / "bench.py"
    args = [sys.executable, str(script)] + (["--quick"] if quick else []) + (["--write", write] if write else [])
    code = subprocess.call(args)
    if code:
        raise Exit(code=code)


namespace.add_task(bench)
