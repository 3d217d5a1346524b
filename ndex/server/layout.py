"""What a channel looks like in the store, as pure data and maths: levels, shapes, chunks, OME attributes.

Arrays are (t, z, y, x) in numpy order; boxes are ndex.geometry.Box in (x, y, z) voxels of the level.
One stored chunk is one BOSS cuboid of one time sample, so cuboid-aligned requests touch whole chunks.
Nothing here does I/O: ndex.server.arrays opens the arrays, ndex.server.volumes reads and writes them.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ndex import zarr_http
from ndex.geometry import BOSS_CUBOID, Box, Triple, z_slabs

CHUNK_ZYX = (BOSS_CUBOID[2], BOSS_CUBOID[1], BOSS_CUBOID[0])  # one stored chunk is one BOSS cuboid
# BOSS's channel datatypes; BOSS creates uint32 channels but spdb cannot serve them, ndex serves all four
STORABLE_DTYPES = ("uint8", "uint16", "uint32", "uint64")


@dataclass(frozen=True)
class ChannelLayout:
    """Everything the store needs to know about one channel (the HTTP layer derives it from the DB)."""

    key: str
    dtype: str
    extent: tuple[int, int, int]
    time_samples: int
    levels: int
    z_scaled: tuple[bool, ...]
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    voxel_unit: str = "nanometers"
    annotation: bool = False
    names: tuple[str, str, str] = ("", "", "")

    @property
    def max_res(self) -> int:
        """Highest stored level (levels are 0..max_res)."""
        return max(self.levels - 1, len(self.z_scaled), 0)

    def halves_z(self, res: int) -> bool:
        """Does z halve going from level res-1 to res? Past the given flags the last one holds."""
        if not self.z_scaled:
            return True
        return self.z_scaled[min(res, len(self.z_scaled)) - 1]

    def factors(self, res: int) -> Triple:
        """Total (x, y, z) downsampling factor of level `res` relative to level 0."""
        fz = 2 ** sum(self.halves_z(r) for r in range(1, res + 1))
        return 2**res, 2**res, fz

    def level_shape(self, res: int) -> Triple:
        return tuple(-(-n // f) for n, f in zip(self.extent, self.factors(res)))  # type: ignore[return-value]

    def array_shape(self, res: int) -> tuple[int, int, int, int]:
        x, y, z = self.level_shape(res)
        return self.time_samples + 1, z, y, x  # BOSS lets t run to num_time_samples inclusive


# --- metadata documents ----------------------------------------------------------------------------


def array_metadata(layout: ChannelLayout, res: int) -> dict:
    return zarr_http.array_metadata(layout.array_shape(res), layout.dtype)  # /zarr/ serves chunks as stored


def group_attributes(layout: ChannelLayout) -> dict:
    """OME-Zarr 0.5 multiscales (+ ndex's own names) for the channel group."""
    unit = zarr_http.OME_UNITS.get(layout.voxel_unit, layout.voxel_unit.rstrip("s"))
    datasets = []
    for res in range(layout.max_res + 1):
        f = layout.factors(res)
        scale = [v * k for v, k in zip(layout.voxel_size, f)]
        # a level-r voxel averages f level-0 voxels: its centre sits (f-1)/2 voxels further on
        shift = [v * (k - 1) / 2 for v, k in zip(layout.voxel_size, f)]
        datasets.append({"path": str(res), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, scale[2], scale[1], scale[0]]},
            {"type": "translation", "translation": [0.0, shift[2], shift[1], shift[0]]}]})
    axes = [{"name": "t", "type": "time"}] + [{"name": a, "type": "space", "unit": unit} for a in "zyx"]
    collection, experiment, channel = layout.names
    return {
        "ome": {"version": "0.5", "multiscales": [{"name": channel or layout.key, "axes": axes,
                                                   "datasets": datasets}]},
        "ndex": {"collection": collection, "experiment": experiment, "channel": channel,
                 "dtype": layout.dtype, "annotation": layout.annotation,
                 "extent": list(layout.extent), "time_samples": layout.time_samples},
    }


