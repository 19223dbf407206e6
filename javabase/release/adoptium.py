"""Eclipse Temurin from Adoptium's API v3: the newest GA release of one major for
one os and image type, with each architecture's package (its link, sha256
checksum and detached signature link).

Field names are the API's, as its model classes name them (adoptium/api.adoptium.net:
Release: release_name, version_data, binaries; Binary: os, architecture,
image_type, jvm_impl, heap_size, project, package; Package: name, link, checksum,
signature_link; VersionData: major, minor, security, patch, build,
adopt_build_number, semver). The endpoint is GET
/v3/assets/feature_releases/{major}/ga (a list of releases, newest first). Every
field read is checked: an answer of another shape is one UpstreamError line.

Also Temurin's naming: file names (OpenJDK17U-jre_x64_linux_hotspot_17.0.11_9.tar.gz),
the version strings a manifest uses (8u412b08, 17.0.11_9) and their order."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..errors import UpstreamError

DEFAULT_API = "https://api.adoptium.net"
WHAT = "the Adoptium API"
# Docker's platforms -> Adoptium's architectures.
ARCHITECTURES = {"linux/amd64": "x64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64",
                 "linux/ppc64le": "ppc64le", "linux/s390x": "s390x", "linux/arm/v7": "arm",
                 "linux/riscv64": "riscv64"}
OPERATING_SYSTEMS = {"glibc": "linux", "musl": "alpine-linux"}  # c_lib -> Adoptium's os of its JRE/JDK builds
FILE_RE = re.compile(r"^OpenJDK(?P<major>\d+)U?-(?P<image_type>jre|jdk)_(?P<arch>[a-z0-9-]+?)_"
                     r"(?P<os>alpine-linux|linux|mac|windows|aix|solaris)_hotspot_(?P<version>[A-Za-z0-9._+-]+?)"
                     r"\.(?:tar\.gz|zip)$")
TEMURIN_URL_RE = re.compile(r"^https://github\.com/adoptium/temurin\d+-binaries/releases/download/[^/]+/[^/]+$")
_SHA_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
VersionKey = tuple[int, int, int, int, int, int]  # major, minor, security, patch, build, adopt_build_number


@dataclass(frozen=True)
class Query:
    """What to ask for: one major, image type (jre, jdk) and os (linux, alpine-linux),
    with a package for each architecture (x64, aarch64)."""

    major: int
    image_type: str
    os: str
    architectures: tuple[str, ...]

    def describe(self) -> str:
        return f"Temurin {self.major} {self.image_type} for {self.os} {'+'.join(self.architectures)}"


@dataclass(frozen=True)
class Package:
    """One architecture's tarball in a release (Binary.package)."""

    architecture: str
    name: str  # file name, e.g. OpenJDK17U-jre_x64_linux_hotspot_17.0.11_9.tar.gz
    link: str  # download URL
    checksum: str  # sha256, 64 lower-case hex digits
    signature_link: str | None  # detached OpenPGP signature, when Adoptium published one


@dataclass(frozen=True)
class Offer:
    """The newest GA release that has a package for every architecture asked for."""

    release_name: str  # jdk-17.0.11+9, jdk8u412-b08
    semver: str  # 17.0.11+9, 8.0.412+8
    key: VersionKey
    packages: Mapping[str, Package]  # by architecture

    @property
    def version(self) -> str:
        """The version as Temurin's file names write it (17.0.11_9, 8u412b08): what a manifest's `version` holds."""
        for package in self.packages.values():
            match = FILE_RE.match(package.name)
            if match:
                return match.group("version")
        return file_version(self.release_name)

    def home(self, image_type: str) -> str:
        """The directory the tarball unpacks to, as Temurin names it (jdk-17.0.11+9-jre; the JDK without -jre)."""
        return f"{self.release_name}-jre" if image_type == "jre" else self.release_name


def file_version(release_name: str) -> str:
    """jdk-17.0.11+9 -> 17.0.11_9; jdk8u412-b08 -> 8u412b08."""
    name = release_name.removeprefix("jdk-").removeprefix("jdk")
    return name.replace("+", "_") if "+" in name else name.replace("-", "")


def version_key(version: str) -> VersionKey | None:
    """A manifest's version string in Temurin's order: 8u412b08 -> (8, 0, 412, 0, 8, 0),
    17.0.11_9 -> (17, 0, 11, 0, 9, 0), 17.0.4.1_1 -> (17, 0, 4, 1, 1, 0); None when it is neither form."""
    old = re.fullmatch(r"(\d+)u(\d+)-?b(\d+)", version)
    if old:
        return int(old[1]), 0, int(old[2]), 0, int(old[3]), 0
    new = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:[_+](\d+))?", version)
    if new:
        major, minor, security, patch, build = (int(part or 0) for part in new.groups())
        return major, minor, security, patch, build, 0
    return None


