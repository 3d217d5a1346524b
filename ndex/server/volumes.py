"""The voxel store of `ndex serve`: one zarr v3 array per channel and level, read and written by tensorstore.

Nothing is created by reads: a never-written region, level or channel reads as zeros. A channel's arrays
(every level, metadata only) and its group are created on its first write, and grown, never truncated,
when the layout grows (ndex.server.arrays). Writes merge (non-zero voxels replace, zeros keep) while
holding the locks of the chunks they touch (ndex.server.chunklocks: threads of this process, and on
PostgreSQL every process of every host), so overlapping writes behave as if they ran one after the other.

Beside this module: ndex.server.layout (levels and chunk maths, pure), ndex.server.chunk_frames (whole
chunks served and stored as their wire frames), ndex.server.scans (ids and bounding boxes from stored
chunks) and ndex.server.pyramid (the downsample loop over stored levels).
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import numpy as np
import tensorstore as ts

from ndex import __version__
from ndex.errors import OutOfBounds, UsageError
from ndex.geometry import BOSS_CUBOID, Box, Triple, iter_blocks
from ndex.server import chunk_frames, pyramid, scans
from ndex.server.arrays import LevelArrays, StoreError, wait
from ndex.server.chunklocks import ChunkLocks
from ndex.server.layout import STORABLE_DTYPES, ChannelLayout, chunk_index, index, slabs, stored_part
from ndex.server.limits import check_deadline

LAYOUT_KEY = "ndex-store.json"  # {"layout": N}: the store's layout version (ndex.server.migrate)


class VolumeStore:
    """Channel arrays under one root URL: a directory, file:///DIR or s3://BUCKET/PREFIX.

    `locks` guards every chunk write; the default (threads of this process only) is right for one
    process, and a server on PostgreSQL passes locks that hold across processes (chunklocks.locks_for).
    """

    def __init__(self, url: str, *, cache_bytes: int = 256 * 2**20, concurrency: int | None = None,
                 fsync: bool = False, locks: ChunkLocks | None = None) -> None:
        self.url = url
        self.arrays = LevelArrays(url, cache_bytes=cache_bytes, concurrency=concurrency, fsync=fsync)
        self.locks = locks or ChunkLocks()

    # --- reads ------------------------------------------------------------------------------------

    def level_shape(self, layout: ChannelLayout, res: int) -> Triple:
        self._check_res(layout, res)
        return layout.level_shape(res)

    def read(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> np.ndarray:
        self._check_region(layout, res, box, t_range)
        out_shape = (t_range[1] - t_range[0], *box.shape_zyx)
        handle = self.arrays.reader(layout, res, box, t_range)
        inside = stored_part(handle.shape, box, t_range) if handle is not None else None
        if handle is None or inside is None:
            return np.zeros(out_shape, dtype=layout.dtype)
        part_box, part_t = inside
        data = wait(handle[index(part_box, part_t)].read(), f"reading {layout.key}/{res}")
        if part_box == box and part_t == t_range:
            return data
        out = np.zeros(out_shape, dtype=layout.dtype)
        out[(slice(part_t[0] - t_range[0], part_t[1] - t_range[0]), *part_box.slices_in(box))] = data
        return out

    def stored_frame(self, layout: ChannelLayout, res: int, box: Box, t: int) -> bytes | None:
        """The stored chunk of `box` when it is exactly BOSS's wire body (ndex.server.chunk_frames)."""
        self._check_region(layout, res, box, (t, t + 1))
        return chunk_frames.stored_frame(self.arrays, layout, res, box, t)

    def ids(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> np.ndarray:
        """Distinct non-zero values in the box: only stored chunks are read (empty space holds none)."""
        self._check_region(layout, res, box, t_range)
        return scans.ids(self, layout, res, box, t_range)

    def bounding_box(self, layout: ChannelLayout, res: int, obj_id: int,
                     tight: bool) -> tuple[Box, tuple[int, int]] | None:
        self._check_res(layout, res)
        return scans.bounding_box(self, layout, res, obj_id, tight)

    # --- writes -----------------------------------------------------------------------------------

    def write(self, layout: ChannelLayout, res: int, box: Box, t0: int, data: np.ndarray, *,
              frame: bytes | None = None) -> None:
        """Merge `data` ((t, z, y, x)) into `box`; `frame`, the blosc-1 frame it was decoded from, may be
        stored as the chunk itself (ndex.server.chunk_frames)."""
        self._check_data(layout, box, data)
        t_range = (t0, t0 + data.shape[0])
        self._check_region(layout, res, box, t_range)
        if not data.any():
            return  # zeros keep what is stored: nothing would change
        handle = self.arrays.writer(layout, res)
        if frame is not None and chunk_frames.frame_is_the_chunk(box, data):
            with self.locked(layout.key, res, t0, box):
                chunk_frames.put_frame(handle, layout, res, box, t0, frame)
            return
        for t, slab in slabs(box, t_range):
            piece = data[(t - t0, *slab.slices_in(box))]
            if piece.any():
                with self.locked(layout.key, res, t, slab):
                    self._merge(handle, t, slab, piece)

    def to_black(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> None:
        self._check_region(layout, res, box, t_range)
        handle = self.arrays.reader(layout, res, box, t_range)
        inside = stored_part(handle.shape, box, t_range) if handle is not None else None
        if handle is None or inside is None:
            return  # nothing stored there: it already reads as zeros
        part_box, part_t = inside
        for t, slab in slabs(part_box, part_t):
            check_deadline()
            with self.locked(layout.key, res, t, slab):
                wait(handle[index(slab, (t, t + 1))].write(0), f"clearing {layout.key}/{res}")

    def downsample(self, layout: ChannelLayout, *, base_res: int = 0,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> None:
        """Build the levels above `base_res` (ndex.server.pyramid); raises pyramid.DownsampleCancelled."""
        self._check_res(layout, base_res)
        top = base_res + layout.levels - 1
        if top <= base_res:
            return
        self._check_res(layout, top)
        pyramid.build_levels(self, layout, base_res, progress, cancelled)

    def delete(self, key: str) -> None:
        self.arrays.delete(key)

    def locked(self, key: str, res: int, t: int, slab: Box) -> contextlib.AbstractContextManager[None]:
        """Hold every chunk the slab touches (see ndex.server.chunklocks for what holds and why)."""
        return self.locks.hold((key, res, t, chunk_index(c)) for c in iter_blocks(slab, BOSS_CUBOID))

    def _merge(self, handle: ts.TensorStore, t: int, slab: Box, piece: np.ndarray) -> None:
        """Store `piece` over the slab with the merge rule; the caller holds the slab's chunk locks."""
        where = handle[index(slab, (t, t + 1))]
        if piece.all():
            merged = piece  # every voxel replaces: no need to know what is stored
        else:
            # a chunk never written reads as fill without touching a chunk file, so empty space is cheap
            merged = wait(where.read(), "reading for a merge")[0]
            np.copyto(merged, piece, where=piece != 0)
        wait(where.write(merged[None]), "writing")

    # --- the store as a whole -----------------------------------------------------------------------

    def layout_version(self) -> int | None:
        """The layout recorded at the store's root (ndex.server.migrate); None if none was recorded."""
        found = wait(self.arrays.root.read(LAYOUT_KEY), f"reading {LAYOUT_KEY}")
        if found.state != "value":
            return None
        try:
            return int(json.loads(bytes(found.value))["layout"])
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"{self.url}/{LAYOUT_KEY} is damaged: restore it from a backup, or write "
                             '{"layout": 1} into it if this store was written by ndex 2.0') from None

    def record_layout(self, version: int) -> None:
        doc = {"layout": version, "written_by": f"ndex {__version__}"}
        wait(self.arrays.root.write(LAYOUT_KEY, json.dumps(doc).encode()), f"writing {LAYOUT_KEY}")

    def close(self) -> None:
        self.arrays.forget()
        self.locks.close()

    # --- validation -----------------------------------------------------------------------------

    def _check_res(self, layout: ChannelLayout, res: int) -> None:
        if layout.dtype not in STORABLE_DTYPES:
            raise UsageError(f"channel {layout.key} has dtype {layout.dtype!r}; "
                             f"use one of {', '.join(STORABLE_DTYPES)}")
        if not 0 <= res <= layout.max_res:
            raise OutOfBounds(f"resolution {res} is outside 0..{layout.max_res} for channel {layout.key}")

    def _check_region(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> None:
        self._check_res(layout, res)
        shape = layout.level_shape(res)
        if not Box((0, 0, 0), shape).contains(box):
            raise OutOfBounds(f"box {box} lies outside level {res} of {layout.key} (x, y, z shape {shape}); "
                              "clip the request to the coordinate frame")
        t0, t1 = t_range
        if not 0 <= t0 < t1 <= layout.time_samples + 1:
            raise OutOfBounds(f"time range {t0}:{t1} lies outside 0:{layout.time_samples + 1} "
                              f"for channel {layout.key}")

    def _check_data(self, layout: ChannelLayout, box: Box, data: np.ndarray) -> None:
        if data.dtype != np.dtype(layout.dtype):
            raise UsageError(f"data is {data.dtype} but channel {layout.key} stores {layout.dtype}; "
                             "convert the data or write to a channel of that type")
        if data.ndim != 4 or data.shape[1:] != box.shape_zyx or data.shape[0] < 1:
            raise UsageError(f"data shape {data.shape} does not match box {box}: expected "
                             f"(t, {', '.join(map(str, box.shape_zyx))})")
