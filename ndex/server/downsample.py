"""Building the resolution hierarchy: 2x reduction kernels and the tile-by-tile level loop.

Arrays here are (z, y, x); factors are (fx, fy, fz) like every triple in ndex.geometry. Image channels
are reduced by a rounded mean, annotation channels by the most frequent non-zero label. The loop works
one destination storage chunk at a time, so memory stays bounded whatever the size of a level.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ndex.geometry import BOSS_CUBOID, Box, Triple, ceil_div, iter_blocks

SOURCE_SLAB_BYTES = 32 * 2**20  # source bytes read at once (kernels use half that in uint64 temporaries)


# --- kernels ------------------------------------------------------------------------------------


def _pair_sum(values: np.ndarray, axis: int, acc: type) -> np.ndarray:
    """Sum neighbouring pairs along `axis`; an odd last voxel stays alone (its window has one voxel)."""
    def take(sl: slice) -> tuple[slice, ...]:
        return tuple(sl if a == axis else slice(None) for a in range(values.ndim))

    out: np.ndarray = values[take(slice(0, None, 2))].astype(acc)
    odd = values[take(slice(1, None, 2))]
    out[take(slice(0, odd.shape[axis]))] += odd
    return out


def _window_sum(block: np.ndarray, factors_zyx: Triple, acc: type) -> np.ndarray:
    """Sum over 2x windows on the axes whose factor is 2 (x first: it shrinks the data soonest)."""
    for axis in (2, 1, 0):
        if factors_zyx[axis] == 2:
            block = _pair_sum(block, axis, acc)
    return block


def _window_log2_counts(shape_zyx: Triple, factors_zyx: Triple, acc: type) -> np.ndarray:
    """log2 of how many voxels each output voxel averages (0..3), broadcastable to the output."""
    logs: np.ndarray = np.zeros((1, 1, 1), dtype=acc)
    for axis, (n, f) in enumerate(zip(shape_zyx, factors_zyx)):
        per_axis = (np.minimum(f, n - np.arange(0, n, f)) == 2).astype(acc)
        logs = logs + per_axis.reshape([-1 if a == axis else 1 for a in range(3)])
    return logs


def mean_reduce(block: np.ndarray, factors: Triple) -> np.ndarray:
    """Rounded (half up) mean of each 2x window, dtype kept, exact even for uint64.

    Window counts are powers of two, so dividing is a shift. A uint64 value is split as 8*q + r so
    window sums cannot overflow: mean = (8/c)*sum(q) + round(sum(r) / c), exactly.
    """
    if any(f not in (1, 2) for f in factors):
        raise ValueError(f"downsampling factors must be 1 or 2, got {factors}")
    fzyx = (factors[2], factors[1], factors[0])
    acc = np.uint32 if block.dtype.itemsize <= 2 else np.uint64
    k = _window_log2_counts(block.shape, fzyx, acc)
    half = (acc(1) << k) >> acc(1)
    if block.dtype.itemsize <= 2:
        return ((_window_sum(block, fzyx, acc) + half) >> k).astype(block.dtype)
    q = _window_sum(block >> acc(3), fzyx, acc)
    r = _window_sum(block & acc(7), fzyx, acc)
    return ((q << (acc(3) - k)) + ((r + half) >> k)).astype(block.dtype)


def _windows(block: np.ndarray, factors_zyx: Triple) -> np.ndarray:
    """(n_windows, window_size) view-copy of the block, zero-padded at the far edges."""
    pad = [(0, -n % f) for n, f in zip(block.shape, factors_zyx)]
    padded = np.pad(block, pad) if any(p for _, p in pad) else block
    (nz, ny, nx), (fz, fy, fx) = padded.shape, factors_zyx
    tiled = padded.reshape(nz // fz, fz, ny // fy, fy, nx // fx, fx).transpose(0, 2, 4, 1, 3, 5)
    return tiled.reshape(-1, fz * fy * fx)


def mode_reduce(block: np.ndarray, factors: Triple) -> np.ndarray:
    """Most frequent non-zero label of each window; ties go to the smallest id; all-zero gives 0.

    Edge padding is zero, which the rule ignores, so partial windows need no special case.
    """
    fz = (factors[2], factors[1], factors[0])
    out_shape = tuple(ceil_div(n, f) for n, f in zip(block.shape, fz))
    rows = np.sort(_windows(block, fz), axis=1)
    counts = (rows[:, :, None] == rows[:, None, :]).sum(axis=2, dtype=np.uint8)
    counts[rows == 0] = 0
    # rows are sorted ascending, so argmax's first maximum is the smallest of the tied labels
    best = rows[np.arange(rows.shape[0]), counts.argmax(axis=1)]
    return best.reshape(out_shape)


def reduce_block(block: np.ndarray, factors: Triple, annotation: bool) -> np.ndarray:
    return mode_reduce(block, factors) if annotation else mean_reduce(block, factors)


# --- the level loop ------------------------------------------------------------------------------


class LevelIO(Protocol):
    """One stored level, as the loop sees it (implemented by the volume store)."""

    def read(self, t: int, box: Box) -> np.ndarray:
        """(z, y, x) voxels of `box` at time `t`; never-written voxels read 0."""

    def write(self, t: int, box: Box, block: np.ndarray) -> None:
        """Replace the voxels of `box` at time `t` (zeros included)."""

    def has_data(self, t: int, box: Box) -> bool:
        """False only if no stored chunk intersects `box` at time `t` (a cheap way to skip empty space)."""


@dataclass(frozen=True)
class LevelJob:
    """Build `dst` (shape `dst_shape`, x,y,z) from `src` (shape `src_shape`) with `factors` (fx,fy,fz)."""

    src: LevelIO
    dst: LevelIO
    src_shape: Triple
    dst_shape: Triple
    factors: Triple
    time_samples: int

    def tiles(self) -> Iterator[Box]:
        return iter_blocks(Box((0, 0, 0), self.dst_shape), BOSS_CUBOID)

    def tile_count(self) -> int:
        return self.time_samples * sum(1 for _ in self.tiles())

    def source_box(self, tile: Box) -> Box:
        start = tuple(lo * f for lo, f in zip(tile.start, self.factors))
        stop = tuple(min(hi * f, n) for hi, f, n in zip(tile.stop, self.factors, self.src_shape))
        return Box(start, stop)  # type: ignore[arg-type]


class Cancelled(Exception):
    """Raised inside the loop when the caller's `cancelled()` turned True (the store re-raises its own)."""


