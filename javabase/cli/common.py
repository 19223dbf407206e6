"""What every command shares: running one for people (errors as one line and an
exit code), finding and loading the manifest with its lock, resolving flags and
the environment into Settings, opening the engine and the registry, and the
end of a run (its table, report and summary line)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric import ec

from ..build.backends import open_backend
from ..engine import Backend
from ..errors import BuildFailed, Exit, JavabaseError, LockError, NotUpToDate, UsageError, one_line
from ..files import check_writable, remove
from ..manifest.load import load_manifest
from ..manifest.model import Manifest
from ..manifest.references import REGISTRY_RE, split_reference
from ..publish import registry as registries
from ..release.lock import LOCK_NAME, apply_lock, differences, lock_path, read_lock
from ..release.signing import Signer, key_id, load_public_key, load_signer
from ..report import Console, Report, Status
from ..settings import Environment, Settings, default_jobs, push_jobs

DEFAULT_MANIFEST = "images.yaml"


def run(action: Callable[[], int], debug: bool = False, err: TextIO | None = None) -> int:
    """Run a command; a JavabaseError becomes its one-line message(s) and exit code.
    Anything else is a bug: one line too, and the traceback only with --debug."""
    err = err or sys.stderr
    try:
        return action()
    except JavabaseError as exc:
        if debug:
            traceback.print_exc(file=err)
        for line in exc.lines():
            print(f"error: {line}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=err)
        return Exit.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence for people
        if debug:
            traceback.print_exc(file=err)
        print(f"error: internal error: {type(exc).__name__}: {one_line(str(exc))} (run again with --debug for the "
              "traceback)",
              file=err)
        return Exit.INTERNAL


def resolve_manifest(manifest: str | None) -> Path:
    """--manifest as given; by default images.yaml of the current directory, or
    of the nearest directory above it that has one. Raises UsageError when none has."""
    if manifest:
        return Path(manifest)
    here = Path.cwd()
    for directory in (here, *here.parents):
        if (directory / DEFAULT_MANIFEST).is_file():
            return directory / DEFAULT_MANIFEST if directory != here else Path(DEFAULT_MANIFEST)
    raise UsageError(f"no {DEFAULT_MANIFEST} in {here} or any directory above it; pass --manifest PATH")


def load_locked(manifest_path: str | None, frozen: bool = False) -> Manifest:
    """The manifest with FROM lines pinned by its lock file, when there is one.
    frozen: the lock must exist and agree with the manifest, or LockError."""
    manifest = load_manifest(resolve_manifest(manifest_path))
    lock = read_lock(lock_path(manifest))
    if frozen:
        if lock is None:
            raise LockError(f"{manifest.shown}: --frozen needs {LOCK_NAME} next to it; run `invoke lock` and "
                            "commit the file")
        stale = differences(manifest, lock)
        if stale:
            raise LockError(f"{LOCK_NAME} disagrees with {manifest.shown}; nothing was built. Run `invoke lock` "
                            "and commit the result if the change is intended:", stale)
    return apply_lock(manifest, lock) if lock is not None else manifest


def registry_override(flag: str | None, env: Environment) -> str | None:
    """--registry wins, then JAVABASE_REGISTRY; None when neither is set. Raises
    UsageError when the value is not HOST[:PORT]."""
    value = flag or env.registry
    if value is not None and not REGISTRY_RE.match(value):
        raise UsageError(f"registry {value!r} (from {'--registry' if flag else 'JAVABASE_REGISTRY'}) "
                         "is not HOST or HOST:PORT")
    return value


def run_settings(manifest: Manifest, *, registry: str | None = None, jobs: int | None = None,
                 env: Environment | None = None) -> Settings:
    """The settings of one run: flags, then the environment, then the manifest."""
    env = env or Environment.read()
    count = max(1, jobs) if jobs else default_jobs()
    return Settings(
        registry=registry_override(registry, env) or manifest.registry,
        jobs=count,
        push_jobs=push_jobs(count),
        cache_dir=env.cache_dir,
        log_dir=manifest.directory.resolve() / ".javabase" / "logs",
        insecure=frozenset(manifest.insecure_registries) | env.insecure,
        env=env,
        credential_hosts=frozenset({registry_override(registry, env) or manifest.registry}),
    )


def settings_for(host: str, named: bool, env: Environment | None = None) -> Settings:
    """Settings without a manifest (`load`): the registry, the environment's cache.
    named: the host comes from --registry or JAVABASE_REGISTRY (so the
    environment's credentials are for it), not from an archive."""
    env = env or Environment.read()
    count = default_jobs()
    return Settings(registry=host, jobs=count, push_jobs=push_jobs(count), cache_dir=env.cache_dir,
                    log_dir=Path(".javabase") / "logs", insecure=env.insecure, env=env,
                    credential_hosts=frozenset({host}) if named else frozenset())


def open_engine(settings: Settings | None = None, timeout: int = 600) -> Backend:
    """The run's backend, at DOCKER_HOST. Raises EngineError when it does not answer."""
    env = settings.env if settings is not None else Environment.read()
    return open_backend(settings.backend if settings is not None else "docker", where=env.docker_host,
                        timeout=timeout, stall=env.engine_stall)


def open_registry(host: str, settings: Settings, say: Callable[[str], None] = lambda _line: None
                  ) -> registries.Registry:
    """A client for `host` with its credentials, TLS and the run's insecure hosts;
    `say` is told of rate-limit waits."""
    return registries.open_registry(host, settings.env, settings.insecure, settings.credential_hosts, say)


def insecure(manifest: Manifest | None, env: Environment) -> frozenset[str]:
    """Registries that may be plain HTTP: the manifest's and JAVABASE_INSECURE_REGISTRIES."""
    return frozenset(manifest.insecure_registries if manifest else ()) | env.insecure


def fresh_report_path(report: str | None) -> Path | None:
    """--report's path, with the previous run's report removed, so that a run that
    stops early never leaves an old `"ok": true` behind."""
    if not report:
        return None
    path = Path(report)
    check_writable(path.parent if str(path.parent) else Path("."), "the report's directory")
    remove(path, "the previous report")
    return path


def stopped_report(path: Path | None, report: Report, exc: BaseException) -> None:
    """A true report of a run that stopped early: what each image reached, and why it stopped."""
    if path is None:
        return
    report.error = ("\n".join(line.strip() for line in exc.lines()) if isinstance(exc, JavabaseError)
                    else "interrupted")
    report.exit_code = int(exc.exit_code if isinstance(exc, JavabaseError) else Exit.INTERRUPTED)
    report.write_json(path)


def finish(result: Report, report: str | None, console: Console, pushed: bool,
           expect_up_to_date: bool = False) -> int:
    """Print the table, write the report with the exit code this run ends with,
    and raise it: BuildFailed when an image failed, NotUpToDate when
    `expect_up_to_date` and anything had to be built or pushed."""
    failure = _failure(result, expect_up_to_date)
    if failure is not None:
        result.error = "\n".join(failure.lines())
        result.exit_code = int(failure.exit_code)
    console.info("")
    console.info(result.table().rstrip("\n"))
    if report:
        result.write_json(Path(report))
        console.info(f"report written to {report}")
    if failure is not None:
        raise failure
    if pushed:
        console.info(pushed_summary(result))
    return 0


def _failure(result: Report, expect_up_to_date: bool) -> JavabaseError | None:
    failed = [r for r in result.results.values() if r.status == Status.FAILED]
    if failed or not result.ok:
        first = failed[0].reason if failed else ""
        return BuildFailed(f"{result.count(Status.FAILED)} image(s) failed, {result.count(Status.SKIPPED)} skipped"
                           + (f"; first failure: {failed[0].name}: {first}" if failed else "")
                           + (f"; full log: {failed[0].log_path}" if failed and failed[0].log_path else ""))
    undone = [r.name for r in result.results.values() if r.status in (Status.BUILT, Status.PUSHED)]
    if expect_up_to_date and undone:
        return NotUpToDate(f"--expect-up-to-date: {', '.join(undone)} had to be built or pushed; the jobs before "
                           "this one did not build and push everything (see the table above)")
    return None


def pushed_summary(result: Report) -> str:
    """Which repositories got a tag now; or that every tag was there already."""
    fresh = sorted({split_reference(ref)[0] for r in result.results.values() for ref in r.pushed
                    if ref not in r.already_in_registry})
    if not fresh:
        return f"nothing pushed to {result.registry}: every tag already held its image"
    return f"pushed to {result.registry}: " + ", ".join(fresh)


def signer_from(env: Environment) -> Signer:
    """The team's private key from JAVABASE_SIGNING_KEY (PEM) or JAVABASE_SIGNING_KEY_FILE.
    Raises UsageError when neither is set or the key cannot be read."""
    if env.signing_key:
        return load_signer(env.signing_key.encode(), env.signing_key_password, "JAVABASE_SIGNING_KEY")
    if env.signing_key_file:
        try:
            pem = Path(env.signing_key_file).read_bytes()
        except OSError as exc:
            raise UsageError(f"JAVABASE_SIGNING_KEY_FILE {env.signing_key_file}: cannot read it "
                             f"({exc.strerror or exc})") from None
        return load_signer(pem, env.signing_key_password, f"JAVABASE_SIGNING_KEY_FILE {env.signing_key_file}")
    raise UsageError("signing needs the team's private key: set JAVABASE_SIGNING_KEY (the PEM, a CI secret) or "
                     "JAVABASE_SIGNING_KEY_FILE, and JAVABASE_SIGNING_KEY_PASSWORD when it is encrypted")


def signing(manifest: Manifest, env: Environment, sign: bool, push: bool
            ) -> tuple[Signer | None, ec.EllipticCurvePublicKey | None]:
    """The run's signer and trust key: a manifest with signing.public_key signs
    every push (with the matching private key) and reuses only what verifies;
    --sign signs without one. Raises UsageError."""
    trust = load_public_key(manifest.signing_key) if manifest.signing_key is not None else None
    if not push or not (sign or trust is not None):
        return None, trust
    signer = signer_from(env)
    if trust is not None and key_id(signer.public) != key_id(trust):
        raise UsageError(f"the signing key (JAVABASE_SIGNING_KEY...) is not the one {manifest.shown}'s "
                         f"signing.public_key names ({key_id(trust)[:16]}); use that key's private half")
    return signer, trust
