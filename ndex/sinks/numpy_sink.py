"""Pull into memory: one preallocated numpy array, for the Python API.

The array is the whole region ((z, y, x), or (t, z, y, x) for a time series); blocks are placed
from worker threads without a lock because the engine's blocks never overlap. Pass
`spec.extra["out"]` to fill an array of your own (right shape and dtype). Nothing survives the
process, so `completed` only knows the slabs of this instance.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ndex.errors import UsageError
from ndex.geometry import Box
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import conform, time_index, volume_shape


class NumpySink:
    """`.array` holds the pulled region once finish() has returned."""

    places_blocks = True

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.array = self._allocate(spec)
        self._done: set[Box] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _allocate(spec: OutputSpec) -> np.ndarray:
        shape, dtype = volume_shape(spec), np.dtype(spec.dtype)
        out = spec.extra.get("out")
        if out is None:
            return np.zeros(shape, dtype)  # zero pages are mapped lazily: memory grows as blocks land
        if out.shape != shape or out.dtype != dtype:
            raise UsageError(f"the output array is {out.shape} {out.dtype}, the pull needs {shape} {dtype.name}")
        return out

    def completed(self, slabs: list[Box]) -> set[Box]:
        with self._lock:
            return {s for s in slabs if s in self._done}

    def write_block(self, box: Box, data: np.ndarray, t: int | None) -> None:
        ti = time_index(self.spec, t)
        data = conform(self.spec, box, data)
        index = box.slices_in(self.spec.box)
        self.array[index if ti is None else (ti, *index)] = data

    def write_slab(self, slab: Box, data: np.ndarray, t: int | None) -> None:
        self.write_block(slab, data, t)

    def slab_done(self, slab: Box) -> None:
        with self._lock:
            self._done.add(slab)

    def finish(self) -> list[Path]:
        return []

    def abort(self) -> None:
        """Nothing on disk to clean up."""
