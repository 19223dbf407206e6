"""The scripts a new user runs first: every variable they read is named where a
user looks (services.sh's usage line, the README's environment table), and
`scripts/services.sh serve-example` serves the example's files again, on
127.0.0.1 only, and stops them by its pid file."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from paths import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "scripts"


def read_by(script: Path) -> set[str]:
    """The environment variables a script reads: those it gives a default, ${NAME:-default}."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", script.read_text()))


def services(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JAVABASE_")}
    return subprocess.run(["bash", str(SCRIPTS / "services.sh"), *args], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_usage_line_and_the_readme_name_every_variable_the_scripts_read() -> None:
    read = {script.name: read_by(script) for script in sorted(SCRIPTS.glob("*.sh"))}
    assert read["services.sh"] == {"JAVABASE_STATE", "JAVABASE_REGISTRY_ADDR", "JAVABASE_EXAMPLE_PORT"}
    usage = services()
    assert usage.returncode == 2
    assert usage.stderr.splitlines()[0] == ("usage: scripts/services.sh start|stop|stop-engine|stop-registry|"
                                            "serve-example|stop-example|status|env")
    assert [name for name in sorted(read["services.sh"]) if name not in usage.stderr] == []
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme.split("Environment (`javabase/settings.py` reads it")[1].split("\n\n")[1]
    named = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", table, re.MULTILINE))
    assert sorted(set().union(*read.values()) - named) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def state(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A JAVABASE_STATE of its own with example files, and a free port; whatever the
    script started is stopped by its pid file at the end."""
    (tmp_path / "example" / "files").mkdir(parents=True)
    (tmp_path / "example" / "files" / "OpenJDK-jre.tar.gz").write_bytes(b"not really a JRE")
    env = {"JAVABASE_STATE": str(tmp_path), "JAVABASE_EXAMPLE_PORT": str(free_port())}
    yield env
    services("stop-example", env=env)


def fetch(port: str, name: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=5) as answer:
        return bytes(answer.read())


def test_serve_example_serves_the_files_again_and_stop_example_stops_it(state: dict[str, str]) -> None:
    port = state["JAVABASE_EXAMPLE_PORT"]
    started = services("serve-example", env=state)
    assert (started.returncode, started.stderr) == (
        0, f"services: serving {state['JAVABASE_STATE']}/example/files on http://127.0.0.1:{port}\n")
    assert fetch(port, "OpenJDK-jre.tar.gz") == b"not really a JRE"
    again = services("serve-example", env=state)
    assert (again.returncode, again.stderr) == (
        0, f"services: the example's files are already served on http://127.0.0.1:{port}\n")
    assert f"example files: served (http://127.0.0.1:{port})" in services("status", env=state).stdout
    pid = Path(state["JAVABASE_STATE"], "example-http.pid").read_text().strip()
    stopped = services("stop-example", env=state)
    assert (stopped.returncode, stopped.stderr) == (0, f"services: stopping the example's file server (pid {pid})\n")
    with pytest.raises(urllib.error.URLError):
        fetch(port, "OpenJDK-jre.tar.gz")
    assert "example files: not served" in services("status", env=state).stdout


def test_serve_example_refuses_a_port_another_server_answers_on_and_a_state_without_files(
        state: dict[str, str], tmp_path: Path) -> None:
    other = {**state, "JAVABASE_STATE": str(tmp_path / "someone-else")}
    (tmp_path / "someone-else" / "example" / "files").mkdir(parents=True)
    assert services("serve-example", env=other).returncode == 0
    try:
        refused = services("serve-example", env=state)
        assert (refused.returncode, refused.stderr) == (
            1, f"services: 127.0.0.1:{state['JAVABASE_EXAMPLE_PORT']} answers, but not with a server of "
               f"{state['JAVABASE_STATE']}; set JAVABASE_EXAMPLE_PORT to a free port\n")
    finally:
        services("stop-example", env=other)
    empty = {**state, "JAVABASE_STATE": str(tmp_path / "empty")}
    missing = services("serve-example", env=empty)
    assert (missing.returncode, missing.stderr) == (
        1, f"services: no example files in {tmp_path / 'empty'}/example/files: scripts/example.sh prepares them "
           f"(with JAVABASE_STATE={tmp_path / 'empty'})\n")


def test_running_the_example_again_keeps_a_manifest_the_user_edited(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The README has newcomers edit the example's images.yaml; `scripts/example.sh`
    run again (prepare.py) must not silently put the example's back."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "examples" / "offline"))
    from prepare import write_manifest  # type: ignore[import-not-found]

    manifest = tmp_path / "images.yaml"
    assert write_manifest(manifest, "schema: 1\n") == manifest
    assert write_manifest(manifest, "schema: 1\n# v2\n") == manifest  # unedited: the example's new one
    assert manifest.read_text() == "schema: 1\n# v2\n" and capsys.readouterr().err == ""
    manifest.write_text("schema: 1\n# v2\n# mine\n")
    assert write_manifest(manifest, "schema: 1\n# v3\n") == manifest
    assert manifest.read_text() == "schema: 1\n# v2\n# mine\n"
    assert (tmp_path / "images.yaml.new").read_text() == "schema: 1\n# v3\n"
    assert capsys.readouterr().err == (
        f"prepare: kept {manifest} (edited since prepare wrote it); the example's own is {manifest}.new: "
        f"remove {manifest} to start over from it\n")
    manifest.unlink()
    assert write_manifest(manifest, "schema: 1\n# v3\n") == manifest
    assert manifest.read_text() == "schema: 1\n# v3\n"
