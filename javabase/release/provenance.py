"""Where a build comes from: its source revision and its timestamp.

SOURCE_DATE_EPOCH wins when set; otherwise the time of the last commit that
touched the manifest or the templates, so that rebuilding a commit gives the
same `created` label; outside git, the current time."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..clock import rfc3339


@dataclass(frozen=True)
class Provenance:
    epoch: int
    revision: str

    @property
    def created(self) -> str:
        return rfc3339(self.epoch)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    out = result.stdout.strip()
    return out if result.returncode == 0 and out else None


def provenance(manifest_path: Path, templates: tuple[Path, ...], source_date_epoch: int | None) -> Provenance:
    """The revision of the manifest's git checkout and the build's time: SOURCE_DATE_EPOCH
    (`source_date_epoch`), else the last commit of the manifest and its templates."""
    where = manifest_path.resolve().parent
    revision = _git(["rev-parse", "HEAD"], where) or "unknown"
    if source_date_epoch is not None:
        return Provenance(source_date_epoch, revision)
    top = _git(["rev-parse", "--show-toplevel"], where)
    # Only paths of this checkout: javabase's own templates may be installed elsewhere.
    paths = [str(p.resolve()) for p in (manifest_path, *templates) if top and p.resolve().is_relative_to(top)]
    last = _git(["log", "-1", "--format=%ct", "--", *paths], where) if paths else None
    return Provenance(int(last) if last and last.isdigit() else int(time.time()), revision)
