"""Shared fixtures. Core tests need nothing but Python; the e2e fixtures live in
tests/e2e/conftest.py and use the real engine and registry."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from javabase.errors import ManifestError
from javabase.manifest.load import load_manifest
from javabase.manifest.model import Manifest

SHA_A = "a" * 64
SHA_B = "b" * 64

BASE = f"""\
schema: 1
registry: repo.abc.com
namespace: base
mirrors:
  apk: https://mirrors.tuna.tsinghua.edu.cn/alpine
defaults:
  env:
    LANG: C.UTF-8
  labels:
    org.opencontainers.image.vendor: ABC
images:
  root:
    from: alpine:3.20@sha256:{"c" * 64}
    template: alpine-glibc
    packages: [bash]
    tags: ["3.20"]
  jre:
    from: root
    template: jre
    versions:
      - version: 8u412b08
        home: jdk8u412-b08-jre
        url: https://example.invalid/jre8.tar.gz
        sha256: {SHA_A}
      - version: 17.0.11_9
        home: jdk-17.0.11+9-jre
        url: https://example.invalid/jre17.tar.gz
        sha256: {SHA_B}
    env:
      JAVA_HOME: /usr/java/{{home}}
    tags: ["{{major}}", "{{version}}"]
"""


@pytest.fixture
def write_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Write a manifest as images.yaml in a fresh directory that becomes the cwd."""
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> Path:
        path = tmp_path / "images.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def problems(write_manifest: Callable[[str], Path]) -> Callable[[str], list[str]]:
    """The one-line problems a manifest text produces (fails if it is valid)."""

    def run(text: str) -> list[str]:
        path = write_manifest(text)
        with pytest.raises(ManifestError) as caught:
            load_manifest(path)
        return caught.value.lines()

    return run


@pytest.fixture
def valid(write_manifest: Callable[[str], Path]) -> Callable[[str], Manifest]:
    def run(text: str) -> Manifest:
        return load_manifest(write_manifest(text))

    return run
