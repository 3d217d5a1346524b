"""Building a channel's resolution levels in the store: ndex.server.downsample's loop over stored arrays.

The loop (kernels, tiles, bounded memory) knows nothing of tensorstore; `_Level` is its view of one
level of one channel: reads through the store, writes under the chunk locks, and answers "is anything
stored here" from chunk listings, so empty space is skipped without reading it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorstore as ts

from ndex.errors import NdexError
from ndex.geometry import Box
from ndex.server import downsample as ds
from ndex.server.arrays import wait
from ndex.server.layout import ChannelLayout, chunk_range, index, slabs

if TYPE_CHECKING:
    from ndex.server.volumes import VolumeStore

ROWS_KEPT = 4  # chunk-row listings a level keeps: tiles walk a row at a time


class DownsampleCancelled(NdexError):
    """A downsample stopped because its `cancelled()` callback turned True; finished levels remain."""


def build_levels(store: VolumeStore, layout: ChannelLayout, base_res: int,
                 progress: Callable[[int, int], None] | None,
                 cancelled: Callable[[], bool] | None) -> None:
    """Build levels base_res+1 .. base_res+levels-1 of the channel, each from the one below."""
    top = base_res + layout.levels - 1
    jobs = [ds.LevelJob(_Level(store, layout, r - 1), _Level(store, layout, r),
                        layout.level_shape(r - 1), layout.level_shape(r),
                        (2, 2, 2 if layout.halves_z(r) else 1), layout.time_samples + 1)
            for r in range(base_res + 1, top + 1)]
    try:
        ds.build_levels(jobs, dtype=np.dtype(layout.dtype), annotation=layout.annotation,
                        progress=progress, cancelled=cancelled)
    except ds.Cancelled as exc:
        raise DownsampleCancelled(f"downsample of {layout.key} {exc}") from None


class _Level:
    """One level of one channel as the downsample loop sees it (ndex.server.downsample.LevelIO)."""

    def __init__(self, store: VolumeStore, layout: ChannelLayout, res: int) -> None:
        self.store, self.layout, self.res = store, layout, res
        self._rows: dict[tuple[int, int], set[tuple[int, int]]] = {}

    def read(self, t: int, box: Box) -> np.ndarray:
        return self.store.read(self.layout, self.res, box, (t, t + 1))[0]

    def write(self, t: int, box: Box, block: np.ndarray) -> None:
        handle = self.store.arrays.writer(self.layout, self.res)
        for _, slab in slabs(box, (t, t + 1)):
            with self.store.locked(self.layout.key, self.res, t, slab):
                wait(handle[index(slab, (t, t + 1))].write(block[slab.slices_in(box)][None]),
                     f"writing level {self.res}")

    def has_data(self, t: int, box: Box) -> bool:
        handle = self.store.arrays.reader(self.layout, self.res, box, (t, t + 1))
        if handle is None:
            return False
        for zc in chunk_range(box.start[2], box.stop[2], 2):
            row = self._row(handle, t, zc)
            if any((yc, xc) in row for yc in chunk_range(box.start[1], box.stop[1], 1)
                   for xc in chunk_range(box.start[0], box.stop[0], 0)):
                return True
        return False

    def _row(self, handle: ts.TensorStore, t: int, zc: int) -> set[tuple[int, int]]:
        # keep only the latest few rows so memory stays bounded
        if (t, zc) not in self._rows:
            if len(self._rows) >= ROWS_KEPT:
                self._rows.pop(next(iter(self._rows)))
            self._rows[(t, zc)] = self.store.arrays.chunk_rows(handle, t, zc)
        return self._rows[(t, zc)]