def releases_url(api: str, query: Query, page_size: int = 20) -> str:
    """GET /v3/assets/feature_releases/{major}/ga for the query's os and image type (every architecture)."""
    params = {"heap_size": "normal", "image_type": query.image_type, "jvm_impl": "hotspot", "os": query.os,
              "page_size": str(page_size), "project": "jdk", "sort_method": "DEFAULT", "sort_order": "DESC",
              "vendor": "eclipse"}
    return f"{api.rstrip('/')}/v3/assets/feature_releases/{query.major}/ga?{urlencode(params)}"


def newest(get_json: Callable[[str], Any], api: str, query: Query) -> tuple[Offer | None, list[str]]:
    """(the newest GA release with a package for every architecture of the query,
    or None when the API has none; notes, e.g. that a newer release lacks one
    architecture yet). get_json(url) returns the parsed answer, None for a 404;
    raises UpstreamError when the API cannot be reached or answers another shape."""
    url = releases_url(api, query)
    answer = get_json(url)
    if answer is None:
        return None, [f"{WHAT} has no GA release of {query.describe()}"]
    if not isinstance(answer, list):
        raise _garbage(url, f"a {type(answer).__name__} where a list of releases belongs")
    offers = sorted((_offer(url, release, query) for release in answer), key=lambda o: o.key, reverse=True)
    notes: list[str] = []
    for offer in offers:
        missing = [a for a in query.architectures if a not in offer.packages]
        if not missing:
            return offer, notes
        notes.append(f"{offer.release_name} has no {', '.join(missing)} {query.image_type} for {query.os} yet")
    return None, notes or [f"{WHAT} has no GA release of {query.describe()}"]


def _garbage(url: str, what: str) -> UpstreamError:
    return UpstreamError(f"{WHAT} answered something that is not its v3 format for {url} ({what}); nothing was "
                         "changed")


def _field(url: str, data: Any, key: str, kind: type, where: str) -> Any:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _garbage(url, f"{where}.{key} is {type(value).__name__ if value is not None else 'missing'}, "
                            f"not a {kind.__name__}")
    return value


def _offer(url: str, release: Any, query: Query) -> Offer:
    name = _field(url, release, "release_name", str, "release")
    data = _field(url, release, "version_data", dict, name)
    parts = [_field(url, data, k, int, f"{name}.version_data") for k in ("major", "minor", "security", "build")]
    patch = data.get("patch") if isinstance(data.get("patch"), int) else 0
    adopt = data.get("adopt_build_number") if isinstance(data.get("adopt_build_number"), int) else 0
    if parts[0] != query.major:
        raise _garbage(url, f"{name} is Java {parts[0]}, asked for {query.major}")
    if release.get("release_type", "ga") != "ga" or not _NAME_RE.match(name):
        raise _garbage(url, f"{name!r} is not a GA release name")
    packages = {}
    for index, binary in enumerate(_field(url, release, "binaries", list, name)):
        where = f"{name}.binaries[{index}]"
        chosen = {k: _field(url, binary, k, str, where) for k in ("os", "architecture", "image_type", "jvm_impl")}
        if (chosen["os"], chosen["image_type"], chosen["jvm_impl"]) != (query.os, query.image_type, "hotspot") \
                or binary.get("heap_size", "normal") != "normal" or binary.get("project", "jdk") != "jdk":
            continue
        packages[chosen["architecture"]] = _package(url, chosen["architecture"],
                                                    _field(url, binary, "package", dict, where), f"{where}.package")
    key: VersionKey = (parts[0], parts[1], parts[2], patch, parts[3], adopt)
    return Offer(name, str(data.get("semver") or name), key, packages)


def _package(url: str, architecture: str, package: dict[str, Any], where: str) -> Package:
    name = _field(url, package, "name", str, where)
    link = _field(url, package, "link", str, where)
    checksum = _field(url, package, "checksum", str, where)
    signature = package.get("signature_link")
    if not _NAME_RE.match(name) or not re.match(r"^https?://\S+$", link):
        raise _garbage(url, f"{where}: {name!r} at {link!r} is not a file name and an http(s) URL")
    if not _SHA_RE.match(checksum):
        raise _garbage(url, f"{where}.checksum {checksum!r} is not a sha256")
    if signature is not None and not (isinstance(signature, str) and re.match(r"^https?://\S+$", signature)):
        raise _garbage(url, f"{where}.signature_link {signature!r} is not an http(s) URL")
    return Package(architecture, name, link, checksum.lower(), signature or None)
