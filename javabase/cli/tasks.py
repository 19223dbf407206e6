"""The Invoke tasks: each parses its flags, calls its command and exits with
the command's code. The same collection is this repository's tasks.py and the
installed `javabase` program (javabase.cli.program).

    validate | render [--check] | lock | plan | build | build-all | push | test | ci | save | load
    | prune | inspect | doctor
Every task takes --manifest PATH (default images.yaml here or above) and --debug."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from . import define, release, ship
from . import registry as registry_cmds
from .common import run


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(help={"manifest": "manifest to read (default: images.yaml)", "debug": "show tracebacks"})
def validate(c: Context, manifest: str | None = None, debug: bool = False) -> None:
    """Check the manifest against the schema and the semantic rules; print every problem."""
    _exit(run(lambda: define.validate(manifest), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "check": "do not resolve or write; fail listing every difference between lock and manifest",
            "debug": "show tracebacks"})
def lock(c: Context, manifest: str | None = None, check: bool = False, debug: bool = False) -> None:
    """Resolve outside FROM references to digests; write images.lock.json with artifacts and template hashes."""
    _exit(run(lambda: define.lock(manifest, check), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "check": "do not write; fail listing every file in builds/ that differs",
            "debug": "show tracebacks"})
def render(c: Context, manifest: str | None = None, check: bool = False, debug: bool = False) -> None:
    """Render one Dockerfile per image into builds/ (atomically), or --check for drift."""
    _exit(run(lambda: define.render(manifest, check), debug))


@task(iterable=["image"],
      help={"manifest": "manifest to read (default: images.yaml)",
            "image": "select this image and its ancestors (repeatable)",
            "dependents": "also select every image built FROM the selected ones",
            "format": "text, json or mermaid",
            "registry": "registry for the references shown (default: manifest or JAVABASE_REGISTRY)",
            "push": "say what `build --push` would do: images the registry holds with the same inputs are reused",
            "debug": "show tracebacks"})
def plan(c: Context, manifest: str | None = None, image: list[str] | None = None, dependents: bool = False,
         format: str = "text", registry: str | None = None, push: bool = False, debug: bool = False) -> None:
    """Show the build order in waves, with every image's references, parent and template, and what build does."""
    _exit(run(lambda: define.plan(manifest, image or [], dependents, format, registry, push), debug))


BUILD_HELP = {
    "manifest": "manifest to read (default: images.yaml)",
    "image": "build this image (repeatable); missing ancestors are built first",
    "push": "push every tag after all builds succeeded",
    "registry": "registry HOST[:PORT] to tag and push for (default: JAVABASE_REGISTRY, then the manifest)",
    "keep-going": "after a failure, still build (and push) the images that do not depend on it",
    "report": "write a JSON report to this file",
    "jobs": "images built at the same time (default: 2 per CPU, at most 8)",
    "force": "rebuild even when an image with the same inputs exists; overwrite immutable tags",
    "no-cache": "build without the engine's layer cache",
    "dependents": "also build every image built FROM the selected ones",
    "frozen": "fail, building nothing, when images.lock.json disagrees with the manifest (CI); implies "
              "--reproducible",
    "reproducible": "rewrite each built image so that its timestamps come from SOURCE_DATE_EPOCH: the same "
                    "inputs give the same image ID",
    "expect-up-to-date": "fail (exit 12) if any image had to be built or pushed (a pipeline's last job)",
    "sbom": "write an SPDX JSON SBOM per image (syft) next to the report (or in .javabase/sbom/); with --push "
            "attach it to the image in the registry",
    "debug": "show tracebacks",
}


@task(iterable=["image"], help=BUILD_HELP)
def build(c: Context, image: list[str] | None = None, manifest: str | None = None, push: bool = False,
          registry: str | None = None, keep_going: bool = False, report: str | None = None, jobs: int = 0,
          force: bool = False, no_cache: bool = False, dependents: bool = False, frozen: bool = False,
          reproducible: bool = False, expect_up_to_date: bool = False, sbom: bool = False,
          debug: bool = False) -> None:
    """Build the named images (and any missing ancestor), optionally push them."""
    if not image:
        raise Exit("error: build needs --image NAME (build-all builds every image)", code=9)
    _exit(run(lambda: ship.build(manifest, ship.BuildFlags(
        images=image or [], push=push, registry=registry, keep_going=keep_going, report=report, jobs=jobs or None,
        force=force, no_cache=no_cache, dependents=dependents, frozen=frozen, reproducible=reproducible,
        expect_up_to_date=expect_up_to_date, sbom=sbom)), debug))


