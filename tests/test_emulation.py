"""A foreign platform is checked before anything is built for it: the probe
programs are real executables, a binfmt_misc entry is read as the kernel
writes it, and a run that cannot build a platform says so in one line."""

from __future__ import annotations

import platform as host
import struct
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from test_builder import builder, statuses

from fakes import FakeBackend, FakeRegistry
from javabase.build.emulation import binfmt_problem, emulation_problem, probe
from javabase.manifest.model import Manifest

MACHINES = {"amd64": 0x3E, "arm64": 0xB7, "s390x": 22, "ppc64le": 21, "riscv64": 243}
ENABLED = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c46\n"


@pytest.mark.parametrize("arch", sorted(MACHINES))
def test_each_probe_is_an_elf64_executable_of_its_machine(arch: str) -> None:
    program = probe(arch)
    assert program is not None and program[:4] == b"\x7fELF" and program[4] == 2  # ELF64
    order = ">" if program[5] == 2 else "<"
    kind, machine = struct.unpack(order + "HH", program[16:20])
    assert (kind, machine) == (2, MACHINES[arch])  # ET_EXEC
    (entry,) = struct.unpack(order + "Q", program[24:32])
    assert entry == 0x400000 + 64 + 56  # right after the one program header


@pytest.mark.skipif(host.machine() != "x86_64", reason="runs the amd64 probe natively")
def test_the_native_probe_runs_and_exits_0(tmp_path: Path) -> None:
    program = tmp_path / "probe"
    program.write_bytes(probe("amd64") or b"")
    program.chmod(0o755)
    assert subprocess.run([str(program)], check=False).returncode == 0


def entry(tmp_path: Path, text: str) -> Path:
    (tmp_path / "qemu-aarch64").write_text(text)
    return tmp_path


def test_a_binfmt_entry_says_why_it_cannot_be_used(tmp_path: Path) -> None:
    assert binfmt_problem("arm64", tmp_path) == "no binfmt_misc entry qemu-aarch64 on the engine's host"
    assert binfmt_problem("arm64", entry(tmp_path, ENABLED.replace("enabled", "disabled"))) == (
        "the binfmt_misc entry qemu-aarch64 is disabled")
    gone = ENABLED.replace("/usr/libexec/qemu-binfmt/aarch64-binfmt-P", f"{tmp_path}/gone")
    assert binfmt_problem("arm64", entry(tmp_path, gone.replace("flags: PF", "flags: P"))) == (
        f"the interpreter of qemu-aarch64, {tmp_path}/gone, is missing")
    interpreter = tmp_path / "qemu-aarch64-static"
    interpreter.write_bytes(b"")
    assert binfmt_problem("arm64", entry(tmp_path, ENABLED.replace(
        "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", str(interpreter)).replace("flags: PF", "flags: "))) == (
        "qemu-aarch64 is registered without the F flag, so containers cannot use its interpreter")
    assert binfmt_problem("arm64", entry(tmp_path, ENABLED)) is None


def test_a_platform_the_engine_cannot_run_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    backend = FakeBackend(no_emulator={"linux/arm64"})
    assert emulation_problem(backend, "linux/amd64", None) is None and backend.probed == []  # its own platform
    assert emulation_problem(backend, "linux/s390x", None) is None and backend.probed == ["linux/s390x"]
    disabled = entry(tmp_path, ENABLED.replace("enabled", "disabled"))
    assert emulation_problem(backend, "linux/arm64", disabled) == (
        "linux/arm64: this engine cannot run linux/arm64 programs (the binfmt_misc entry qemu-aarch64 is "
        "disabled); register an emulator: `update-binfmts --enable qemu-aarch64` on the engine's host "
        "(`scripts/services.sh start` installs and enables it here), `docker run --privileged --rm "
        "tonistiigi/binfmt --install arm64` elsewhere, or build linux/arm64 on a runner of that architecture "
        "(`invoke ci --per platform`)")
    remote = emulation_problem(backend, "linux/arm64", None)  # an engine elsewhere: what it said
    assert remote is not None and remote.startswith(
        "linux/arm64: this engine cannot run linux/arm64 programs (The command '/probe' returned a non-zero "
        "code: 1 (exec format error)); register an emulator: ")


PLATFORMS = """\
schema: 1
registry: r:5000
namespace: base
images:
  root: {from: scratch, template: layer, tags: ["1"], platforms: [linux/amd64, linux/arm64]}
  child: {from: root, template: layer, tags: ["1"], platforms: [linux/amd64, linux/arm64]}
  plain: {from: scratch, template: layer, tags: ["1"]}
"""


def test_without_an_emulator_nothing_is_built_and_each_arm64_image_says_why(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    backend = FakeBackend(no_emulator={"linux/arm64"})
    run = builder(valid(textwrap.dedent(PLATFORMS)), backend, tmp_path, registry=registry)
    report = run.run()
    assert not report.ok and backend.built == [] and registry.manifests_put == []
    assert statuses(run) == {"root@linux/amd64": "skipped", "root@linux/arm64": "failed",
                             "child@linux/amd64": "skipped", "child@linux/arm64": "failed", "plain": "skipped"}
    assert run.results["child@linux/arm64"].reason.startswith(
        "linux/arm64: this engine cannot run linux/arm64 programs (The command '/probe' returned")
    assert run.results["plain"].reason == ("not started: linux/arm64 cannot be built on this engine (--keep-going "
                                          "builds the rest)")
    assert backend.probed == ["linux/arm64"]


def test_with_keep_going_the_native_half_builds_and_no_index_names_a_missing_platform(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    backend = FakeBackend(no_emulator={"linux/arm64"})
    run = builder(valid(textwrap.dedent(PLATFORMS)), backend, tmp_path, registry=registry, keep_going=True)
    report = run.run()
    assert statuses(run) == {"root@linux/amd64": "built", "root@linux/arm64": "failed",
                             "child@linux/amd64": "built", "child@linux/arm64": "skipped", "plain": "pushed"}
    assert "base/root:1" not in registry.held and "base/child:1" not in registry.held
    assert "root was not published: its linux/arm64 image did not build" in report.notes
