"""Exit paths of the commands that need no engine: what is printed, the exit
code, and what is left on disk."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from pathlib import Path

from conftest import BASE
from javabase.cli import common, ship


def run(action: Callable[[], int]) -> tuple[int, str]:
    err = io.StringIO()
    return common.run(action, err=err), err.getvalue()


def test_an_unwritable_report_path_is_exit_11_before_anything_runs(
        write_manifest: Callable[[str], Path], tmp_path: Path) -> None:
    manifest = write_manifest(BASE)
    (tmp_path / "reports").write_text("a file, not a directory")
    code, err = run(lambda: ship.build(str(manifest), ship.BuildFlags(report=str(tmp_path / "reports" / "r.json"))))
    assert (code, err) == (11, f"error: cannot write the report's directory {tmp_path / 'reports'}: File exists; "
                               "fix the permissions or free some space, then run again\n")
    assert not (tmp_path / "builds").exists()


def test_an_unwritable_log_directory_is_exit_11(write_manifest: Callable[[str], Path], tmp_path: Path) -> None:
    manifest = write_manifest(BASE)
    (tmp_path / ".javabase").write_text("a file, not a directory")
    code, err = run(lambda: ship.build(str(manifest), ship.BuildFlags()))
    assert (code, err) == (11, f"error: cannot write the build log directory {tmp_path / '.javabase' / 'logs'}: "
                               "Not a directory; fix the permissions or free some space, then run again\n")


def test_an_early_failure_replaces_the_previous_report(write_manifest: Callable[[str], Path], tmp_path: Path) -> None:
    manifest = write_manifest(BASE.replace("template: jre", "template: jrr"))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"ok": True}))
    code, err = run(lambda: ship.build(str(manifest), ship.BuildFlags(report=str(report))))
    assert code == 2
    written = json.loads(report.read_text())
    assert list(written.pop("phases")["seconds"]) == ["setup"]  # where the time went: reading the manifest
    assert written == {
        "manifest": "images.yaml", "registry": "", "push": False, "ok": False,
        "error": "images.yaml:19: images.jre.template: unknown template 'jrr'; did you mean 'jre'?",
        "exit_code": 2, "notes": [], "images": []}
    assert err == "error: images.yaml:19: images.jre.template: unknown template 'jrr'; did you mean 'jre'?\n"


def test_plan_push_with_no_registry_listening_is_exit_6_in_one_line(
        write_manifest: Callable[[str], Path]) -> None:
    # As build-all --push: a plan of what `build --push` would do needs the registry;
    # multi-platform images (which decide does not look up yet) are no exception.
    from javabase.cli import define

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for text in (BASE, BASE.replace("defaults:\n", "defaults:\n  platforms: [linux/amd64]\n", 1)):
        manifest = write_manifest(text)
        out = io.StringIO()
        code, err = run(lambda m=manifest, o=out: define.plan(str(m), registry=f"127.0.0.1:{port}", push=True,
                                                            out=o))
        assert (code, err, out.getvalue()) == (
            6, f"error: cannot reach the registry 127.0.0.1:{port} ([Errno 111] Connection refused); is it running? "
               "`scripts/services.sh start` starts one on $JAVABASE_REGISTRY_ADDR (default 127.0.0.1:5000)\n", "")