@task(help={k: v for k, v in BUILD_HELP.items() if k not in ('image', 'dependents')})
def build_all(c: Context, manifest: str | None = None, push: bool = False, registry: str | None = None,
              keep_going: bool = False, report: str | None = None, jobs: int = 0, force: bool = False,
              no_cache: bool = False, frozen: bool = False, reproducible: bool = False,
              expect_up_to_date: bool = False, sbom: bool = False, debug: bool = False) -> None:
    """Build every image in dependency order, tag it for the registry and, with --push, push it."""
    _exit(run(lambda: ship.build(manifest, ship.BuildFlags(
        push=push, registry=registry, keep_going=keep_going, report=report, jobs=jobs or None, force=force,
        no_cache=no_cache, frozen=frozen, reproducible=reproducible, expect_up_to_date=expect_up_to_date,
        sbom=sbom)), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "push this image (repeatable; default: every image)",
    "registry": "registry HOST[:PORT] (default: JAVABASE_REGISTRY, then the manifest)",
    "report": "write a JSON report to this file",
    "force": "overwrite immutable tags that hold another image",
    "debug": "show tracebacks",
})
def push(c: Context, image: list[str] | None = None, manifest: str | None = None, registry: str | None = None,
         report: str | None = None, force: bool = False, debug: bool = False) -> None:
    """Push every tag of images built before with `invoke build`."""
    _exit(run(lambda: ship.push(manifest, image or [], registry=registry, report=report,
                                             force=force), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "test this image (repeatable; default: every image)",
    "registry": "registry HOST[:PORT] the images were tagged for (default: JAVABASE_REGISTRY, then the manifest)",
    "debug": "show tracebacks",
})
def test(c: Context, image: list[str] | None = None, manifest: str | None = None, registry: str | None = None,
         debug: bool = False) -> None:
    """Run the tests the manifest declares (tests:) on images built before, in containers without network."""
    _exit(run(lambda: ship.test(manifest, image or [], registry=registry), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "format": "github (a GitHub Actions workflow) or gitlab (.gitlab-ci.yml)",
            "per": "image (one job per image, needing its parent's job) or wave (one job per wave)",
            "output": "write the pipeline to this file (default: print it)",
            "check": "do not write; fail if --output differs from what would be written",
            "debug": "show tracebacks"})
def ci(c: Context, manifest: str | None = None, format: str = "github", per: str = "image",
       output: str | None = None, check: bool = False, debug: bool = False) -> None:
    """Generate the CI pipeline that builds and pushes the images, fanned out over the CI's runners."""
    _exit(run(lambda: define.ci(manifest, format, per, output, check), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "save this image (repeatable; default: every image)",
    "output": "the archive to write (docker load reads it)",
    "registry": "registry the references are for (default: JAVABASE_REGISTRY, then the manifest)",
    "debug": "show tracebacks",
})
def save(c: Context, output: str, image: list[str] | None = None, manifest: str | None = None,
         registry: str | None = None, debug: bool = False) -> None:
    """Write the images (built, with the current inputs) and every tag of each into one archive."""
    _exit(run(lambda: release.save(manifest, image or [], output, registry), debug))


@task(help={"push": "push the loaded images (immutable-tag and already-present checks as usual)",
            "registry": "re-tag the images for this registry HOST[:PORT] (and push there)",
            "report": "write a JSON report to this file",
            "force": "with --push: overwrite immutable tags",
            "debug": "show tracebacks"})
def load(c: Context, archive: str, push: bool = False, registry: str | None = None, report: str | None = None,
         force: bool = False, debug: bool = False) -> None:
    """Verify an archive `invoke save` wrote, load it into the engine, tag it, and optionally push it."""
    _exit(run(lambda: release.load(archive, push, registry, report, force), debug))


@task(help={"manifest": "manifest to read, for --cache (default: images.yaml)",
            "keep": "untagged images to keep per image name, newest first (default 1)",
            "dry-run": "list what would go and the space it frees; remove nothing",
            "cache": "also bring the artifact cache under JAVABASE_CACHE_MAX (default 5 GB)",
            "debug": "show tracebacks"})
def prune(c: Context, manifest: str | None = None, keep: int = 1, dry_run: bool = False, cache: bool = False,
          debug: bool = False) -> None:
    """Remove images javabase built that no tag points to any more (never another image, a tagged one or a
    container's)."""
    _exit(run(lambda: release.prune(manifest, keep, dry_run, cache), debug))


@task(help={"manifest": "manifest to find the image's entry in (default: images.yaml)",
            "format": "text or json", "debug": "show tracebacks"})
def inspect(c: Context, reference: str, manifest: str | None = None, format: str = "text", debug: bool = False) -> None:
    """What one built or pushed image is: entry, inputs, base, artifacts, labels, platforms, SBOM."""
    _exit(run(lambda: release.inspect(reference, manifest, format), debug))


@task(help={"manifest": "manifest to read for the registry and namespace (default: images.yaml)",
            "registry": "registry HOST[:PORT] to check (default: JAVABASE_REGISTRY, then the manifest)",
            "debug": "show tracebacks"})
def doctor(c: Context, manifest: str | None = None, registry: str | None = None, debug: bool = False) -> None:
    """Check a registry: TLS or HTTP, which CA, which credentials, whether pull and push are allowed."""
    _exit(run(lambda: registry_cmds.doctor(manifest, registry), debug))


namespace = Collection(validate, lock, render, plan, build, build_all, push, test, ci, save, load, prune, inspect,
                       doctor)
