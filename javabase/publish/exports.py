"""Images out of the engine for upload, several in one `docker save`.

`docker save` of an image writes every layer of it, its parent's too:
exporting forty images FROM one root one at a time makes the engine write
the root's layers forty times, while it is building the others. Images saved
together write the layers they share once. So one export runs at a time and
takes every image asked for (`saved`) or announced (`want`) so far: while the
builds come faster than exports, exports carry more images each, and none
waits for an image that is not built yet.

Which images wait for the builds to be done is the pusher's choice
(javabase.publish.pusher: an image whose export would mostly write its
parent's layers again); it announces them all at once, so that they go in one
export.

The engine is a parameter (javabase.engine.Backend)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

from ..engine import Backend
from ..errors import Interrupted, StepError
from ..report import Phases
from .oci import SavedImage, read_saved_all


class Exports:
    """saved(image ID) -> SavedImage, from an archive shared with the images
    exported with it; release(it) when done with it. An archive is deleted once
    every image of it was taken and released, or at close(). Thread-safe: the
    thread that finds no export running exports everything asked for or
    announced so far, the others wait for it."""

    def __init__(self, backend: Backend, phases: Phases | None = None) -> None:
        self.backend = backend
        self.phases = phases or Phases()
        self.condition = threading.Condition()
        self.futures: dict[str, Future[SavedImage]] = {}  # asked for or announced, not taken yet
        self.waiting: set[str] = set()  # of those, not in an export yet
        self.running = False
        self.closed = False
        self.users: dict[Path, int] = {}  # an export's directory -> its images not taken, or taken and not released

    def want(self, image_ids: list[str]) -> None:
        """Announce images that will be asked for: the next export takes them too."""
        with self.condition:
            for image_id in image_ids:
                if image_id not in self.futures:
                    self.futures[image_id] = Future()
                    self.waiting.add(image_id)

    def saved(self, image_id: str) -> SavedImage:
        """The image as the engine saved it. Raises StepError when the engine
        does not have it, or its archive is unreadable; Interrupted once close()
        was called."""
        while True:
            with self.condition:
                if self.closed:
                    raise Interrupted(f"interrupted before exporting {image_id[7:19]}")
                if image_id not in self.futures:
                    self.futures[image_id] = Future()
                    self.waiting.add(image_id)
                future = self.futures[image_id]
                while self.running and not future.done() and not self.closed:
                    self.condition.wait()
                if self.closed:
                    raise Interrupted(f"interrupted before exporting {image_id[7:19]}")
                batch: dict[str, Future[SavedImage]] = {}
                if not future.done():
                    self.running = True
                    batch = {i: self.futures[i] for i in sorted(self.waiting)}
                    self.waiting = set()
            if batch:
                self.run(batch)
            with self.condition:
                if self.closed:  # close() or the export's end released it
                    raise Interrupted(f"interrupted after exporting {image_id[7:19]}")
                if self.futures.get(image_id) is future:
                    del self.futures[image_id]  # taken: this thread releases it
                    return future.result()
            # another thread asking for the same image took it: export it again for this one

    def run(self, batch: dict[str, Future[SavedImage]]) -> None:
        """Export the batch; when close() came meanwhile, release what it made."""
        try:
            self.export(batch)  # every future of the batch gets its image or an error
        finally:
            with self.condition:
                self.running = False
                self.condition.notify_all()
                closed = self.closed
            if closed:
                for future in batch.values():
                    if future.done() and not future.cancelled() and future.exception() is None:
                        self.release(future.result())

    def export(self, batch: dict[str, Future[SavedImage]]) -> None:
        """One `docker save` of the batch; each future gets its image, or the error.
        When the engine will not save several together (one of them is gone), each
        is saved alone, so that the failure is that image's only."""
        try:
            directory, found = self.save(sorted(batch))
        except BaseException as exc:  # noqa: BLE001 - each waiting image is told, Ctrl-C included
            if len(batch) > 1 and isinstance(exc, Exception):
                for image_id, future in batch.items():
                    self.export({image_id: future})
                return
            for future in batch.values():
                future.set_exception(exc)
            return
        shown = ", ".join(i[7:19] for i in sorted(batch))
        users = sum(1 for i in batch if i in found)
        with self.condition:
            self.users[directory] = users
        for image_id, future in batch.items():
            if image_id in found:
                future.set_result(found[image_id])
            else:
                future.set_exception(StepError(f"export {image_id[7:19]}: the engine's archive of {shown} does "
                                               "not hold this image"))
        if not users:
            self.drop(directory)

    def save(self, ids: list[str]) -> tuple[Path, dict[str, SavedImage]]:
        """`docker save` of these images into a directory of its own, and what it holds.
        Raises StepError when the archive is unreadable, or what the engine raised."""
        directory = Path(tempfile.mkdtemp(prefix="javabase-export-"))
        archive = directory / "images.tar"
        try:
            with self.phases.timed("export from the engine (summed)"):
                self.backend.save(ids, archive, lambda _count: None)
            self.phases.count("exports")
            self.phases.count("exported bytes", archive.stat().st_size)
            try:
                return directory, read_saved_all(archive)
            except (OSError, ValueError, KeyError) as exc:
                raise StepError(f"export {', '.join(i[7:19] for i in ids)}: the engine's archive is unreadable "
                                f"({exc})") from None
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def release(self, saved: SavedImage) -> None:
        """Done with this image's archive."""
        directory = saved.archive.parent
        with self.condition:
            left = self.users.get(directory, 1) - 1
            self.users[directory] = left
        if left <= 0:
            self.drop(directory)

    def close(self) -> None:
        """No image will be asked for any more: the archives of images announced
        and never taken are deleted now, or when the export running now ends
        (those taken go when released); saved() raises Interrupted from now on."""
        with self.condition:
            self.closed = True
            untaken = [f.result() for f in self.futures.values()
                       if f.done() and not f.cancelled() and f.exception() is None]
            self.futures, self.waiting = {}, set()
            self.condition.notify_all()
        for saved in untaken:
            self.release(saved)

    def drop(self, directory: Path) -> None:
        with self.condition:
            self.users.pop(directory, None)
        shutil.rmtree(directory, ignore_errors=True)
