"""Pure: the labels javabase gives every image. Stable labels depend only on the
inputs (and so are part of them); build labels add time, revision, the parent's
exact image ID and the input digest, in one LABEL instruction appended to the
rendered Dockerfile at build time."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .model import Image, Manifest

if TYPE_CHECKING:
    from .inputs import Inputs
from .templates import dq

INPUT_LABEL = "io.javabase.input-digest"
INPUTS_LABEL = "io.javabase.inputs"
ARTIFACTS_LABEL = "io.javabase.artifacts"
CREATED_LABEL = "org.opencontainers.image.created"
REVISION_LABEL = "org.opencontainers.image.revision"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"


def base_of(manifest: Manifest, image: Image) -> dict[str, str]:
    """What an image is built FROM: name (and digest when pinned). The manifest's
    own registry, not --registry: an image's identity does not depend on where it
    is pushed, so it can be promoted between registries."""
    if image.parent is not None:
        return {"name": manifest.references(manifest.images[image.parent])[0]}
    if image.from_ref == "scratch":
        return {"name": "scratch"}
    name, _, digest = image.from_ref.partition("@")
    return {"name": name, "digest": digest} if digest else {"name": name}


def stable_labels(manifest: Manifest, image: Image) -> dict[str, str]:
    """Labels that depend only on the inputs (not on time or revision)."""
    base = base_of(manifest, image)
    labels = {
        "org.opencontainers.image.title": image.name,
        "org.opencontainers.image.version": image.version or image.tags[0],
        "org.opencontainers.image.base.name": base["name"],
        ARTIFACTS_LABEL: json.dumps([[a.origin if a.url else a.filename, a.sha256] for a in image.artifacts]),
    }
    if "digest" in base:
        labels[BASE_DIGEST_LABEL] = base["digest"]
    if manifest.source:
        labels["org.opencontainers.image.source"] = manifest.source
    return labels


def build_labels(manifest: Manifest, image: Image, *, created: str, revision: str, parent_id: str | None,
                 input_digest: str, input_parts: Mapping[str, str]) -> dict[str, str]:
    labels = stable_labels(manifest, image)
    labels[CREATED_LABEL] = created
    labels[REVISION_LABEL] = revision
    if parent_id is not None:
        labels[BASE_DIGEST_LABEL] = parent_id
    labels[INPUT_LABEL] = input_digest
    labels[INPUTS_LABEL] = json.dumps(dict(input_parts), sort_keys=True)
    return labels


def inputs_label(inputs: Inputs) -> str:
    return json.dumps(dict(inputs.parts), sort_keys=True)


def label_instruction(labels: Mapping[str, str]) -> str:
    body = " \\\n      ".join(f"{key}={dq(value)}" for key, value in sorted(labels.items()))
    return f"# Added by javabase at build time\nLABEL {body}\n"


def with_build_labels(dockerfile: str, image: Image, labels: Mapping[str, str]) -> str:
    """The rendered Dockerfile with one LABEL instruction holding the manifest's
    labels and the build-time ones: the template's own LABEL (written from
    image.labels and description) is taken out, so the build has one label step."""
    own = dict(image.labels)
    if image.description:
        own["org.opencontainers.image.description"] = image.description
    lines = dockerfile.splitlines(keepends=True)
    out: list[str] = []
    continuing = False
    for line in lines:
        if continuing or (own and line.startswith("LABEL ")):
            continuing = line.rstrip("\n").endswith("\\")
            continue
        out.append(line)
    return "".join(out) + label_instruction({**own, **labels})
