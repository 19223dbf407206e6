"""`invoke inspect`: what one built or pushed image is, read from the labels
javabase wrote into it (in this engine, or from its config in the registry),
its manifest entry, the artifacts that refer to it in the registry (SBOM,
signature, provenance) and, with the team's public key, what `verify` checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from ..decide.labels import (
    ARTIFACTS_LABEL,
    BASE_DIGEST_LABEL,
    CERTIFICATES_LABEL,
    IMAGE_LABEL,
    INPUT_LABEL,
    INPUTS_LABEL,
    TESTS_LABEL,
)
from ..engine import Backend
from ..errors import UsageError
from ..manifest.model import Manifest
from ..manifest.references import split_reference
from ..publish.referrers import referrers
from ..publish.registry import Registry, Remote
from . import verify
from .sbom import MEDIA_TYPE as SBOM_TYPE
from .sbom import package_count


def describe(backend: Backend, reference: str, manifest: Manifest | None,
             open_registry: Callable[[str], Registry], public: ec.EllipticCurvePublicKey | None = None
             ) -> dict[str, Any]:
    """What `reference` is, from this engine or else its registry (opened with
    `open_registry(host)`); with `public`, the checks of its signature,
    provenance and SBOM. Raises UsageError when neither has it."""
    found = backend.image(reference)
    repository, tag = split_reference(reference)
    host, name = repository.split("/", 1) if "/" in repository else ("", repository)
    client = open_registry(host) if "." in host or ":" in host else None
    remote = client.manifest(name, tag) if client is not None else None
    if found is not None:
        labels, platforms = dict(found.labels), [found.platform]
    elif client is not None and remote is not None:
        labels, platforms = _from_registry(client, name, json.loads(remote.body), remote.config_digest)
    else:
        raise UsageError(f"{reference}: neither in this engine nor in its registry")
    title = labels.get(IMAGE_LABEL)
    entry = None
    if manifest is not None and title is not None and title in manifest.images:
        entry = f"{manifest.shown}:{manifest.images[title].line} ({manifest.images[title].key})"
    return {
        "reference": reference,
        "image_id": found.id if found is not None else (remote.config_digest if remote else None),
        "manifest_digest": remote.digest if remote is not None else None,
        "where": "this engine" if found is not None else "the registry",
        "image": title,
        "entry": entry,
        "platforms": platforms,
        "input_digest": labels.get(INPUT_LABEL),
        "inputs": json.loads(labels[INPUTS_LABEL]) if INPUTS_LABEL in labels else {},
        "base": {"name": labels.get("org.opencontainers.image.base.name"), "digest": labels.get(BASE_DIGEST_LABEL)},
        "artifacts": [{"source": source, "sha256": sha}
                      for source, sha in json.loads(labels.get(ARTIFACTS_LABEL, "[]"))],
        "certificates": [{"source": source, "sha256": sha, "from": owner}
                         for source, sha, owner in json.loads(labels.get(CERTIFICATES_LABEL, "[]"))],
        "tests": json.loads(labels.get(TESTS_LABEL, "[]")),
        "labels": labels,
        "sbom_packages": _sbom_packages(client, name, remote.digest) if client and remote else None,
        "referrers": [{"artifact_type": r.get("artifactType"), "digest": r.get("digest")}
                      for r in referrers(client, name, remote.digest)] if client and remote else [],
        "checks": _checks(client, name, remote, public) if client and remote and public else [],
    }


def _checks(client: Registry, name: str, remote: Remote, public: ec.EllipticCurvePublicKey) -> list[dict[str, Any]]:
    """What `verify` checks of the manifest under the reference (an index: its signature only)."""
    if remote.config_digest is None:
        checks = [verify.check_signature(client, name, remote.digest, public)]
    else:
        checks = verify.verify_image(client, name, remote.digest, public, None, "")
    return [{"what": c.what, "ok": c.ok, "detail": c.detail} for c in checks]


def _from_registry(client: Registry, name: str, body: dict[str, Any], config_digest: str | None
                   ) -> tuple[dict[str, str], list[str]]:
    """Labels (from the config blob) and platforms of an image or index in the registry."""
    children = body.get("manifests") or []
    platforms = ["/".join(str(m["platform"][k]) for k in ("os", "architecture") if k in m.get("platform", {}))
                 for m in children]
    if config_digest is None and children:
        first = client.manifest(name, children[0]["digest"])
        config_digest = first.config_digest if first is not None else None
    _, _, config = client.request("GET", f"/{name}/blobs/{config_digest}", scope=f"repository:{name}:pull")
    data = json.loads(config)
    if not platforms:
        platforms = [f"{data.get('os', 'linux')}/{data.get('architecture', 'amd64')}"]
    return dict(data.get("config", {}).get("Labels") or {}), platforms


def _sbom_packages(client: Registry, name: str, digest: str) -> int | None:
    """The package count of the SPDX SBOM that refers to `digest`, or None."""
    found = [r for r in referrers(client, name, digest) if r.get("artifactType") == SBOM_TYPE]
    sbom = client.manifest(name, str(found[0].get("digest"))) if found else None
    if sbom is None:
        return None
    layer = json.loads(sbom.body)["layers"][0]["digest"]
    _, _, data = client.request("GET", f"/{name}/blobs/{layer}", scope=f"repository:{name}:pull")
    return package_count(data)


def as_text(info: dict[str, Any]) -> str:
    lines = [f"{info['reference']}  ({info['where']})"]
    lines += [f"  {key.replace('_', ' ')}: {info[key] or '-'}"
              for key in ("image", "entry", "image_id", "manifest_digest", "input_digest")]
    lines.append(f"  platforms: {', '.join(info['platforms']) or '-'}")
    lines.append(f"  base: {info['base']['name'] or '-'} {info['base']['digest'] or ''}".rstrip())
    lines += [f"  artifact: {a['source']} sha256:{a['sha256']}" for a in info["artifacts"]]
    lines += [f"  certificate: {c['source']} sha256:{c['sha256']} (from {c['from']})" for c in info["certificates"]]
    lines += [f"  test: {name}" for name in info["tests"]]
    lines += [f"  input {key}: {value}" for key, value in sorted(info["inputs"].items())]
    lines += [f"  label {key}={value}" for key, value in sorted(info["labels"].items())]
    lines.append(f"  sbom: {'-' if info['sbom_packages'] is None else str(info['sbom_packages']) + ' packages'}")
    lines += [f"  referrer: {r['artifact_type']} {r['digest']}" for r in info["referrers"]]
    lines += [f"  {'ok  ' if c['ok'] else 'FAIL'}  {c['what']}: {c['detail']}" for c in info["checks"]]
    return "\n".join(lines) + "\n"
