"""The tasks as a person runs them: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import BASE
from paths import PROJECT_ROOT

INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT)]


def invoke(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INVOKE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_validate_render_and_plan_succeed_on_the_committed_manifest() -> None:
    for args in (["validate"], ["render", "--check"], ["plan"], ["plan", "--format", "mermaid"]):
        result = invoke(*args, cwd=PROJECT_ROOT)
        assert result.returncode == 0, (args, result.stderr)
    assert invoke("validate", cwd=PROJECT_ROOT).stdout == "images.yaml: ok, 8 images\n"


def test_invalid_manifest_fails_with_one_line_and_leaves_builds(tmp_path: Path) -> None:
    manifest = tmp_path / "images.yaml"
    manifest.write_text(BASE)
    assert invoke("render", "--manifest", "images.yaml", cwd=tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "builds").rglob("*") if p.is_file()}
    manifest.write_text(BASE.replace("from: root", "from: rot"))
    for task in ("validate", "render", "plan"):
        result = invoke(task, "--manifest", "images.yaml", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr == (
            "error: images.yaml:18: images.jre.from: 'rot' is not an image of this manifest; did you mean "
            "'root'? (an outside image needs a tag or digest, e.g. alpine:3.20)\n"
        )
        assert "Traceback" not in result.stdout + result.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "builds").rglob("*") if p.is_file()} == before


def test_render_check_reports_drift(tmp_path: Path) -> None:
    (tmp_path / "images.yaml").write_text(BASE)
    invoke("render", "--manifest", "images.yaml", cwd=tmp_path)
    (tmp_path / "builds" / "jre8" / "Dockerfile").write_text("FROM hand-edited\n")
    result = invoke("render", "--check", "--manifest", "images.yaml", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr == (
        "error: builds/jre8/Dockerfile: differs from what the manifest renders\n"
        "error: 1 file(s) in builds/ are stale; run `invoke render` and commit the result\n"
    )
    assert (tmp_path / "builds" / "jre8" / "Dockerfile").read_text() == "FROM hand-edited\n"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "images.yaml").write_text("")
    quiet = invoke("validate", "--manifest", "images.yaml", cwd=tmp_path)
    loud = invoke("validate", "--manifest", "images.yaml", "--debug", cwd=tmp_path)
    assert quiet.stderr == "error: images.yaml:1: the file is empty; start from the images.yaml in docs/manifest.md\n"
    assert "Traceback" in loud.stderr and loud.returncode == quiet.returncode == 2


def test_invokes_own_errors_are_exit_1_in_one_line(tmp_path: Path) -> None:
    # README's exit table: 1 is what Invoke itself returns; javabase never does.
    for args, said in ((["validate", "--bogus"], "No idea what '--bogus' is!\n"),
                       (["nosuch"], "No idea what 'nosuch' is!\n"),
                       (["validate", "--manifest"], "Flag <Argument: manifest (m)> needed value and was not given "
                                                    "one!\n")):
        result = invoke(*args, cwd=tmp_path)
        assert (result.returncode, result.stderr, result.stdout) == (1, said, "")
    outside = subprocess.run([sys.executable, "-m", "invoke", "validate"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, check=False)
    assert (outside.returncode, outside.stderr) == (1, "Can't find any collection named 'tasks'!\n")


def test_a_number_flag_that_is_not_a_number_is_exit_9_in_one_line(tmp_path: Path) -> None:
    for args, said in ((["build-all", "--jobs", "x"], "--jobs 'x' is not a whole number"),
                       (["prune", "--keep", "two"], "--keep 'two' is not a whole number"),
                       (["update", "--major", "seventeen"], "--major 'seventeen' is not a whole number")):
        result = invoke(*args, cwd=tmp_path)
        assert (result.returncode, result.stderr) == (9, f"error: {said}\n"), result.stderr
