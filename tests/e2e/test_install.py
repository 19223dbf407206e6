"""javabase installed as a wheel (not from the checkout): the templates and the
schema come with it as package data, and the `javabase` program runs the tasks
from any directory on a manifest there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from paths import PROJECT_ROOT


def test_a_wheel_installed_elsewhere_validates_renders_and_plans_the_example(tmp_path: Path,
                                                                                example_files: Path) -> None:
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(PROJECT_ROOT)], check=True, capture_output=True)
    wheel = next(wheels.glob("javabase-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    shutil.copytree(example_files, work)
    env = {**os.environ, "PYTHONPATH": str(target)}

    def javabase(*args: str, cwd: Path = work) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(target / "bin" / "javabase"), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    where = subprocess.run([sys.executable, "-c", "import javabase; print(javabase.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target))
    validated = javabase("validate")
    assert (validated.returncode, validated.stdout) == (0, "images.yaml: ok, 4 images\n"), validated.stderr
    rendered = javabase("render")
    assert rendered.returncode == 0, rendered.stderr
    assert sorted(p.parent.name for p in (work / "builds").glob("*/Dockerfile")) == [
        "app-base", "glibc-root", "jre25", "jre25-slim"]
    planned = javabase("plan", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert '"manifest": "images.yaml"' in planned.stdout
    listed = javabase("--list")
    assert "build-all" in listed.stdout and "bench" not in listed.stdout

    # From a directory without images.yaml: every task is there, a manifest is named
    # or missed in one line; from a subdirectory, the manifest above is found.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "build-all" in javabase("--list", cwd=elsewhere).stdout
    missed = javabase("validate", cwd=elsewhere)
    assert (missed.returncode, missed.stderr) == (
        9, f"error: no images.yaml in {elsewhere} or any directory above it; pass --manifest PATH\n")
    named = javabase("validate", "--manifest", str(work / "images.yaml"), cwd=elsewhere)
    assert (named.returncode, named.stdout) == (0, f"{work / 'images.yaml'}: ok, 4 images\n"), named.stderr
    below = work / "builds" / "glibc-root"
    found = javabase("validate", cwd=below)
    assert (found.returncode, found.stdout) == (0, f"{work / 'images.yaml'}: ok, 4 images\n"), found.stderr
    unknown = javabase("validate", "--bogus", cwd=elsewhere)
    assert (unknown.returncode, unknown.stderr) == (1, "No idea what '--bogus' is!\n")
