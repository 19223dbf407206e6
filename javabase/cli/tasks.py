"""The Invoke tasks: each parses its flags, calls its command and exits with
the command's code. The same collection is this repository's tasks.py and the
installed `javabase` program (javabase.cli.program).

    validate | render [--check] | lock | plan | build | build-all | push | publish | test | ci | update | save | load
    | prune | inspect | doctor
Every task takes --manifest PATH (default images.yaml here or above) and --debug."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ..errors import UsageError
from ..manifest.eol import EOL_API
from ..plan import pipeline
from .common import run

# Each task imports its command's module when it runs: `invoke build-all` does not
# load what `update`, `save` or `verify` need (a run's start is part of its time).


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


def _whole(value: str | None, flag: str) -> int | None:
    """A number flag, parsed here rather than by Invoke (whose cast of `--jobs x`
    ends in a traceback): None when not given. Raises UsageError (exit 9)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a whole number") from None


@task(help={"manifest": "manifest to read (default: images.yaml)", "debug": "show tracebacks"})
def validate(c: Context, manifest: str | None = None, debug: bool = False) -> None:
    """Check the manifest against the schema and the semantic rules; print every problem."""
    from . import define

    _exit(run(lambda: define.validate(manifest), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "check": "do not resolve or write; fail listing every difference between lock and manifest",
            "debug": "show tracebacks"})
def lock(c: Context, manifest: str | None = None, check: bool = False, debug: bool = False) -> None:
    """Resolve outside FROM references to digests; write images.lock.json with artifacts and template hashes."""
    from . import define

    _exit(run(lambda: define.lock(manifest, check), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "check": "do not write; fail listing every file in builds/ that differs",
            "debug": "show tracebacks"})
def render(c: Context, manifest: str | None = None, check: bool = False, debug: bool = False) -> None:
    """Render one Dockerfile per image into builds/ (atomically), or --check for drift."""
    from . import define

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
    from . import define

    _exit(run(lambda: define.plan(manifest, image or [], dependents, format, registry, push), debug))


BUILD_HELP = {
    "manifest": "manifest to read (default: images.yaml)",
    "image": "build this image (repeatable); missing ancestors are built first",
    "push": "push every tag after all builds succeeded",
    "registry": "registry HOST[:PORT] to tag and push for (default: JAVABASE_REGISTRY, then the manifest)",
    "keep-going": "after a failure, still build (and push) the images that do not depend on it",
    "report": "write a JSON report to this file",
    "jobs": "images built at the same time (default: 2 per CPU, at most 8)",
    "force": "rebuild even when an image with the same inputs exists (immutable tags still refuse another image)",
    "overwrite-immutable": "with --push: publish over immutable tags that hold another image (says so per tag)",
    "sign": "with --push: sign every published image (cosign's format) and attach its SLSA provenance, with "
            "JAVABASE_SIGNING_KEY (a manifest with signing.public_key always signs)",
    "no-cache": "build without the engine's layer cache",
    "dependents": "also build every image built FROM the selected ones",
    "frozen": "fail, building nothing, when images.lock.json disagrees with the manifest (CI); implies "
              "--reproducible",
    "reproducible": "rewrite each built image so that its timestamps come from SOURCE_DATE_EPOCH: the same "
                    "inputs give the same image ID",
    "expect-up-to-date": "fail (exit 12) if any image had to be built or pushed (a pipeline's last job)",
    "sbom": "write an SPDX JSON SBOM per image (syft) next to the report (or in .javabase/sbom/); with --push "
            "attach it to the image in the registry",
    "platform": "of multi-platform images build only this OS/ARCH and push its manifest under its own "
                "per-platform tag (NAME:TAG-OS-ARCH), for a CI job on a runner of that architecture; "
                "`publish` then joins the platforms into the index",
    "debug": "show tracebacks",
}


@task(iterable=["image"], help=BUILD_HELP)
def build(c: Context, image: list[str] | None = None, manifest: str | None = None, push: bool = False,
          registry: str | None = None, keep_going: bool = False, report: str | None = None, jobs: str | None = None,
          force: bool = False, no_cache: bool = False, dependents: bool = False, frozen: bool = False,
          reproducible: bool = False, expect_up_to_date: bool = False, sbom: bool = False,
          overwrite_immutable: bool = False, sign: bool = False, platform: str | None = None,
          debug: bool = False) -> None:
    """Build the named images (and any missing ancestor), optionally push them."""
    from . import ship

    if not image:
        raise Exit("error: build needs --image NAME (build-all builds every image)", code=9)
    _exit(run(lambda: ship.build(manifest, ship.BuildFlags(
        images=image or [], push=push, registry=registry, keep_going=keep_going, report=report,
        jobs=_whole(jobs, "--jobs") or None, force=force, no_cache=no_cache, dependents=dependents, frozen=frozen,
        reproducible=reproducible, expect_up_to_date=expect_up_to_date, sbom=sbom,
        overwrite_immutable=overwrite_immutable, sign=sign, platform=platform)), debug))