def _planes(src: Box, bytes_per_voxel: int, budget: int, fz: int) -> int:
    """z-planes of `src` that fit `budget` bytes: a multiple of fz, at most one storage chunk deep."""
    sx, sy, _ = src.shape
    planes = min(BOSS_CUBOID[2], max(1, budget // (sx * sy * bytes_per_voxel)))
    return max(fz, planes - planes % fz)


def _reduce_slab(block: np.ndarray, factors: Triple, annotation: bool, planes: int) -> np.ndarray:
    """Reduce a (z, y, x) block a few planes at a time: the kernels' uint64 temporaries stay small."""
    parts = [reduce_block(block[z0:z0 + planes], factors, annotation)
             for z0 in range(0, block.shape[0], planes)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def build_tile(job: LevelJob, t: int, tile: Box, dtype: np.dtype, annotation: bool) -> None:
    """Compute one destination tile from its source region, slab by slab, and store it."""
    src = job.source_box(tile)
    if not job.src.has_data(t, src) and not job.dst.has_data(t, tile):
        return  # empty in, empty out: nothing to write
    fz = job.factors[2]
    read_depth = _planes(src, dtype.itemsize, SOURCE_SLAB_BYTES, fz)
    kernel_depth = _planes(src, 8, SOURCE_SLAB_BYTES // 2, fz)
    out = np.empty(tile.shape_zyx, dtype=dtype)
    for z0 in range(src.start[2], src.stop[2], read_depth):
        slab = src.with_z(z0, min(z0 + read_depth, src.stop[2]))
        reduced = _reduce_slab(job.src.read(t, slab), job.factors, annotation, kernel_depth)
        first = (z0 - src.start[2]) // fz
        out[first:first + reduced.shape[0]] = reduced
    job.dst.write(t, tile, out)


def build_levels(jobs: Sequence[LevelJob], *, dtype: np.dtype, annotation: bool,
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
    """Run the jobs in order (each level from the one before); raise Cancelled between tiles if asked."""
    total = sum(job.tile_count() for job in jobs)
    done = 0
    if progress:
        progress(done, total)
    for job in jobs:
        for t in range(job.time_samples):
            for tile in job.tiles():
                if cancelled and cancelled():
                    raise Cancelled(f"cancelled after {done} of {total} tiles")
                build_tile(job, t, tile, dtype, annotation)
                done += 1
                if progress:
                    progress(done, total)