# --- boxes in chunks -----------------------------------------------------------------------------------


def one_chunk(box: Box) -> bool:
    """Is `box` exactly one stored chunk (one whole, aligned BOSS cuboid)?"""
    return box.shape == BOSS_CUBOID and box.is_aligned()


def chunk_key(t: int, box: Box) -> str:
    """The zarr v3 key (default encoding, '/' separated) of the chunk whose corner is `box.start`."""
    return "c/{}/{}/{}/{}".format(t, *(s // c for s, c in zip(reversed(box.start), CHUNK_ZYX)))


def chunk_index(box: Box) -> Triple:
    """(x, y, z) index of the chunk holding `box.start`."""
    return tuple(v // g for v, g in zip(box.start, BOSS_CUBOID))  # type: ignore[return-value]  # x, y, z


def cuboid_at(zc: int, yc: int, xc: int) -> Box:
    """The box of the chunk with (z, y, x) index (zc, yc, xc), as stored (edge chunks unclipped)."""
    cx, cy, cz = BOSS_CUBOID
    return Box((xc * cx, yc * cy, zc * cz), ((xc + 1) * cx, (yc + 1) * cy, (zc + 1) * cz))


def chunk_range(lo: int, hi: int, axis: int) -> range:
    """Chunk indices along axis (0 x, 1 y, 2 z) that voxels lo..hi touch."""
    size = BOSS_CUBOID[axis]
    return range(lo // size, -(-hi // size))


def index(box: Box, t_range: tuple[int, int]) -> tuple[slice, slice, slice, slice]:
    """tensorstore (t, z, y, x) index of box x t_range."""
    return (slice(*t_range), slice(*box.z), slice(*box.y), slice(*box.x))


def covers(shape_tzyx: tuple[int, ...], box: Box, t_range: tuple[int, int]) -> bool:
    """Does an array of this shape hold all of box x t_range?"""
    nt, nz, ny, nx = shape_tzyx
    return t_range[1] <= nt and box.stop[0] <= nx and box.stop[1] <= ny and box.stop[2] <= nz


def stored_part(shape_tzyx: tuple[int, ...], box: Box,
                t_range: tuple[int, int]) -> tuple[Box, tuple[int, int]] | None:
    """The part of box x t_range inside an array of this shape (smaller than the layout until it grows)."""
    nt, nz, ny, nx = shape_tzyx
    part = box.intersect(Box((0, 0, 0), (nx, ny, nz)))
    t1 = min(t_range[1], nt)
    if part is None or t_range[0] >= t1:
        return None
    return part, (t_range[0], t1)


def slabs(box: Box, t_range: tuple[int, int]) -> Iterator[tuple[int, Box]]:
    """(t, chunk-deep z-slab) pieces: the unit of locking and of the read-modify-write."""
    for t in range(*t_range):
        for slab in z_slabs(box, BOSS_CUBOID[2]):
            yield t, slab


def extent_of(mask: np.ndarray, cuboid: Box, tight: bool) -> Box | None:
    """The box of the True voxels of a (z, y, x) mask over `cuboid`: exact, or the aligned cuboid."""
    if not mask.any():
        return None
    if not tight:
        zc, yc, xc = (s // c for s, c in zip(reversed(cuboid.start), CHUNK_ZYX))
        return cuboid_at(zc, yc, xc)
    lo, hi = [], []
    for axis in (2, 1, 0):  # mask axes z, y, x -> box axes x, y, z
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        lo.append(int(hits[0]))
        hi.append(int(hits[-1]) + 1)
    return Box(tuple(s + v for s, v in zip(cuboid.start, lo)),  # type: ignore[arg-type]  # x, y, z in and out
               tuple(s + v for s, v in zip(cuboid.start, hi)))  # type: ignore[arg-type]
