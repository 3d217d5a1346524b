"""Pull into a numpy array: in memory for the Python API, or a `.npy` file when one is named.

The array is the whole region ((z, y, x), or (t, z, y, x) for a time series); blocks are placed
from worker threads without a lock because the engine's blocks never overlap.

* in memory (default): `spec.extra["out"]` may give an array of your own to fill. Nothing survives
  the process, so `completed` only knows the slabs of this instance.
* `.npy` file (`stack_filename` ending in .npy): a memory map of `<name>.npy.partial`, renamed at
  finish(); finished slabs are flushed and recorded in `<name>.npy.progress.json`, so an
  interrupted pull resumes. The file's blocks are reserved up front (posix_fallocate): a full disk
  is then a SinkError at the start instead of a SIGBUS when a mapped page cannot be stored.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from ndex.errors import UsageError
from ndex.geometry import Box, z_slabs
from ndex.sinks._files import disk_errors, make_dir, partial_of, publish
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import conform, fingerprint, time_index, volume_shape
from ndex.sinks.ledger import SlabLedger

log = logging.getLogger(__name__)


class NumpySink:
    """`.array` holds the pulled region once finish() has returned; `.path` is the .npy file, if any."""

    supports_partial_writes = True

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self._done: set[Box] = set()
        self._lock = threading.Lock()
        name = spec.stack_filename
        self.path = Path(spec.outdir) / name if name and name.lower().endswith(".npy") else None
        self._ledger: SlabLedger | None = None
        self.array = self._allocate(spec) if self.path is None else self._map_file(self.path)

    @staticmethod
    def _allocate(spec: OutputSpec) -> np.ndarray:
        shape, dtype = volume_shape(spec), np.dtype(spec.dtype)
        out = spec.extra.get("out")
        if out is None:
            return np.zeros(shape, dtype)  # zero pages are mapped lazily: memory grows as blocks land
        if out.shape != shape or out.dtype != dtype:
            raise UsageError(f"the output array is {out.shape} {out.dtype}, the pull needs {shape} {dtype.name}")
        return out

    def _map_file(self, path: Path) -> np.ndarray:
        partial = partial_of(path)
        self._ledger = SlabLedger(path.with_name(path.name + ".progress.json"), fingerprint(self.spec, "numpy"))
        if self._ledger.load() and partial.is_file():
            log.info("continuing %s", partial)
            with disk_errors(partial):
                return np.load(partial, mmap_mode="r+")  # the fingerprint vouches for shape and dtype
        make_dir(path.parent)
        mapped = create_npy(partial, volume_shape(self.spec), np.dtype(self.spec.dtype))
        self._ledger.save()
        return mapped

    def completed(self, slabs: list[Box]) -> set[Box]:
        if self._ledger is not None:
            return self._ledger.completed(slabs)
        with self._lock:
            return {s for s in slabs if s in self._done}

    def write(self, box: Box, data: np.ndarray, t: int | None) -> None:
        ti = time_index(self.spec, t)
        data = conform(self.spec, box, data)
        index = box.slices_in(self.spec.box)
        self.array[index if ti is None else (ti, *index)] = data

    def slab_failed(self, slab: Box) -> None:
        """Nothing to undo: the slab is not marked done, so a re-run fetches it again."""

    def slab_done(self, slab: Box) -> None:
        if self._ledger is None:
            with self._lock:
                self._done.add(slab)
            return
        with disk_errors(partial_of(self.path)):  # type: ignore[arg-type]  # a ledger means a file
            self.array.flush()  # type: ignore[attr-defined]  # a memmap: on disk before the ledger says so
        self._ledger.mark(slab)

    def finish(self) -> list[Path]:
        if self.path is None:
            return []
        self._ledger.require_all(z_slabs(self.spec.box), self.path)  # type: ignore[union-attr]  # a path means a ledger
        with disk_errors(partial_of(self.path)):
            self.array.flush()  # type: ignore[attr-defined]  # a memmap
        publish(partial_of(self.path), self.path)
        self._ledger.remove()  # type: ignore[union-attr]
        return [self.path]

    def abort(self) -> None:
        """Nothing to undo: the .npy.partial and its ledger (if any) are the resumable state."""


def create_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.memmap:
    """A zero-filled .npy memory map whose disk blocks are reserved now (ENOSPC here, not SIGBUS later)."""
    with disk_errors(path):
        mapped = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, path.stat().st_size)
        finally:
            os.close(fd)
    return mapped
