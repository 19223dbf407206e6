"""The run (javabase.build.run.Builder) with the in-memory backend and registry:
a child starts when its parent is done, a failure skips what depends on it,
--keep-going builds the rest, a second run reuses, Ctrl-C tags nothing, and a
multi-platform image is pushed as one index of its platforms' manifests."""

from __future__ import annotations

import io
import json
import signal
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fakes import FakeBackend, FakeRegistry
from javabase.build.artifacts import ArtifactStore
from javabase.build.run import Builder, BuildOptions
from javabase.cli.common import finish, pushed_summary
from javabase.errors import BuildFailed, EngineError, Interrupted, NotUpToDate, StepError
from javabase.manifest.model import Manifest
from javabase.plan.order import make_plan
from javabase.plan.render import render_all
from javabase.publish.exports import Exports
from javabase.publish.oci import SavedImage
from javabase.publish.referrers import Artifact, Layer
from javabase.release import verify
from javabase.release.provenance import Provenance
from javabase.release.signing import Signer
from javabase.report import Console
from javabase.settings import Settings

TREE = """\
schema: 1
registry: r:5000
namespace: base
images:
  root: {from: scratch, template: layer, tags: ["1"]}
  a: {from: root, template: layer, tags: ["1"]}
  b: {from: root, template: layer, tags: ["1"]}
  a1: {from: a, template: layer, tags: ["1"]}
  other: {from: scratch, template: layer, tags: ["1"]}
"""


def builder(manifest: Manifest, backend: FakeBackend, tmp_path: Path, jobs: int = 4,
            registry: FakeRegistry | None = None, plan_platform: str | None = None, **options: Any) -> Builder:
    settings = Settings(registry="r:5000", jobs=jobs, push_jobs=2, cache_dir=tmp_path / "cache",
                        log_dir=tmp_path / "logs")
    return Builder(make_plan(manifest, platform=plan_platform), render_all(manifest), backend,
                   ArtifactStore(tmp_path / "cache"), settings,
                   BuildOptions(**options), Provenance(1_700_000_000, "abc123"), Console(io.StringIO()),
                   registry)  # type: ignore[arg-type]


def statuses(run: Builder) -> dict[str, str]:
    return {name: str(result.status) for name, result in run.results.items()}


