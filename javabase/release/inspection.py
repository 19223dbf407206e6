"""`invoke inspect`: what one built or pushed image is, read from the labels
javabase wrote into it (in this engine, or from its config in the registry),
its manifest entry, the artifacts that refer to it in the registry (SBOM,
signature, provenance) and, with the team's public key, what `verify` checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from ..decide.labels import (
    ARTIFACTS_LABEL,
    BASE_DIGEST_LABEL,
    CERTIFICATES_LABEL,
    ENTRY_LABEL,
    IMAGE_LABEL,
    INPUT_LABEL,
    INPUTS_LABEL,
    MANIFEST_LABEL,
    REPOSITORY_LABEL,
    TESTS_LABEL,
    built_by,
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
    `open_registry(host)`): what its own labels say (its manifest's file name, its
    repository and entry) and its platforms (the index's in the registry; in the
    engine its own, or all the manifest's). `manifest` is consulted (its line and key, and
    with `public`, its signing key, the checks of the signature, provenance and SBOM)
    only when it is the manifest that built the image (labels.built_by). Raises
    UsageError when neither the engine nor the registry has it."""
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
    image = built_by(manifest, labels) if manifest is not None else None
    platforms = list(image.platforms) if found is not None and image is not None and image.platforms else platforms
    return {
        "reference": reference,
        "image_id": found.id if found is not None else (remote.config_digest if remote else None),
        "manifest_digest": remote.digest if remote is not None else None,
        "where": "this engine" if found is not None else "the registry",
        "image": labels.get(IMAGE_LABEL),
        "manifest": labels.get(MANIFEST_LABEL),
        "repository": labels.get(REPOSITORY_LABEL),
        "entry": f"{manifest.shown}:{image.line} ({image.key})" if manifest and image else labels.get(ENTRY_LABEL),
        "consulted": manifest.shown if manifest is not None and image is not None else None,
        "note": _not_consulted(manifest, labels) if image is None else None,
        "platform": found.platform if found is not None else None,
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
        "checks": _checks(client, name, remote, public) if client and remote and public and image else [],
    }


def _not_consulted(manifest: Manifest | None, labels: Mapping[str, str]) -> str:
    """Why no manifest's line is shown: none at hand, or not the one that built the image."""
    said = (f"its labels name {labels[MANIFEST_LABEL]} of {labels.get(REPOSITORY_LABEL)}, entry "
            f"{labels.get(ENTRY_LABEL)}" if MANIFEST_LABEL in labels
            else "its labels name no manifest (built before javabase recorded it)")
    if manifest is None:
        return f"no manifest at hand; {said}"
    return f"{manifest.shown} did not build this image, so it was not consulted: {said}"


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
    labels = dict(data.get("config", {}).get("Labels") or {})
    if not platforms:
        platforms = [f"{data.get('os', 'linux')}/{data.get('architecture', 'amd64')}"]
    return labels, platforms


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
    def shown(*keys: str) -> list[str]:
        return [f"  {key.replace('_', ' ')}: {info[key] or '-'}" for key in keys]

    lines = [f"{info['reference']}  ({info['where']})", *shown("image", "manifest", "repository", "entry")]
    lines += [f"  note: {info['note']}"] if info["note"] else []
    lines += shown("image_id", "manifest_digest", "input_digest")
    this = f" (this one: {info['platform']})" if info["platform"] and len(info["platforms"]) > 1 else ""
    lines.append(f"  platforms: {', '.join(info['platforms']) or '-'}{this}")
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
