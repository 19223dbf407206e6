"""Images out of the engine for upload, several in one `docker save`.

`docker save` of an image writes every layer of it, its parent's too:
exporting forty images FROM one root one at a time makes the engine write
the root's layers forty times, while it is building the others. Images saved
together write the layers they share once. So one export runs at a time, and
every image asked for while it runs goes into the next one: while the builds
come faster than exports, exports carry more images each, and none waits for
an image that is not built yet.

The engine is a parameter (javabase.engine.Backend)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

from ..engine import Backend
from ..errors import StepError
from ..report import Phases
from .oci import SavedImage, read_saved_all


class Exports:
    """saved(image ID) -> SavedImage, from an archive shared with the images
    exported with it; release(it) when done with it: an archive is deleted once
    every image of it was released. Thread-safe: the thread that finds no export
    running exports everything asked for so far, the others wait for it."""

    def __init__(self, backend: Backend, phases: Phases | None = None) -> None:
        self.backend = backend
        self.phases = phases or Phases()
        self.condition = threading.Condition()
        self.waiting: dict[str, Future[SavedImage]] = {}  # asked for, not in an export yet
        self.running = False
        self.users: dict[Path, int] = {}  # an export's directory -> images of it not released

    def saved(self, image_id: str) -> SavedImage:
        """The image as the engine saved it. Raises StepError when the engine
        does not have it, or its archive is unreadable."""
        with self.condition:
            future = self.waiting.setdefault(image_id, Future())
            while self.running and not future.done():
                self.condition.wait()
            if not future.done():
                self.running = True
                batch, self.waiting = self.waiting, {}
        if not future.done():
            try:
                self.export(batch)  # every future of the batch gets its image or an error
            finally:
                with self.condition:
                    self.running = False
                    self.condition.notify_all()
        return future.result()

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

    def drop(self, directory: Path) -> None:
        with self.condition:
            self.users.pop(directory, None)
        shutil.rmtree(directory, ignore_errors=True)
