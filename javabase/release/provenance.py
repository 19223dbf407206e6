"""Where a build comes from: its source revision and its timestamp.

SOURCE_DATE_EPOCH wins when set; otherwise the time of the last commit that
touched the manifest or the templates, so that rebuilding a commit gives the
same `created` label. When git cannot say (not installed, not a checkout,
"dubious ownership"), the revision is "unknown" and the time is now, and the
Provenance says so in `warnings`: a --frozen build refuses to run without a
reproducible time (javabase.cli.ship)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..clock import rfc3339


@dataclass(frozen=True)
class Provenance:
    epoch: int  # the build's time (SOURCE_DATE_EPOCH or the last commit), seconds since the epoch
    revision: str  # the checkout's commit, or "unknown"
    warnings: tuple[str, ...] = ()  # what could not be read, for people
    reproducible: bool = True  # whether `epoch` comes from SOURCE_DATE_EPOCH or git, not the clock

    @property
    def created(self) -> str:
        return rfc3339(self.epoch)


def _git(args: list[str], cwd: Path) -> tuple[str | None, str]:
    """git's output, or None and why not."""
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"git did not run ({type(exc).__name__}: {exc})"
    out = result.stdout.strip()
    if result.returncode == 0 and out:
        return out, ""
    lines = result.stderr.strip().splitlines()
    return None, f"git {args[0]} failed: {lines[0] if lines else f'exit {result.returncode}'}"


def provenance(manifest_path: Path, templates: tuple[Path, ...], source_date_epoch: int | None) -> Provenance:
    """The revision of the manifest's git checkout and the build's time: SOURCE_DATE_EPOCH
    (`source_date_epoch`), else the last commit of the manifest and its templates."""
    where = manifest_path.resolve().parent
    revision, why_not = _git(["rev-parse", "HEAD"], where)
    warnings = [] if revision else [f"the revision label is \"unknown\": {why_not}"]
    if source_date_epoch is not None:
        return Provenance(source_date_epoch, revision or "unknown", tuple(warnings))
    top, why_not = _git(["rev-parse", "--show-toplevel"], where)
    # Only paths of this checkout: javabase's own templates may be installed elsewhere.
    paths = [str(p.resolve()) for p in (manifest_path, *templates) if top and p.resolve().is_relative_to(top)]
    last, why_not = _git(["log", "-1", "--format=%ct", "--", *paths], where) if paths else (None, why_not)
    if last and last.isdigit():
        return Provenance(int(last), revision or "unknown", tuple(warnings))
    warnings.append(f"the images' created time is the current time, so rebuilding gives other image IDs: "
                    f"{why_not or 'the manifest has no commit yet'}; set SOURCE_DATE_EPOCH or commit the manifest")
    return Provenance(int(time.time()), revision or "unknown", tuple(warnings), reproducible=False)
