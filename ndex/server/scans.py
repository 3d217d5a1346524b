"""Questions about what a channel holds, answered from its stored chunks: the ids in a box, the box of an id.

The work follows what is stored, never the frame: a shallow box lists its few chunk rows, a deep one
lists the stored chunks of the time sample once, and only stored chunks are read (empty space holds no
id). Each chunk checks the request's deadline (ndex.server.limits), so no scan outlives its request.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import tensorstore as ts

from ndex.geometry import Box
from ndex.server.layout import ChannelLayout, chunk_range, cuboid_at, extent_of
from ndex.server.limits import check_deadline

if TYPE_CHECKING:
    from ndex.server.volumes import VolumeStore

ROW_LISTINGS = 64  # a scan this many chunk rows deep lists row by row; deeper, it lists the time sample once


def ids(store: VolumeStore, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> np.ndarray:
    """Distinct non-zero values in the box (the caller has checked the region)."""
    found = np.zeros(0, dtype=np.uint64)
    handle = store.arrays.reader(layout, res, box, t_range)
    if handle is None:
        return found
    for t in range(*t_range):
        for cuboid in stored_cuboids(store, handle, layout, res, t, box):
            values = np.unique(store.read(layout, res, cuboid, (t, t + 1)))
            found = np.union1d(found, values[values != 0].astype(np.uint64))
    return found


def bounding_box(store: VolumeStore, layout: ChannelLayout, res: int, obj_id: int,
                 tight: bool) -> tuple[Box, tuple[int, int]] | None:
    """The box of `obj_id` at time 0 (the cuboids holding it unless `tight`); None if it is nowhere."""
    handle = store.arrays.reader(layout, res, Box((0, 0, 0), layout.level_shape(res)), (0, 1))
    if handle is None or not 0 < obj_id <= np.iinfo(layout.dtype).max:
        return None
    lo: tuple[int, ...] | None = None
    hi: tuple[int, ...] | None = None
    for cuboid in stored_cuboids(store, handle, layout, res, t=0):
        block = store.read(layout, res, cuboid, (0, 1))[0]
        hit = extent_of(block == np.asarray(obj_id, dtype=block.dtype), cuboid, tight)
        if hit is not None:
            lo = hit.start if lo is None else tuple(map(min, lo, hit.start))
            hi = hit.stop if hi is None else tuple(map(max, hi, hit.stop))
    return None if lo is None or hi is None else (Box(lo, hi), (0, 1))  # type: ignore[arg-type]  # x, y, z


def stored_cuboids(store: VolumeStore, handle: ts.TensorStore, layout: ChannelLayout, res: int, t: int,
                   within: Box | None = None) -> Iterator[Box]:
    """The parts of stored chunks at time t inside `within` (default: the level), in (z, y, x) order."""
    within = within or Box((0, 0, 0), layout.level_shape(res))
    for zc, yc, xc in _stored_chunks(store, handle, t, chunk_range(within.start[2], within.stop[2], 2)):
        check_deadline()
        clipped = cuboid_at(zc, yc, xc).intersect(within)
        if clipped is not None:
            yield clipped


def _stored_chunks(store: VolumeStore, handle: ts.TensorStore, t: int, rows: range) -> list[tuple[int, int, int]]:
    """(z, y, x) indices of the stored chunks of time t in the chunk rows `rows`, sorted."""
    if len(rows) <= ROW_LISTINGS:
        return [(zc, yc, xc) for zc in rows for yc, xc in sorted(store.arrays.chunk_rows(handle, t, zc))]
    found = (tuple(int(v) for v in k.split("/")) for k in store.arrays.list_chunks(handle, f"c/{t}/"))
    return sorted(c for c in found if len(c) == 3 and c[0] in rows)  # type: ignore[misc]  # z, y, x