def test_a_child_starts_when_its_parent_is_done_and_independent_images_overlap(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    backend = FakeBackend(pause=0.1)
    run = builder(valid(TREE), backend, tmp_path)
    report = run.run()
    assert report.ok
    events = backend.events
    for parent, child in (("root", "a"), ("root", "b"), ("a", "a1")):
        assert events.index(("end", parent)) < events.index(("start", child)), events
    first_end = next(i for i, event in enumerate(events) if event[0] == "end")
    assert {("start", "root"), ("start", "other")} <= set(events[:first_end])
    assert statuses(run) == dict.fromkeys(["other", "root", "a", "b", "a1"], "built")
    assert backend.tags["r:5000/base/a1:1"] == run.results["a1"].image_id


def test_a_failure_skips_its_dependents_and_nothing_new_starts(valid: Callable[[str], Manifest],
                                                              tmp_path: Path) -> None:
    backend = FakeBackend(fail={"a"})
    run = builder(valid(TREE), backend, tmp_path, jobs=1)
    report = run.run()
    assert not report.ok
    assert statuses(run) == {"other": "built", "root": "built", "a": "failed", "b": "skipped", "a1": "skipped"}
    assert run.results["a"].reason == ("step 2/2 (RUN false): The command '/bin/sh -c false' returned a non-zero "
                                       "code: 1")
    assert run.results["b"].reason == "not started: a failed (--keep-going builds the rest)"
    assert run.results["a1"].reason == "skipped: a failed"
    assert (tmp_path / "logs" / "a.log").read_text().endswith("FAILED step 2/2 (RUN false): The command "
                                                             "'/bin/sh -c false' returned a non-zero code: 1\n")
    assert "r:5000/base/a:1" not in backend.tags


def test_keep_going_builds_what_does_not_depend_on_the_failure(valid: Callable[[str], Manifest],
                                                               tmp_path: Path) -> None:
    run = builder(valid(TREE), FakeBackend(fail={"a"}), tmp_path, jobs=1, keep_going=True)
    run.run()
    assert statuses(run) == {"other": "built", "root": "built", "a": "failed", "b": "built", "a1": "skipped"}


def test_a_second_run_with_the_same_inputs_builds_nothing(valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    manifest = valid(TREE)
    backend = FakeBackend()
    first = builder(manifest, backend, tmp_path)
    first.run()
    built = len(backend.built)
    again = builder(manifest, backend, tmp_path)
    assert again.run().ok
    assert len(backend.built) == built == 5
    assert statuses(again) == dict.fromkeys(["other", "root", "a", "b", "a1"], "up-to-date")
    assert {name: r.image_id for name, r in again.results.items()} == {
        name: r.image_id for name, r in first.results.items()}


def test_a_changed_parent_rebuilds_its_descendants_only(valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    backend = FakeBackend()
    builder(valid(TREE), backend, tmp_path).run()
    changed = valid(TREE.replace("a: {from: root, template: layer,", "a: {from: root, template: layer, "
                                                                     "env: {X: '1'},"))
    run = builder(changed, backend, tmp_path)
    run.run()
    assert statuses(run) == {"other": "up-to-date", "root": "up-to-date", "a": "built", "b": "up-to-date",
                             "a1": "built"}
    assert run.results["a"].changed == "build: changed dockerfile"
    assert run.results["a1"].changed == "build: changed parent a"


def test_ctrl_c_cancels_the_running_build_and_tags_nothing_of_it(valid: Callable[[str], Manifest],
                                                                tmp_path: Path) -> None:
    backend = FakeBackend(hold={"root"})
    run = builder(valid(TREE), backend, tmp_path, jobs=1)
    main = threading.get_ident()

    def press_ctrl_c() -> None:
        while ("start", "root") not in backend.events:
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run.run()
    assert backend.cancelled.is_set()
    assert statuses(run) == {"other": "built", "root": "failed", "a": "skipped", "b": "skipped", "a1": "skipped"}
    assert run.results["root"].reason == "interrupted during step 2/2; the build was cancelled"
    assert run.results["a"].reason == "not started: interrupted"
    assert sorted(backend.tags) == ["r:5000/base/other:1"]


def test_with_a_registry_every_image_is_pushed_once_the_builds_are_done(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    run = builder(valid(TREE), FakeBackend(), tmp_path, registry=registry)
    assert run.run().ok
    assert statuses(run) == dict.fromkeys(["other", "root", "a", "b", "a1"], "pushed")
    for name, result in run.results.items():
        assert registry.held[f"base/{name}:1"].config_digest == result.image_id


def test_the_report_says_where_the_time_went_and_counts_the_work(valid: Callable[[str], Manifest],
                                                                  tmp_path: Path) -> None:
    backend = FakeBackend()
    run = builder(valid(TREE), backend, tmp_path, registry=FakeRegistry())
    phases = run.run().to_dict()["phases"]
    assert set(phases["seconds"]) == {
        "artifacts", "engine lock", "decide", "decide: registry lookups", "decide: engine reuse checks", "builds",
        "build contexts (summed)", "engine builds (summed)", "image tests (summed)", "tag (summed)",
        "push after the builds", "push: wait for staging", "export from the engine (summed)",
        "compression or layer cache (summed)", "uploads and mounts (summed)", "publish: tags and indexes"}
    assert all(seconds >= 0 for seconds in phases["seconds"].values())
    counts = phases["counts"]
    assert (counts["builds"], counts["engine steps"]) == (5, 5)  # the fake engine runs one step per build
    # Every image built is exported once, some together (javabase.publish.exports).
    assert sorted(i for saved in backend.exports for i in saved) == sorted(r.image_id for r in run.results.values())
    assert counts["exports"] == len(backend.exports)
    # 5 configs and 5 + 4 layers (a, b, a1 hold root's; a1 holds a's): each uploaded, or mounted from where it went
    assert counts["blobs uploaded"] + counts.get("blobs mounted", 0) == 14
    assert counts["blobs uploaded"] >= 10


def test_images_asked_for_while_an_export_runs_go_into_the_next_export_together(tmp_path: Path) -> None:
    """Forty images FROM one root: the root's layer is written by the engine
    once per export, not once per image; each image gets its own config and
    layers; an archive is deleted once every image of it was released."""
    backend = FakeBackend()
    root = backend.add_image(b"root" * 1000)
    below = backend.stored[root].layers
    children = [backend.add_image(f"child {i}".encode(), below=below) for i in range(40)]
    exports = Exports(backend)
    first = threading.Event()
    slow_save = backend.save

    def save(references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        first.wait(5)  # every image is asked for while the first export runs
        slow_save(references, dest, on_bytes)

    backend.save = save  # type: ignore[method-assign]
    got: dict[str, SavedImage] = {}

    def ask(image_id: str) -> None:
        got[image_id] = exports.saved(image_id)

    threads = [threading.Thread(target=ask, args=(i,)) for i in children]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    first.set()
    for thread in threads:
        thread.join(10)
    assert len(backend.exports) <= 2 and sorted(i for e in backend.exports for i in e) == sorted(children)
    assert {i: image.image_id for i, image in got.items()} == {i: i for i in children}
    assert all(len(image.layers) == 2 for image in got.values())
    archives = {image.archive for image in got.values()}
    for image in got.values():
        assert image.archive.exists()
        exports.release(image)
    assert not any(archive.exists() for archive in archives) and exports.users == {}


def test_images_announced_go_into_the_next_export_and_those_never_asked_for_are_deleted_at_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    backend = FakeBackend()
    root = backend.add_image(b"root" * 1000)
    children = [backend.add_image(f"child {i}".encode(), below=backend.stored[root].layers) for i in range(3)]
    exports = Exports(backend)
    exports.want(children)
    first = exports.saved(children[0])
    assert backend.exports == [sorted(children)]
    second = exports.saved(children[1])  # from the same archive: no second export
    assert backend.exports == [sorted(children)] and second.archive == first.archive
    exports.release(first)
    exports.release(second)
    assert first.archive.exists()  # the third image of it was not taken yet
    exports.close()
    assert list(tmp_path.glob("javabase-export-*")) == [] and exports.users == {}
    with pytest.raises(Interrupted, match=r"^interrupted before exporting [0-9a-f]{12}$"):
        exports.saved(children[2])


def test_an_image_asked_for_twice_at_once_is_released_twice_without_deleting_it_under_the_other(
        tmp_path: Path) -> None:
    """Two askers of one image ID at once (two units that built the same image):
    each gets an archive of its own to release."""
    backend = FakeBackend()
    other, image = backend.add_image(b"other"), backend.add_image(b"same")
    exports = Exports(backend)
    go = threading.Event()
    slow_save = backend.save

    def save(references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        go.wait(5)  # both ask for `image` while the first export runs
        slow_save(references, dest, on_bytes)

    backend.save = save  # type: ignore[method-assign]
    got: list[SavedImage] = []
    threads = [threading.Thread(target=lambda i=i: got.append(exports.saved(i))) for i in (other, image, image)]
    threads[0].start()
    time.sleep(0.1)
    threads[1].start()
    threads[2].start()
    time.sleep(0.1)
    go.set()
    for thread in threads:
        thread.join(10)
    first, second = [saved for saved in got if saved.image_id == image]
    assert first.archive != second.archive and backend.exports == [[other], [image], [image]]
    exports.release(first)
    assert not first.archive.exists() and second.archive.exists()
    exports.release(second)
    assert not second.archive.exists()
    (alone,) = [saved for saved in got if saved.image_id == other]
    exports.release(alone)
    assert not alone.archive.parent.exists()


class Forgetful(FakeBackend):
    """An engine whose `docker save` leaves out the images it does not have."""

    def save(self, references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        super().save([r for r in references if r in self.saved], dest, on_bytes)


def test_an_image_missing_from_the_archive_fails_alone_and_the_others_of_its_export_go_on(tmp_path: Path) -> None:
    backend = Forgetful()
    kept, missing = backend.add_image(b"kept"), "sha256:0123456789ab" + "0" * 52
    exports = Exports(backend)
    batch: dict[str, Future[SavedImage]] = {kept: Future(), missing: Future()}
    exports.export(batch)
    assert batch[kept].result().image_id == kept
    with pytest.raises(StepError) as caught:
        batch[missing].result()
    assert str(caught.value) == (f"export 0123456789ab: the engine's archive of 0123456789ab, {kept[7:19]} does not "
                                 "hold this image")
    with pytest.raises(StepError, match=r"^export 0123456789ab: the engine's archive is unreadable \("):
        exports.saved(missing)  # alone: the engine wrote no image at all
    exports.release(batch[kept].result())
    assert exports.users == {}


class Strict(FakeBackend):
    """An engine that refuses a `docker save` naming an image it does not have, as dockerd does."""

    def save(self, references: list[str], dest: Path, on_bytes: Callable[[int], None]) -> None:
        if gone := [r for r in references if r not in self.saved]:
            raise StepError(f"save: 404 Client Error: Not Found (No such image: {gone[0]})")
        super().save(references, dest, on_bytes)


def test_when_the_engine_refuses_a_save_of_several_each_is_saved_alone(tmp_path: Path) -> None:
    backend = Strict()
    kept, missing = backend.add_image(b"kept"), "sha256:0123456789ab" + "0" * 52
    batch: dict[str, Future[SavedImage]] = {kept: Future(), missing: Future()}
    exports = Exports(backend)
    exports.export(batch)
    assert batch[kept].result().image_id == kept
    with pytest.raises(StepError, match=r"^save: 404 Client Error: Not Found \(No such image: sha256:0123"):
        batch[missing].result()
    assert backend.exports == [[kept]]
    directory = batch[kept].result().archive.parent
    exports.release(batch[kept].result())
    assert exports.users == {} and not directory.exists()  # nothing left in the temporary directory


PLATFORMS = """\
schema: 1
registry: r:5000
namespace: base
images:
  img: {from: scratch, template: layer, tags: ["1", "latest"], platforms: [linux/amd64, linux/arm64]}
"""


def test_a_multi_platform_image_is_one_index_of_its_platforms_manifests(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    backend = FakeBackend()
    run = builder(valid(textwrap.dedent(PLATFORMS)), backend, tmp_path, registry=registry)
    assert run.run().ok
    assert statuses(run) == {"img@linux/amd64": "pushed", "img@linux/arm64": "pushed"}
    index = json.loads(registry.held["base/img:1"].body)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in index["manifests"]] == [{"architecture": "amd64", "os": "linux"},
                                                           {"architecture": "arm64", "os": "linux"}]
    children = [m["digest"] for m in index["manifests"]]
    puts = registry.manifests_put
    assert all(puts.index(f"base/img:{child}") < puts.index("base/img:1") for child in children)
    assert registry.held["base/img:latest"].digest == registry.held["base/img:1"].digest
    arm = registry.held[f"base/img:{children[1]}"]
    assert arm.config_digest == run.results["img@linux/arm64"].image_id
    assert backend.tags["r:5000/base/img:1"] == run.results["img@linux/amd64"].image_id  # the engine's own platform
    assert backend.tags["r:5000/base/img:1-linux-arm64"] == run.results["img@linux/arm64"].image_id


def test_an_sbom_of_one_platform_is_attached_to_that_platforms_manifest(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    run = builder(valid(textwrap.dedent(PLATFORMS)), FakeBackend(), tmp_path, registry=registry)
    run.run()
    pusher = run.pusher
    assert pusher is not None
    result = run.results["img@linux/arm64"]
    subject = pusher.subject(result, "linux/arm64")
    arm = json.loads(registry.held["base/img:1"].body)["manifests"][1]["digest"]
    assert subject.digest == arm
    sbom = Artifact("sbom", "application/spdx+json", (Layer("application/spdx+json", b"{}"),))
    digest = pusher.attach(result, sbom, subject)
    assert json.loads(registry.held[f"base/img:{digest}"].body)["subject"]["digest"] == arm
    listed = json.loads(registry.held[f"base/img:{arm.replace(':', '-')}"].body)["manifests"]
    assert [(m["digest"], m["artifactType"]) for m in listed] == [(digest, "application/spdx+json")]
    assert pusher.attach(result, sbom, subject) == digest  # attached again: listed once
    assert len(json.loads(registry.held[f"base/img:{arm.replace(':', '-')}"].body)["manifests"]) == 1
    with pytest.raises(StepError, match=r"^img@linux/arm64: the index under r:5000/base/img:1 has no linux/s390x$"):
        pusher.subject(result, "linux/s390x")


def test_a_bug_in_one_image_fails_it_and_keeps_the_traceback_in_its_log(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    run = builder(valid(TREE), FakeBackend(bug={"b"}), tmp_path, jobs=1, keep_going=True)
    run.run()
    assert statuses(run) == {"other": "built", "root": "built", "a": "built", "b": "failed", "a1": "built"}
    assert run.results["b"].reason == ("internal error (a bug in javabase; its traceback is in the image's log): "
                                       "RuntimeError: a bug while building b")
    log = (tmp_path / "logs" / "b.log").read_text()
    assert "Traceback (most recent call last):" in log and 'raise RuntimeError(f"a bug while building' in log


def test_when_the_engine_dies_no_upload_starts_afterwards(valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    run = builder(valid(TREE), FakeBackend(engine_dies={"a"}), tmp_path, jobs=1, registry=registry)
    with pytest.raises(EngineError):
        run.run()
    assert run.pusher is not None and run.pusher.stopped.is_set()
    assert registry.manifests_put == []


def test_every_platform_and_the_index_are_signed_and_each_platform_attested_once(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    registry = FakeRegistry()
    manifest = valid(textwrap.dedent(PLATFORMS))
    run = builder(manifest, FakeBackend(), tmp_path, registry=registry, signer=Signer(key))  # type: ignore[arg-type]
    assert run.run().ok
    index = registry.held["base/img:1"]
    platforms = {m["platform"]["architecture"]: m["digest"] for m in json.loads(index.body)["manifests"]}
    for digest in [index.digest, *platforms.values()]:
        assert verify.check_signature(registry, "base/img", digest, key.public_key()).ok  # type: ignore[arg-type]
    for arch, digest in platforms.items():
        check = verify.check_provenance(registry, "base/img", digest, key.public_key(),  # type: ignore[arg-type]
                                        run.results[f"img@linux/{arch}"].input_digest)
        assert check.ok, check.detail
    assert not verify.check_provenance(registry, "base/img", index.digest, key.public_key(),  # type: ignore[arg-type]
                                       None).ok  # an index has no build of its own
    puts = len(registry.manifests_put)
    again = builder(manifest, run.backend, tmp_path, registry=registry, signer=Signer(key))  # type: ignore[arg-type]
    assert again.run().ok
    assert len(registry.manifests_put) == puts  # nothing signed or attested twice


TWO_PLATFORM_TREE = """\
schema: 1
registry: r:5000
namespace: base
defaults: {platforms: [linux/amd64, linux/arm64]}
images:
  root: {from: scratch, template: layer, tags: ["1"]}
  child: {from: root, template: layer, tags: ["1"]}
"""


def test_a_fresh_runner_finds_every_platform_in_the_registry_and_builds_pulls_and_pushes_nothing(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    manifest = valid(TWO_PLATFORM_TREE)
    assert builder(manifest, FakeBackend(), tmp_path / "a", registry=registry).run().ok
    puts = list(registry.manifests_put)
    fresh = FakeBackend(source=registry)
    again = builder(manifest, fresh, tmp_path / "b", registry=registry)
    assert again.run().ok
    assert set(statuses(again).values()) == {"up-to-date (registry)"}
    assert fresh.built == [] and fresh.pulled == [] and registry.manifests_put == puts


def test_a_platform_missing_from_the_index_is_built_alone_and_the_index_extended(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    amd64_only = valid(TWO_PLATFORM_TREE.replace("[linux/amd64, linux/arm64]", "[linux/amd64]"))
    assert builder(amd64_only, FakeBackend(), tmp_path / "a", registry=registry).run().ok
    fresh = FakeBackend(source=registry)
    run = builder(valid(TWO_PLATFORM_TREE), fresh, tmp_path / "b", registry=registry)
    assert run.run().ok, run.results
    assert statuses(run) == {"root@linux/amd64": "pushed", "root@linux/arm64": "pushed",
                             "child@linux/amd64": "pushed", "child@linux/arm64": "pushed"}
    assert sorted(k for k, r in run.results.items() if r.changed) == ["child@linux/arm64", "root@linux/arm64"]
    assert fresh.pulled == []  # the arm64 child's parent was built here
    index = json.loads(registry.held["base/child:1"].body)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]


def test_per_platform_jobs_push_their_own_tags_and_publish_joins_them(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    manifest = valid(TWO_PLATFORM_TREE)
    for platform in ("linux/amd64", "linux/arm64"):
        job = builder(manifest, FakeBackend(source=registry), tmp_path / platform.replace("/", "-"),
                      registry=registry, plan_platform=platform, platform_tags=True)
        assert job.run().ok
        assert statuses(job) == {f"root@{platform}": "pushed", f"child@{platform}": "pushed"}
    assert sorted(t for t in registry.tags("base/child")) == ["1-linux-amd64", "1-linux-arm64"]  # nothing shared
    publish = builder(manifest, FakeBackend(), tmp_path / "publish", registry=registry, publish_only=True)
    assert publish.run().ok
    index = json.loads(registry.held["base/child:1"].body)
    assert [m["digest"] for m in index["manifests"]] == [registry.held["base/child:1-linux-amd64"].digest,
                                                       registry.held["base/child:1-linux-arm64"].digest]
    fresh = FakeBackend(source=registry)
    assert builder(manifest, fresh, tmp_path / "fresh", registry=registry).run().ok and fresh.built == []
    child_only = FakeBackend(source=registry)  # a child built on a fresh runner pulls its parent by digest
    changed = valid(TWO_PLATFORM_TREE.replace('child: {from: root,', 'child: {from: root, env: {X: "1"},'))
    run = builder(changed, child_only, tmp_path / "child", registry=registry)
    assert run.run().ok
    assert child_only.pulled == [f"r:5000/base/root@{registry.held['base/root:1-linux-amd64'].digest}",
                                 f"r:5000/base/root@{registry.held['base/root:1-linux-arm64'].digest}"]


def test_publish_builds_nothing_and_names_the_platform_whose_job_has_not_run(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry = FakeRegistry()
    manifest = valid(TWO_PLATFORM_TREE)
    assert builder(manifest, FakeBackend(), tmp_path / "a", registry=registry, plan_platform="linux/amd64",
                   platform_tags=True).run().ok
    backend = FakeBackend()
    with pytest.raises(NotUpToDate) as caught:
        builder(manifest, backend, tmp_path / "publish", registry=registry, publish_only=True).run()
    assert str(caught.value) == (
        "publish: root@linux/arm64, child@linux/arm64 not in the registry with the manifest's inputs (build: no "
        "earlier build of this image); `build --image root --platform linux/arm64 --push` must run first; nothing "
        "was published")
    assert backend.built == [] and "base/child:1" not in registry.held
def test_a_failed_platforms_log_is_a_file_named_without_a_slash(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    run = builder(valid(textwrap.dedent(PLATFORMS)), FakeBackend(fail={"img"}), tmp_path, jobs=1, keep_going=True)
    run.run()
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["img@linux-amd64.log", "img@linux-arm64.log"]
    assert all(p.is_file() for p in logs.iterdir())
    assert run.results["img@linux/arm64"].log_path == str(logs / "img@linux-arm64.log")


FAMILY = """\
schema: 1
registry: r:5000
namespace: base
images:
  img: {from: scratch, template: layer, tags: ["1"], platforms: [linux/amd64, linux/arm64]}
  img2: {from: img, template: layer, tags: ["1", "2"], platforms: [linux/amd64, linux/arm64]}
  solo: {from: scratch, template: layer, tags: ["1"]}
"""


def summaries(run: Builder) -> tuple[str, str]:
    """The table's last line and the line `finish` prints after a push."""
    report = run.run()
    return report.table().splitlines()[-1], pushed_summary(report)


def test_summaries_count_images_not_platform_rows_and_name_only_what_was_pushed(
        valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    registry, backend = FakeRegistry(), FakeBackend()
    manifest = valid(FAMILY)
    assert summaries(builder(manifest, backend, tmp_path, registry=registry)) == (
        "3 images (5 rows: one per platform): 3 pushed",
        "pushed to r:5000: r:5000/base/img, r:5000/base/img2, r:5000/base/solo")
    assert summaries(builder(manifest, backend, tmp_path, registry=registry)) == (
        "3 images (5 rows: one per platform): 3 up-to-date",
        "nothing pushed to r:5000: every tag already held its image")
    changed = valid(FAMILY.replace("img2: {from: img,", "img2: {from: img, env: {X: '1'},"))
    assert summaries(builder(changed, backend, tmp_path, registry=registry)) == (
        "3 images (5 rows: one per platform): 2 up-to-date, 1 pushed", "pushed to r:5000: r:5000/base/img2")
    # Rebuilt into the very same images (the same inputs and time): built, and nothing pushed.
    forced = builder(changed, backend, tmp_path, registry=registry, force=True)
    assert summaries(forced) == ("3 images (5 rows: one per platform): 3 built",
                                 "nothing pushed to r:5000: every tag already held its image")
    assert set(statuses(forced).values()) == {"built"}


def test_a_failure_is_counted_per_image(valid: Callable[[str], Manifest], tmp_path: Path) -> None:
    report = builder(valid(FAMILY), FakeBackend(fail={"img"}), tmp_path, jobs=1, keep_going=True).run()
    assert report.table().splitlines()[-1] == "3 images (5 rows: one per platform): 1 built, 1 failed, 1 skipped"
    with pytest.raises(BuildFailed) as caught:
        finish(report, None, Console(io.StringIO()), False)
    assert str(caught.value) == (
        "1 image(s) failed, 1 skipped; first failure: img@linux/amd64: step 2/2 (RUN false): The command "
        f"'/bin/sh -c false' returned a non-zero code: 1; full log: {tmp_path / 'logs' / 'img@linux-amd64.log'}")
