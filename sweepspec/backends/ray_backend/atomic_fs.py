"""The filesystem Ray writes the run directory's ``tune/`` through: the local one, except that
every file is written whole or not at all.

Ray copies its experiment state (``experiment_state-*.json``, ``tuner.pkl``, the searcher's
state) and the trials' checkpoints from a staging directory into ``tune/`` with pyarrow,
which writes each file in place: a driver killed in the middle of a copy, or a disk that
fills up during it, leaves a torn file, and Ray, finding its newest experiment state torn on
resume, silently starts the experiment over (every trial again). Here a file is written to a
hidden temporary name beside it and renamed over the old one when it is complete, so that
``tune/`` always holds the last whole copy.

Given to Ray as ``RunConfig(storage_filesystem=...)`` (and to ``Tuner.restore``); it is
pickled to Ray's workers with the rest of the run's storage settings.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from sweepspec.run.crash import crash_point

__all__ = ["atomic_local_fs"]


class _WholeFile:
    """A file object that writes ``path``'s temporary twin and renames it over ``path`` when
    it is closed after no failed write (a failed or abandoned one leaves ``path`` as it was)."""

    def __init__(self, path: str) -> None:
        head, name = os.path.split(path)
        self.path = path
        self.tmp = os.path.join(head, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        self.fh = open(self.tmp, "wb")  # noqa: SIM115 (closed in close())
        self.failed = False
        self.closed = False
        #: Ray's experiment state: a crash point halfway through its first write (tests)
        self.watched = name.startswith("experiment_state-")

    def write(self, data: Any) -> int:
        try:
            if self.watched:
                self.watched = False
                view = memoryview(data)
                half = len(view) // 2
                self.fh.write(view[:half])
                self.fh.flush()
                crash_point("mid_state_write")
                return half + self.fh.write(view[half:])
            return self.fh.write(data)
        except BaseException:
            self.failed = True
            raise

    def flush(self) -> None:
        try:
            self.fh.flush()
        except BaseException:
            self.failed = True
            raise

    def tell(self) -> int:
        return self.fh.tell()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.fh.close()
            if not self.failed:
                os.replace(self.tmp, self.path)
                return
        except BaseException:
            self.failed = True
            raise
        finally:
            if self.failed:
                with contextlib.suppress(OSError):
                    os.unlink(self.tmp)


class AtomicLocalHandler(pafs.FileSystemHandler):  # type: ignore[misc]
    """pyarrow's local filesystem, with whole-file output streams (see the module)."""

    def __init__(self) -> None:
        self.fs = pafs.LocalFileSystem()

    def __reduce__(self) -> tuple[Any, ...]:
        return (AtomicLocalHandler, ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __hash__(self) -> int:
        return hash(AtomicLocalHandler)

    def get_type_name(self) -> str:
        return "sweepspec-atomic-local"

    def normalize_path(self, path: str) -> str:
        return str(self.fs.normalize_path(path))

    def equals(self, other: Any) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return list(self.fs.get_file_info(paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return list(self.fs.get_file_info(selector))

    def create_dir(self, path: str, recursive: bool) -> None:
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("sweepspec: deleting the contents of / is refused")

    def delete_file(self, path: str) -> None:
        self.fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self.fs.open_input_stream(src) as source, self.open_output_stream(dest, None) as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)

    def open_input_stream(self, path: str) -> Any:
        return self.fs.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pa.PythonFile(_WholeFile(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self.fs.open_append_stream(path)


def atomic_local_fs() -> pafs.PyFileSystem:
    """The local filesystem whose files are written whole or not at all."""
    return pafs.PyFileSystem(AtomicLocalHandler())
