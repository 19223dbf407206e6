"""Exit paths of the commands that need no engine: what is printed, the exit
code, and what is left on disk."""

from __future__ import annotations

import io
import json
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
    assert json.loads(report.read_text()) == {
        "manifest": "images.yaml", "registry": "", "push": False, "ok": False,
        "error": "images.yaml:19: images.jre.template: unknown template 'jrr'; did you mean 'jre'?",
        "exit_code": 2, "notes": [], "images": []}
    assert err == "error: images.yaml:19: images.jre.template: unknown template 'jrr'; did you mean 'jre'?\n"
