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

    def javabase(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(target / "bin" / "javabase"), *args], cwd=work, env=env, capture_output=True,
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
