"""Invoke tasks: parse flags, call javabase.commands, exit with its code.

    invoke validate | render [--check] | plan | build | build-all | push
Every task takes --manifest PATH (default images.yaml) and --debug."""

from __future__ import annotations

from invoke import Context, Exit, task

from javabase import commands


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(help={"manifest": "manifest to read (default: images.yaml)", "debug": "show tracebacks"})
def validate(c: Context, manifest: str | None = None, debug: bool = False) -> None:
    """Check the manifest against the schema and the semantic rules; print every problem."""
    _exit(commands.run(lambda: commands.validate(manifest), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "check": "do not write; fail listing every file in builds/ that differs",
            "debug": "show tracebacks"})
def render(c: Context, manifest: str | None = None, check: bool = False, debug: bool = False) -> None:
    """Render one Dockerfile per image into builds/ (atomically), or --check for drift."""
    _exit(commands.run(lambda: commands.render(manifest, check), debug))


@task(iterable=["image"],
      help={"manifest": "manifest to read (default: images.yaml)",
            "image": "select this image and its ancestors (repeatable)",
            "dependents": "also select every image built FROM the selected ones",
            "format": "text, json or mermaid",
            "registry": "registry for the references shown (default: manifest or JAVABASE_REGISTRY)",
            "debug": "show tracebacks"})
def plan(c: Context, manifest: str | None = None, image: list[str] | None = None, dependents: bool = False,
         format: str = "text", registry: str | None = None, debug: bool = False) -> None:
    """Show the build order in waves, with every image's references, parent and template."""
    _exit(commands.run(lambda: commands.plan(manifest, image or [], dependents, format, registry), debug))