@task(help={k: v for k, v in BUILD_HELP.items() if k not in ('image', 'dependents')})
def build_all(c: Context, manifest: str | None = None, push: bool = False, registry: str | None = None,
              keep_going: bool = False, report: str | None = None, jobs: str | None = None, force: bool = False,
              no_cache: bool = False, frozen: bool = False, reproducible: bool = False,
              expect_up_to_date: bool = False, sbom: bool = False, overwrite_immutable: bool = False,
              sign: bool = False, platform: str | None = None, debug: bool = False) -> None:
    """Build every image in dependency order, tag it for the registry and, with --push, push it."""
    from . import ship

    _exit(run(lambda: ship.build(manifest, ship.BuildFlags(
        push=push, registry=registry, keep_going=keep_going, report=report, jobs=_whole(jobs, "--jobs") or None,
        force=force, no_cache=no_cache, frozen=frozen, reproducible=reproducible, expect_up_to_date=expect_up_to_date,
        sbom=sbom, overwrite_immutable=overwrite_immutable, sign=sign, platform=platform)), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "publish this image (repeatable; default: every image)",
    "registry": "registry HOST[:PORT] (default: JAVABASE_REGISTRY, then the manifest)",
    "report": "write a JSON report to this file",
    "frozen": BUILD_HELP["frozen"],
    "overwrite-immutable": BUILD_HELP["overwrite-immutable"],
    "sign": BUILD_HELP["sign"],
    "debug": "show tracebacks",
})
def publish(c: Context, image: list[str] | None = None, manifest: str | None = None, registry: str | None = None,
            report: str | None = None, frozen: bool = False, overwrite_immutable: bool = False, sign: bool = False,
            debug: bool = False) -> None:
    """Publish images whose platforms were pushed by `build --platform` jobs: build nothing, find every
    platform's manifest of the manifest's inputs in the registry, put the index under the tags, verify.
    Exit 12 when a platform is missing."""
    from . import ship

    _exit(run(lambda: ship.build(manifest, ship.BuildFlags(
        images=image or [], push=True, registry=registry, report=report, frozen=frozen,
        overwrite_immutable=overwrite_immutable, sign=sign, publish_only=True)), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "push this image (repeatable; default: every image)",
    "registry": "registry HOST[:PORT] (default: JAVABASE_REGISTRY, then the manifest)",
    "report": "write a JSON report to this file",
    "overwrite-immutable": "publish over immutable tags that hold another image (says so per tag)",
    "debug": "show tracebacks",
})
def push(c: Context, image: list[str] | None = None, manifest: str | None = None, registry: str | None = None,
         report: str | None = None, overwrite_immutable: bool = False, debug: bool = False) -> None:
    """Push every tag of images built before with `invoke build`."""
    from . import ship

    _exit(run(lambda: ship.push(manifest, image or [], registry=registry, report=report,
                                overwrite_immutable=overwrite_immutable), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "test this image (repeatable; default: every image)",
    "registry": "registry HOST[:PORT] the images were tagged for (default: JAVABASE_REGISTRY, then the manifest)",
    "debug": "show tracebacks",
})
def test(c: Context, image: list[str] | None = None, manifest: str | None = None, registry: str | None = None,
         debug: bool = False) -> None:
    """Run the tests the manifest declares (tests:) on images built before, in containers without network."""
    from . import ship

    _exit(run(lambda: ship.test(manifest, image or [], registry=registry), debug))


@task(help={"manifest": "manifest to read (default: images.yaml)",
            "format": "github (a GitHub Actions workflow) or gitlab (.gitlab-ci.yml)",
            "per": "image (one job per image, needing its parent's job), wave (one job per wave) or platform (a "
                   "multi-platform image gets a job per platform on a runner of that architecture, then a "
                   "`publish` job for its index); default image, or with --check what the committed file says",
            "job": "build (the pipeline that builds and pushes), update (a scheduled job: `invoke update`, then a "
                   "merge request with the diff) or update-check (a scheduled job that fails while anything is "
                   "behind)",
            "cron": "when the scheduled job runs, as a cron expression in UTC (default '17 5 * * *')",
            "output": "write the pipeline to this file (default: print it)",
            "check": "do not write; fail (exit 3) if the committed file (--output, default ci/<format>-... next to "
                     "the manifest) differs from what would be written",
            "debug": "show tracebacks"})
def ci(c: Context, manifest: str | None = None, format: str = "github", per: str | None = None, job: str = "build",
       cron: str = pipeline.DEFAULT_CRON, output: str | None = None, check: bool = False,
       debug: bool = False) -> None:
    """Generate the CI pipeline that builds and pushes the images, or the scheduled job that keeps them current."""
    from . import define

    _exit(run(lambda: define.ci(manifest, format, per, output, check, job=job, cron=cron), debug))


