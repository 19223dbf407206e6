"""Pure: what determines each image, as named parts and one input digest.

An image is rebuilt only when its input digest changes. The parts are kept in
a label so that `plan` can say which input changed. A child's parts include
its parent's digest, so a changed parent changes every descendant."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..manifest.model import Image, Manifest
from ..plan.order import Unit
from ..plan.render import dockerfile_path
from .labels import ARTIFACTS_LABEL, stable_labels

DIGEST_VERSION = "1"


def _sha(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Inputs:
    parts: Mapping[str, str]
    digest: str

    @property
    def label(self) -> str:
        """The parts as the io.javabase.inputs label holds them."""
        return json.dumps(dict(self.parts), sort_keys=True)

    def changed_since(self, old_parts: Mapping[str, str]) -> list[str]:
        """Names of the parts that differ from an earlier build's parts."""
        names = sorted(set(self.parts) | set(old_parts))
        return [n for n in names if self.parts.get(n) != old_parts.get(n)]


def compute_inputs(manifest: Manifest, order: Sequence[str | Unit], rendered: Mapping[str, str]
                   ) -> dict[str, Inputs]:
    """Inputs of every image (or image and platform) in `order`, parents first,
    by unit key (the image's name for a single-platform image)."""
    out: dict[str, Inputs] = {}
    for item in order:
        unit = item if isinstance(item, Unit) else Unit(item)
        image = manifest.images[unit.name]
        # Artifact URLs are provenance, not content: the parts hold their sha256.
        labels = {k: v for k, v in stable_labels(manifest, image).items() if k != ARTIFACTS_LABEL}
        parent = Unit(image.parent, unit.platform).key if image.parent is not None else None
        out[unit.key] = _inputs(image, unit.platform, rendered, labels, out, parent)
    return out


def _inputs(image: Image, platform: str | None, rendered: Mapping[str, str], labels: Mapping[str, str],
            done: Mapping[str, Inputs], parent: str | None) -> Inputs:
    parts: dict[str, str] = {
        "dockerfile": _sha(rendered[dockerfile_path(image)]),
        "build args": _sha(sorted(image.build_args)),
        "network": {"none": "no", "default": "yes"}.get(image.network_mode, image.network_mode),
        "labels": _sha(dict(labels)),
    }
    if platform is not None:
        parts["platform"] = platform
    for artifact in image.artifacts_for(platform):
        parts[f"artifact {artifact.filename}"] = artifact.sha256[:16]
    if image.tests:
        # An image is tagged only after the tests it declares passed in it: other tests, another image.
        parts["tests"] = _sha([{k: v for k, v in dataclasses.asdict(test).items() if k not in ("key", "line")}
                               for test in image.tests])
    if image.parent is not None and parent is not None:
        parts[f"parent {image.parent}"] = done[parent].digest.split(":")[1][:16]
    else:
        parts[f"base {image.from_ref}"] = _sha(image.from_ref)
    digest = "sha256:" + hashlib.sha256(json.dumps([DIGEST_VERSION, parts], sort_keys=True).encode()).hexdigest()
    return Inputs(parts, digest)
