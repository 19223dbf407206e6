"""Make a built image a function of its inputs: export it, rewrite what the
classic builder stamps with the build time, load it back.

- the config's `created` and every history entry are clamped to SOURCE_DATE_EPOCH,
  and the build container's ID and settings (`container`, `container_config`,
  `config.Image`: the ID of the previous build step) are dropped;
- in every layer this image adds, file mtimes are clamped to the epoch and only
  extended attributes are kept of the PAX records; the order of entries is kept;
- layers that come from the base image are not touched (and not even written
  to the archive: the engine already has them), so they stay byte-identical.

The image ID is the sha256 of the rewritten config, so the same inputs give
the same ID, and pushing gives the same manifest digest. Talks to the engine
only through the engine object passed in."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

from ..clock import parse_time, rfc3339
from ..engine import Backend
from ..errors import StepError


class _HashingWriter(io.RawIOBase):
    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self.digest.update(view)
        self.sink.write(view)
        return len(view)


def normalize_layer(source: IO[bytes], dest: Path, epoch: int) -> str:
    """Rewrite one layer tar with clamped mtimes; return its diff ID (sha256 of the tar)."""
    with dest.open("wb") as raw:
        writer = _HashingWriter(raw)
        with tarfile.open(fileobj=source, mode="r|") as tin, \
                tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tout:
            for member in tin:
                info = tarfile.TarInfo(member.name)
                info.type, info.mode, info.size = member.type, member.mode, member.size
                info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, member.uname, member.gname
                info.linkname, info.devmajor, info.devminor = member.linkname, member.devmajor, member.devminor
                info.mtime = min(int(member.mtime), epoch)
                info.pax_headers = {k: v for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr.")}
                tout.addfile(info, tin.extractfile(member) if member.isreg() else None)
    return "sha256:" + writer.digest.hexdigest()


def normalize_image(engine: Backend, image_id: str, base_ref: str | None, epoch: int,
                    workdir: Path | None = None) -> str:
    """Rewrite `image_id` (built FROM `base_ref`, or FROM scratch when None) and load
    the result; return the new image ID. The original image is removed with its
    intermediate images (which would otherwise pin the base as their parent)."""
    base = engine.image(base_ref) if base_ref else None
    keep = len(base.layers) if base else 0
    with tempfile.TemporaryDirectory(prefix="javabase-normalize-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        archive = tmp / "image.tar"
        engine.export(image_id, archive)
        out_path = tmp / "normalized.tar"
        with tarfile.open(archive) as tar, tarfile.open(out_path, "w") as out:
            manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            config = json.load(tar.extractfile(manifest["Config"]))  # type: ignore[arg-type]
            diff_ids = list(config["rootfs"]["diff_ids"])
            layers = list(manifest["Layers"])
            for index in range(keep, len(layers)):
                member = tar.extractfile(layers[index])
                if member is None:
                    raise StepError(f"normalize {image_id[7:19]}: layer {layers[index]} is missing from the "
                                    "engine's export")
                layer_file = tmp / f"layer-{index}.tar"
                diff_ids[index] = normalize_layer(member, layer_file, epoch)
                layers[index] = f"{diff_ids[index].split(':')[1]}/layer.tar"
                out.add(layer_file, arcname=layers[index])
            config["rootfs"]["diff_ids"] = diff_ids
            config["created"] = rfc3339(epoch)
            for entry in config.get("history") or []:
                if parse_time(str(entry.get("created", ""))) > epoch:
                    entry["created"] = rfc3339(epoch)
            for volatile in ("container", "container_config"):
                config.pop(volatile, None)
            if isinstance(config.get("config"), dict):
                config["config"]["Image"] = ""  # the ID of the build's previous step
            config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
            new_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            _add_bytes(out, f"{new_id.split(':')[1]}.json", config_bytes)
            listing = [{"Config": f"{new_id.split(':')[1]}.json", "RepoTags": None, "Layers": layers}]
            _add_bytes(out, "manifest.json", json.dumps(listing).encode())
        if new_id != image_id:
            engine.load(out_path)
            engine.remove(image_id)
    return new_id


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
