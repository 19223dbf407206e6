"""Whether an engine can build for a foreign platform, found out before the
first build for it rather than at its first RUN step.

The check is the step itself: the engine builds, with no cache and no
network, an image FROM scratch whose one RUN step is a program of that
platform (a minimal static ELF executable that only calls exit(0), made
here: `probe`). When the engine cannot run it, and the engine is on this
host, its binfmt_misc entry (Linux's Documentation/admin-guide/binfmt-misc)
says why: missing, disabled, its interpreter gone, or registered without the
F flag that lets containers use it."""

from __future__ import annotations

import struct
from pathlib import Path

from ..engine import Backend

BINFMT = Path("/proc/sys/fs/binfmt_misc")

# Linux machine numbers (e_machine), byte order and the code of exit(0) per architecture.
_FLAGS = {"ppc64le": 2}  # e_flags: ppc64le programs are ELFv2 (the entry point is code, not a descriptor)
_CODE: dict[str, tuple[int, str, bytes]] = {
    # mov edi, 0 (xor edi, edi); mov eax, 60 (exit); syscall
    "amd64": (0x3E, "<", bytes.fromhex("31ffb83c0000000f05")),
    # mov x0, #0; mov x8, #93 (exit); svc #0
    "arm64": (0xB7, "<", struct.pack("<III", 0xD2800000, 0xD2800BA8, 0xD4000001)),
    # lghi %r2, 0; svc 1 (exit)
    "s390x": (22, ">", bytes.fromhex("a72900000a01")),
    # li r0, 1 (exit); li r3, 0; sc
    "ppc64le": (21, "<", struct.pack("<III", 0x38000001, 0x38600000, 0x44000002)),
    # li a0, 0; li a7, 93 (exit); ecall
    "riscv64": (243, "<", struct.pack("<III", 0x00000513, 0x05D00893, 0x00000073)),
}
# What the qemu-user binfmt entries are called (update-binfmts, tonistiigi/binfmt).
QEMU = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
        "riscv64": "riscv64", "386": "i386"}


def probe(arch: str) -> bytes | None:
    """A static ELF64 executable for `arch` (amd64, arm64, s390x, ppc64le,
    riscv64) that exits with 0: one loadable segment, no sections. None for an
    architecture without one here."""
    if arch not in _CODE:
        return None
    machine, order, code = _CODE[arch]
    base, header_size, entry_size = 0x400000, 64, 56
    size = header_size + entry_size + len(code)
    ident = b"\x7fELF" + bytes([2, 2 if order == ">" else 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(order + "HHIQQQIHHHHHH", 2, machine, 1, base + header_size + entry_size,
                                 header_size, 0, _FLAGS.get(arch, 0), header_size, entry_size, 1, 0, 0, 0)
    segment = struct.pack(order + "IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + segment + code


def binfmt_problem(arch: str, binfmt: Path = BINFMT) -> str | None:
    """What is wrong with this host's qemu binfmt_misc entry for `arch`, or None
    when it looks usable (enabled, its interpreter present, the F flag set)."""
    name = f"qemu-{QEMU.get(arch, arch)}"
    try:
        lines = (binfmt / name).read_text().splitlines()
    except OSError:
        return f"no binfmt_misc entry {name} on the engine's host"
    fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    if lines[:1] != ["enabled"]:
        return f"the binfmt_misc entry {name} is disabled"
    interpreter = fields.get("interpreter", "")
    if "F" not in fields.get("flags:", "") and not Path(interpreter).exists():
        return f"the interpreter of {name}, {interpreter or '(none)'}, is missing"
    if "F" not in fields.get("flags:", ""):
        return f"{name} is registered without the F flag, so containers cannot use its interpreter"
    return None


def emulation_problem(backend: Backend, platform: str, binfmt: Path | None = BINFMT) -> str | None:
    """Why `backend` cannot build for `platform` (OS/ARCH), as one line that
    says what to do; None when it can (its own platform, or the probe ran).
    `binfmt` is read when the engine is on this host (None: it is not)."""
    arch = platform.split("/")[1]
    if arch == backend.native.split("/")[1]:
        return None
    program = probe(arch)
    failed = backend.run_probe(platform, program) if program is not None else None
    if program is not None and failed is None:
        return None
    why = binfmt_problem(arch, binfmt) if binfmt is not None else None
    if program is None and why is None:
        return None  # nothing to run, and nothing known against it: the first RUN step will tell
    qemu = QEMU.get(arch, arch)
    here = " (`scripts/services.sh start` installs and enables it here)" if arch == "arm64" else ""
    return (f"{platform}: this engine cannot run {platform} programs ({why or failed}); register an emulator: "
            f"`update-binfmts --enable qemu-{qemu}` on the engine's host{here}, `docker run --privileged --rm "
            f"tonistiigi/binfmt --install {arch}` elsewhere, or build {platform} on a runner of that architecture "
            "(`invoke ci --per platform`)")
