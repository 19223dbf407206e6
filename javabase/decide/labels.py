"""Pure: the labels javabase gives every image. Stable labels depend only on the
inputs (and so are part of them); build labels add time, revision, the parent's
exact image ID and the input digest (javabase.plan.render.with_labels writes
them into one LABEL instruction at build time)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ..manifest.model import Image, Manifest

IMAGE_LABEL = "io.javabase.image"  # the manifest's name for the image
# Which manifest built the image, in values that do not depend on where the
# checkout is (labels are inputs): its file name, the image's repository in the
# manifest's own registry and namespace, its entry, and its platforms.
MANIFEST_LABEL = "io.javabase.manifest"
REPOSITORY_LABEL = "io.javabase.repository"
ENTRY_LABEL = "io.javabase.entry"
INPUT_LABEL = "io.javabase.input-digest"
INPUTS_LABEL = "io.javabase.inputs"
ARTIFACTS_LABEL = "io.javabase.artifacts"
CERTIFICATES_LABEL = "io.javabase.certificates"
TESTS_LABEL = "io.javabase.tests"
# "true" on an image a --reproducible (or --frozen) run built and normalised: such a run
# reuses only these; any run may reuse them.
NORMALISED_LABEL = "io.javabase.normalised"
CREATED_LABEL = "org.opencontainers.image.created"
REVISION_LABEL = "org.opencontainers.image.revision"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"


def manifest_name(manifest: Manifest) -> str:
    """The manifest's file name as its images' label holds it: characters other
    than letters, digits and . _ + - become _ (a `${X}` in a file name would be
    replaced by Docker's parser, a line break cannot be written)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", manifest.path.name)


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
        IMAGE_LABEL: image.name,
        MANIFEST_LABEL: manifest_name(manifest),
        REPOSITORY_LABEL: manifest.repository(image),
        ENTRY_LABEL: image.entry,
    }
    if "digest" in base:
        labels[BASE_DIGEST_LABEL] = base["digest"]
    trusted = manifest.trusted(image)
    if trusted:
        # Every company CA the image trusts, and the image of the manifest that put it in.
        labels[CERTIFICATES_LABEL] = json.dumps([[cert.origin if cert.url else cert.filename, cert.sha256, owner.name]
                                                 for owner, cert in trusted])
    if image.tests:
        labels[TESTS_LABEL] = json.dumps([test.name for test in image.tests])
    if manifest.source:
        labels["org.opencontainers.image.source"] = manifest.source
    # The manifest's own descriptive labels (title, version, source) win over these defaults.
    labels.update((key, value) for key, value in image.labels if key in labels)
    return labels


def built_by(manifest: Manifest, labels: Mapping[str, str]) -> Image | None:
    """The manifest's image that an image with these labels is, when this manifest
    built it: the same file name, and the image's repository in the manifest's own
    registry and namespace, under the same entry. None for another manifest's image
    (of the same name, say) and for an image that does not name its manifest."""
    image = manifest.images.get(labels.get(IMAGE_LABEL, ""))
    if image is None or MANIFEST_LABEL not in labels:
        return None
    mine = (manifest_name(manifest), manifest.repository(image), image.entry)
    return image if (labels[MANIFEST_LABEL], labels.get(REPOSITORY_LABEL), labels.get(ENTRY_LABEL)) == mine else None


def build_labels(manifest: Manifest, image: Image, *, created: str, revision: str, parent_id: str | None,
                 input_digest: str, inputs_label: str, normalised: bool = False) -> dict[str, str]:
    """The stable labels and those of this build: time, revision, the parent's
    exact image ID, the input digest and its parts (Inputs.label), and whether
    the run normalises what it builds (NORMALISED_LABEL)."""
    labels = stable_labels(manifest, image)
    if normalised:
        labels[NORMALISED_LABEL] = "true"
    labels[CREATED_LABEL] = created
    labels[REVISION_LABEL] = revision
    if parent_id is not None:
        labels[BASE_DIGEST_LABEL] = parent_id
    labels[INPUT_LABEL] = input_digest
    labels[INPUTS_LABEL] = inputs_label
    return labels