@task(iterable=["image"], help={
    "manifest": "manifest to read (default: images.yaml)",
    "image": "update only this image's JRE item and base (repeatable; default: every image)",
    "major": "update only the JRE items of this major version (e.g. 17); bases are left alone",
    "dry-run": "print the diff update would make (manifest, lock, builds/) and write nothing",
    "check": "write nothing; fail (exit 14) listing every JRE and base that is behind (a scheduled CI job)",
    "api": "the Adoptium API, or a company mirror of it (default: the manifest's update.adoptium.api, then "
           "https://api.adoptium.net)",
    "eol-api": "where the end-of-life table is refreshed from (endoflife.date's API; default "
               "https://endoflife.date; 'off' to use the table as it is)",
    "debug": "show tracebacks",
})
def update(c: Context, manifest: str | None = None, image: list[str] | None = None, major: str | None = None,
           dry_run: bool = False, check: bool = False, api: str | None = None, eol_api: str = EOL_API,
           debug: bool = False) -> None:
    """Bump Temurin JREs and moved base digests from their publishers (verified), then lock and render.

    Per Temurin item: URL and sha256 per platform, version, home and the tags derived from them; each new
    tarball is downloaded once, checked against the API's sha256 and (with a key) its signature before
    anything is written. Bases past their end of life are reported with what replaces them."""
    from . import update as updating

    def flags() -> updating.Flags:
        return updating.Flags(images=image or [], major=_whole(major, "--major") or None, dry_run=dry_run,
                              check=check, api=api, eol_api=eol_api)

    _exit(run(lambda: updating.update(manifest, flags()), debug))


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
    from . import release

    _exit(run(lambda: release.save(manifest, image or [], output, registry), debug))


@task(help={"push": "push the loaded images (immutable-tag and already-present checks as usual)",
            "registry": "re-tag the images for this registry HOST[:PORT] (and push there)",
            "report": "write a JSON report to this file",
            "overwrite-immutable": "with --push: publish over immutable tags that hold another image",
            "key": "the team's public key (PEM): load only when every image carries a saved signature that "
                   "verifies with it; with --push the signatures go along",
            "debug": "show tracebacks"})
def load(c: Context, archive: str, push: bool = False, registry: str | None = None, report: str | None = None,
         overwrite_immutable: bool = False, key: str | None = None, debug: bool = False) -> None:
    """Verify an archive `invoke save` wrote, load it into the engine, tag it, and optionally push it."""
    from . import release

    _exit(run(lambda: release.load(archive, push, registry, report, overwrite_immutable, key), debug))


@task(help={"manifest": "manifest to read, for --cache (default: images.yaml)",
            "keep": "untagged images to keep per image name, newest first (default 1)",
            "dry-run": "list what would go and the space it frees; remove nothing",
            "cache": "also bring the artifact cache under JAVABASE_CACHE_MAX (default 5 GB)",
            "debug": "show tracebacks"})
def prune(c: Context, manifest: str | None = None, keep: str = "1", dry_run: bool = False, cache: bool = False,
          debug: bool = False) -> None:
    """Remove images javabase built that no tag points to any more (never another image, a tagged one or a
    container's)."""
    from . import release

    _exit(run(lambda: release.prune(manifest, _whole(keep, "--keep") or 0, dry_run, cache), debug))


@task(help={"manifest": "manifest to find the image's entry in, consulted only when it built the image (default: "
                        "images.yaml here or above)",
            "format": "text or json", "debug": "show tracebacks"})
def inspect(c: Context, reference: str, manifest: str | None = None, format: str = "text", debug: bool = False) -> None:
    """What one built or pushed image is, from its own labels: manifest, entry, platforms, inputs, base, SBOM."""
    from . import release

    _exit(run(lambda: release.inspect(reference, manifest, format), debug))


@task(help={"key": "the team's public key, PEM (default: the manifest's signing.public_key)",
            "manifest": "manifest whose inputs the provenance must record (default: images.yaml here or above)",
            "debug": "show tracebacks"})
def verify(c: Context, reference: str, key: str | None = None, manifest: str | None = None,
           debug: bool = False) -> None:
    """Check an image in the registry: signature, SLSA provenance (and the inputs it records), SBOM."""
    from . import release

    _exit(run(lambda: release.verify(reference, key, manifest), debug))


@task(help={"manifest": "manifest to read for the registry and namespace (default: images.yaml)",
            "registry": "registry HOST[:PORT] to check (default: JAVABASE_REGISTRY, then the manifest)",
            "debug": "show tracebacks"})
def doctor(c: Context, manifest: str | None = None, registry: str | None = None, debug: bool = False) -> None:
    """Check a registry: TLS or HTTP, which CA, which credentials, whether pull and push are allowed."""
    from . import registry as registry_cmds

    _exit(run(lambda: registry_cmds.doctor(manifest, registry), debug))


namespace = Collection(validate, lock, render, plan, build, build_all, push, publish, test, ci, update, save, load,
                       prune, inspect, verify, doctor)
