"""Band assembly: a wrapper that gives a sink without partial writes (TIFF) the `write(box, ...)` of one that has.

The engine cuts each z-slab into bands (the whole slab, or parts of its XY extent on the cuboid
grid: see pull_plan.py) and feeds them in `order`. Blocks arrive from worker threads in any order
within a band. The wrapper copies each into one buffer of the band's size; when the engine says the
band is done, the buffer is written to the inner sink (every time point, then `slab_done`), and the
next band becomes current. A block of a later band waits, holding its memory and its slot in flight,
until its band is current: the engine submits blocks in band order, so every block of the current
band is already running and the wait always ends. Memory: one band buffer plus the blocks in flight.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ndex.geometry import Box
from ndex.sinks.base import OutputSpec, Sink


def band_key(box: Box) -> tuple[int, int, int]:
    """The order bands are written in: z, then y, then x."""
    return box.z[0], box.y[0], box.x[0]


class SlabAssembly:
    """`inner` fed whole bands, in the order of `order` (z, then y, then x), from blocks written in any order."""

    supports_partial_writes = True

    def __init__(self, inner: Sink, spec: OutputSpec, order: list[Box]) -> None:
        self.inner, self.spec = inner, spec
        self._order = list(order)
        self._next = 0  # index in _order of the slab being assembled
        self._buffer: np.ndarray | None = None
        self._cond = threading.Condition()
        self._aborted = False

    def completed(self, slabs: list[Box]) -> set[Box]:
        return self.inner.completed(slabs)

    def write(self, box: Box, data: np.ndarray, t: int | None) -> None:
        with self._cond:
            slab = self._wait_for(box)
            if slab is None:
                return  # aborted: the block is dropped with the run
            buffer = self._slab_buffer(slab)
        buffer[(self.spec.times.index(t), *box.slices_in(slab))] = data

    def slab_done(self, slab: Box) -> None:
        with self._cond:
            buffer = self._slab_buffer(slab)
        for t, plane in zip(self.spec.times, buffer):
            self.inner.write(slab, plane, t)
        self.inner.slab_done(slab)
        self._advance(slab)

    def slab_failed(self, slab: Box) -> None:
        self.inner.slab_failed(slab)
        self._advance(slab)

    def finish(self) -> list[Path]:
        return self.inner.finish()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()
        self.inner.abort()

    def _current(self) -> Box | None:
        return self._order[self._next] if self._next < len(self._order) else None

    def _wait_for(self, box: Box) -> Box | None:
        """The current slab once it holds `box` (None if aborted); the caller holds the lock."""
        while not self._aborted:
            slab = self._current()
            if slab is not None and slab.contains(box):
                return slab
            if slab is None or band_key(slab) > band_key(box):
                raise ValueError(f"block {box} is not in a band still to be written")
            self._cond.wait(0.2)
        return None

    def _slab_buffer(self, slab: Box) -> np.ndarray:
        # one allocation, reused for every band (an edge band is a smaller view of it): a fresh array per
        # band of another shape would leave freed ones in malloc's arenas and grow the process
        shape = (len(self.spec.times), *slab.shape_zyx)
        count = int(np.prod(shape))
        if self._buffer is None or self._buffer.size < count:
            self._buffer = None
            self._buffer = np.empty(count, self.spec.dtype)
        return self._buffer[:count].reshape(shape)

    def _advance(self, slab: Box) -> None:
        with self._cond:
            if self._current() == slab:
                self._next += 1
                self._cond.notify_all()
