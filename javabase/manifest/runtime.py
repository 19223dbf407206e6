"""Pure: the keys that say how an image behaves when it runs, after defaults:
company CAs (`certificates`), the non-root user (`user` as a mapping), `fonts`,
`jvm_options`, and the checks of the whole manifest that need every image
(fonts on the alpine-glibc line). Called by javabase.manifest.expand, which
owns the problems list; this module reaches it only through `Expanding`."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from . import references as refs
from .model import Account, Artifact, Image
from .values import shell_word_reason
from .yamlsource import Path_

CERTIFICATE_DEST = "/tmp/javabase/certificates/"
CERTIFICATE_SUFFIXES = (".crt", ".pem")
# The package manager of javabase's templates, by template name, and the
# packages `fonts: true` installs with it (the DejaVu fonts, as
# adoptium/containers and the Debian JRE images install them).
TEMPLATE_FAMILY = {"alpine-glibc": "alpine", "jre": "alpine", "debian": "debian"}
FONT_PACKAGES = {"alpine": ("fontconfig", "ttf-dejavu"), "debian": ("fontconfig", "fonts-dejavu-core")}
GLIBC_ON_ALPINE = "alpine-glibc"
JAVA_TOOL_OPTIONS = "JAVA_TOOL_OPTIONS"


class Expanding(Protocol):
    """What these rules need of javabase.manifest.expand.Expander."""

    def problem(self, path: Path_, message: str) -> None: ...

    def safe(self, value: str, path: Path_, what: str, position: str) -> bool: ...

    def substitute(self, text: str, variables: Mapping[str, str], path: Path_) -> str: ...

    def user(self, user: Any, path: Path_) -> str | None: ...

    def packages(self, raw: Any, path: Path_) -> list[str]: ...

    def artifact(self, item: dict[str, Any], path: Path_, default_dest: str, unpack: bool,
                 named: bool = True, key_path: Path_ | None = None) -> Artifact | None: ...


def own_or_default(raw: Mapping[str, Any], defaults: Mapping[str, Any], base: Path_, key: str
                   ) -> tuple[Any, Path_]:
    """An image's own value of `key` and where it is, else the default's."""
    if key in raw:
        return raw[key], (*base, key)
    return defaults.get(key), ("defaults", key)


def built_from_outside(raw: Mapping[str, Any]) -> bool:
    """Whether an entry is built FROM outside the manifest (or scratch): such an
    image is where defaults.certificates go; the images FROM it inherit them."""
    source = raw.get("from")
    return isinstance(source, str) and (source == "scratch" or refs.looks_outside(source))


def certificates(ex: Expanding, raw: Mapping[str, Any], defaults: Mapping[str, Any], base: Path_) -> list[Artifact]:
    """The image's certificate files: defaults' (for an image built FROM outside
    the manifest), then its own."""
    lists: list[tuple[Any, Path_]] = []
    if built_from_outside(raw):
        lists.append((defaults.get("certificates"), ("defaults", "certificates")))
    lists.append((raw.get("certificates"), (*base, "certificates")))
    out: list[Artifact] = []
    for items, path in lists:
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            found = ex.artifact(item, (*path, index), CERTIFICATE_DEST, False)
            if found is None:
                continue
            if not found.filename.endswith(CERTIFICATE_SUFFIXES):
                ex.problem((*path, index), f"certificate file {found.filename!r} does not end in .crt or .pem; "
                                           "give it a `name` that does (its alias is the name without it)")
                continue
            out.append(replace(found, certificate=True))
    return out


def user(ex: Expanding, raw: Any, path: Path_) -> tuple[str | None, Account | None]:
    """(the USER value, the account to create): a string is a USER that must
    exist; a mapping is an account with a fixed UID that the template creates."""
    if not isinstance(raw, dict):
        return ex.user(raw, path), None
    name, uid = raw.get("name"), raw.get("uid")
    group, gid = raw.get("group", name), raw.get("gid", uid)
    home = raw.get("home", f"/home/{name}")
    if not (isinstance(name, str) and isinstance(group, str) and isinstance(home, str)
            and isinstance(uid, int) and isinstance(gid, int)):
        return None, None  # the schema said why
    for key, value in (("name", name), ("group", group), ("home", home)):
        reason = shell_word_reason(value)
        if reason:  # the schema's patterns allow none of these for name and group; the rule says so anyway
            ex.problem((*path, key), f"{key} {value!r} {reason}")
            return None, None
    if not home.startswith("/") or home == "/" or posixpath.normpath(home) != home:
        # the template chowns it to the user: / or a path through .. would hand a system directory over
        ex.problem((*path, "home"), f"home {home!r} is not a directory of its own; give an absolute path such as "
                                    f"/home/{name}, without . or .. components")
        return None, None
    account = Account(name, uid, group, gid, home)
    return account.user, account


def fonts(ex: Expanding, value: Any, path: Path_, template: Any) -> tuple[bool, tuple[str, ...]]:
    """(whether the image must have fonts, the packages its template installs for them)."""
    if value is None or value is False:
        return False, ()
    family = TEMPLATE_FAMILY.get(template) if isinstance(template, str) else None
    if value is True:
        return True, FONT_PACKAGES[family] if family else ()
    packages = ex.packages(value, path)
    if family is None:
        ex.problem(path, f"template {template!r} installs no packages; write `fonts: true` (the image then only "
                         "checks that fontconfig finds a font, which its base must bring)")
        return True, ()
    return True, ("fontconfig", *(p for p in packages if p != "fontconfig"))


def jvm_options(ex: Expanding, value: Any, path: Path_, variables: Mapping[str, str], env: dict[str, str]) -> None:
    """Add JAVA_TOOL_OPTIONS for `jvm_options` to `env`."""
    if not isinstance(value, list):
        return
    options = []
    for index, option in enumerate(value):
        if not isinstance(option, str):
            continue
        option = ex.substitute(option, variables, (*path, index))
        if not option.startswith("-") or any(ch.isspace() for ch in option) or not option.strip("-"):
            ex.problem((*path, index), f"JVM option {option!r} must start with '-' and hold no space "
                                       f"({JAVA_TOOL_OPTIONS} is split at spaces); one option per item")
        elif ex.safe(option, (*path, index), "JVM option", "quoted"):
            options.append(option)
    if options and JAVA_TOOL_OPTIONS in env:
        ex.problem(path, f"env sets {JAVA_TOOL_OPTIONS} too, which jvm_options writes; give the options in one place")
    elif options:
        env[JAVA_TOOL_OPTIONS] = " ".join(options)


def check_fonts_line(ex: Expanding, images: Mapping[str, Image], font_keys: Mapping[str, Path_]) -> None:
    """Fonts cannot work on the alpine-glibc line: Alpine's fontconfig is built
    against musl, and a glibc JVM either finds none or loads it and crashes."""
    for name, image in images.items():
        if not image.fonts or name not in font_keys:
            continue
        current: Image | None = image
        seen = 0
        while current is not None and seen <= len(images):
            if current.template == GLIBC_ON_ALPINE:
                ex.problem(font_keys[name], "fonts cannot work on the alpine-glibc line: Alpine's fontconfig is "
                                            "built for musl, and a glibc JVM finds no font or loads it and crashes "
                                            "(AdoptOpenJDK/openjdk-docker#520, bell-sw/Liberica#25); give fonts to "
                                            "an image with a musl JRE (the jre*-alpine ones) or a Debian root")
                break
            current = images.get(current.parent) if current.parent else None
            seen += 1
