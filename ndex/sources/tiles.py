"""CATMAID-style tiled slices: each z is a grid of equal tiles named by a pattern.

    base_path="/data/catmaid", tile_pattern="{z}/{row}_{col}.png", tile_size=(1024, 1024)

The pattern is a Python format string with {z}, {row}, {col} (and optionally {ch}); format specs
such as {z:05d} work. CATMAID leaves blank tiles out, so a missing tile is read as zeros and
counted in `missing_tiles`; a z whose every tile is missing is listed in `missing`. Tiles live on
the local file system, or in S3 when a bucket is given (--s3_bucket_name or an s3:// base_path).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ndex.errors import SourceError, UsageError
from ndex.geometry import Box, ceil_div
from ndex.sources.base import SourceSpec, check_slab, sample_points
from ndex.sources.images import check_slice, decode_image, to_grayscale
from ndex.sources.local import LocalFiles
from ndex.sources.slices import FileStore

log = logging.getLogger(__name__)


def check_pattern(pattern: str) -> None:
    try:
        pattern.format(z=0, row=0, col=0, ch="")
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"tile pattern {pattern!r} is not a format string over {{z}}, {{row}}, {{col}}, {{ch}}: "
                         f"{exc}") from None
    for name in ("{z", "{row", "{col"):
        if name not in pattern:
            raise UsageError(f"tile pattern {pattern!r} lacks {name}}}: every tile name needs z, row and col")


class TileSource:
    """Source protocol over tiled slices, stitched in parallel; a band (`read(box)`) reads only its tiles."""

    supports_partial_reads = True

    def __init__(self, spec: SourceSpec, store: FileStore) -> None:
        x, y = spec.size_xy
        if x is None or y is None or spec.z_range is None:
            raise UsageError("tiled slices need --x_extent, --y_extent and --z_range (the tiles do not tell)")
        check_pattern(spec.tile_pattern)
        self.spec, self.store = spec, store
        self.z_range = spec.z_range
        self.shape_xy = (x, y)
        self.origin_xy = spec.origin_xy
        self.grid = (ceil_div(self.shape_xy[0], spec.tile_size[0]), ceil_div(self.shape_xy[1], spec.tile_size[1]))
        self._absent: dict[int, set[tuple[int, int]]] = {}  # z -> (row, col) of the tiles found missing
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(spec.read_threads, thread_name_prefix="ndex-tiles")
        try:
            self.dtype = spec.dtype if spec.dtype is not None else self._probe_dtype()
        except BaseException:
            self._pool.shutdown()
            raise

    @property
    def missing(self) -> list[int]:
        """The z's none of whose tiles exist (seen so far)."""
        with self._lock:
            return sorted(z for z, cells in self._absent.items() if len(cells) == self.grid[0] * self.grid[1])

    @property
    def missing_tiles(self) -> int:
        with self._lock:
            return sum(len(cells) for cells in self._absent.values())

    def location(self, z: int, row: int, col: int) -> str:
        name = self.spec.tile_pattern.format(z=z, row=row, col=col, ch=self.spec.channel)
        return self.store.join(self.spec.base_path, name)

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        check_slab(self.z_range, z0, z1)
        (x0, y0), (sx, sy) = self.origin_xy, self.shape_xy
        return self.read(Box((x0, y0, z0), (x0 + sx, y0 + sy, z1)))

    def read(self, box: Box) -> np.ndarray:
        """The voxels of `box` (x/y in the input's coordinates): only the tiles it overlaps are read."""
        check_slab(self.z_range, *box.z)
        (ox, oy), (tx, ty) = self.origin_xy, self.spec.tile_size
        at = (box.y[0] - oy, box.x[0] - ox)
        rows = range(at[0] // ty, ceil_div(box.y[1] - oy, ty))
        cols = range(at[1] // tx, ceil_div(box.x[1] - ox, tx))
        out = np.zeros(box.shape_zyx, dtype=self.dtype)
        self._stitch([(z, r, c) for z in range(*box.z) for r in rows for c in cols], lambda z: out[z - box.z[0]], at)
        return out

    def validate(self, sample: int = 3) -> None:
        for z in sample_points(self.z_range, sample):
            self.read_slab(z, z + 1)

    def _stitch(self, cells: list[tuple[int, int, int]], target: Callable[[int], np.ndarray],
                at: tuple[int, int]) -> None:
        """Place tiles (z, row, col) in parallel into `target(z)`, whose first voxel is slice (y, x) `at`."""
        results = self._pool.map(lambda cell: self._place_tile(cell[0], cell[1], cell[2], target(cell[0]), at), cells)
        for (z, row, col), missing in zip(cells, results):
            if missing:
                with self._lock:
                    self._absent.setdefault(z, set()).add((row, col))

    def describe(self) -> str:
        x, y = self.shape_xy
        return (f"tiles {self.location(self.z_range[0], 0, 0)} .. (z {self.z_range[0]}:{self.z_range[1]}, "
                f"{self.grid[0]}x{self.grid[1]} tiles of {self.spec.tile_size[0]}x{self.spec.tile_size[1]}, "
                f"{x}x{y} {self.dtype.name}) from {self.store.describe()}")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def _place_tile(self, z: int, row: int, col: int, out: np.ndarray, at: tuple[int, int]) -> int:
        location = self.location(z, row, col)
        data = self.store.read(location)
        if data is None:
            log.debug("tile %s is missing: zeros (CATMAID omits empty tiles)", location)
            return 1
        tile = to_grayscale(decode_image(data, location), location, self.spec.rgb_channel)
        tx, ty = self.spec.tile_size
        x0, y0 = col * tx, row * ty
        need_x, need_y = min(tx, self.shape_xy[0] - x0), min(ty, self.shape_xy[1] - y0)
        h, w = tile.shape
        if not (need_x <= w <= tx and need_y <= h <= ty):
            raise SourceError(f"tile {location} is {w}x{h} (x by y) but tiles are {tx}x{ty} "
                              f"(at least {need_x}x{need_y} at this edge): fix --tile_size or the extents")
        tile = check_slice(tile[:need_y, :need_x], location, (need_x, need_y), self.dtype)
        ys = max(y0, at[0]), min(y0 + need_y, at[0] + out.shape[0])  # the part inside the band
        xs = max(x0, at[1]), min(x0 + need_x, at[1] + out.shape[1])
        out[ys[0] - at[0]:ys[1] - at[0], xs[0] - at[1]:xs[1] - at[1]] = tile[ys[0] - y0:ys[1] - y0, xs[0] - x0:xs[1] - x0]
        return 0

    def _probe_dtype(self) -> np.dtype:
        for z in sample_points(self.z_range, 3):
            data = self.store.read(self.location(z, 0, 0))
            if data is not None:
                location = self.location(z, 0, 0)
                tile = to_grayscale(decode_image(data, location), location, self.spec.rgb_channel)
                return tile.dtype.newbyteorder("=")
        raise SourceError(f"cannot learn the datatype: no first tile found (e.g. {self.location(self.z_range[0], 0, 0)}); "
                          "give --datatype")


def open_tiles(spec: SourceSpec) -> TileSource:
    if spec.s3_bucket or spec.base_path.startswith("s3://"):
        from ndex.sources.s3 import open_in_s3  # boto3 only when the tiles are in S3

        return open_in_s3(spec, TileSource)
    return TileSource(spec, LocalFiles())  # nothing to close if that fails
