"""A BOSS channel described as a read-only OME-Zarr (NGFF 0.5, zarr v3) group over HTTP.

Pure description, no I/O: `ndex serve` answers `/zarr/{c}/{e}/{ch}/...` from its store with it, and
`ndex view` answers the same paths from any BOSS server through ndex's client, so neuroglancer,
tensorstore, zarr-python and napari read both alike.

* `zarr.json` of the group: `attributes.ome.multiscales`, one dataset per built level, axes t, z, y, x.
* `<res>/zarr.json`: an array of shape [num_time_samples, z, y, x] at that level, chunks one BOSS
  cuboid (1 x 16 x 512 x 512), blosc-compressed, fill value 0.
* `<res>/c/<t>/<z>/<y>/<x>`: one chunk (a chunk past the level's edge is padded with zeros, as zarr
  requires); a missing or all-zero chunk may be answered 404, which readers take as fill value.

Levels carry scale = the level's voxel size and translation 0: array index i is BOSS coordinate i at
that level, so a region pulled by ndpull (translation = its origin x voxel size) lands on the same
physical place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ndex import codecs
from ndex.geometry import BOSS_CUBOID, Box

CHUNK_TZYX = (1, BOSS_CUBOID[2], BOSS_CUBOID[1], BOSS_CUBOID[0])
CHUNK_KEY = re.compile(r"^c/(\d{1,9})/(\d{1,9})/(\d{1,9})/(\d{1,9})$")
OME_UNITS = {"nanometers": "nanometer", "micrometers": "micrometer", "millimeters": "millimeter",
             "centimeters": "centimeter"}


@dataclass(frozen=True)
class Level:
    res: int
    extent: tuple[int, int, int]  # x, y, z voxels at this level
    voxel_size: tuple[float, float, float]  # x, y, z


@dataclass(frozen=True)
class ZarrChannel:
    """What a zarr reader needs to know about one channel."""

    name: str
    dtype: str
    annotation: bool
    time_samples: int
    voxel_unit: str
    levels: tuple[Level, ...]

    def level(self, res: int) -> Level | None:
        return next((lv for lv in self.levels if lv.res == res), None)

    @property
    def unit(self) -> str:
        return OME_UNITS.get(self.voxel_unit, self.voxel_unit.rstrip("s"))


def group_json(ch: ZarrChannel) -> dict:
    axes = [{"name": "t", "type": "time"}] + [{"name": a, "type": "space", "unit": ch.unit} for a in "zyx"]
    datasets = [{"path": str(lv.res), "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, *(float(v) for v in reversed(lv.voxel_size))]},
        {"type": "translation", "translation": [0.0, 0.0, 0.0, 0.0]}]} for lv in ch.levels]
    return {"zarr_format": 3, "node_type": "group", "attributes": {
        "ome": {"version": "0.5", "multiscales": [{"name": ch.name, "axes": axes, "datasets": datasets}]},
        "ndex": {"dtype": ch.dtype, "annotation": ch.annotation, "time_samples": ch.time_samples,
                 "levels": [lv.res for lv in ch.levels]},
    }}


def array_json(ch: ZarrChannel, lv: Level) -> dict:
    x, y, z = lv.extent
    return {"zarr_format": 3, "node_type": "array", **array_metadata((ch.time_samples, z, y, x), ch.dtype)}


def array_metadata(shape_tzyx: tuple[int, ...], dtype: str) -> dict:
    """Chunking and codecs of a channel array: those of `ndex serve`'s store too, whose whole chunks
    /zarr/ therefore hands out as stored."""
    return {
        "shape": list(shape_tzyx),
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(CHUNK_TZYX)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                   {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle",
                                                        "typesize": np.dtype(dtype).itemsize, "blocksize": 0}}],
        "fill_value": 0,
        "dimension_names": ["t", "z", "y", "x"],
    }


def chunk_region(ch: ZarrChannel, lv: Level, key: str) -> tuple[int, Box] | None:
    """(t, box clipped to the level) of a chunk key like `c/0/1/2/3`, None for a key outside the array."""
    m = CHUNK_KEY.match(key)
    if m is None:
        return None
    t, cz, cy, cx = (int(g) for g in m.groups())
    start = (cx * CHUNK_TZYX[3], cy * CHUNK_TZYX[2], cz * CHUNK_TZYX[1])
    if t >= ch.time_samples or any(s >= n for s, n in zip(start, lv.extent)):
        return None
    stop = tuple(min(s + c, n) for s, c, n in zip(start, (CHUNK_TZYX[3], CHUNK_TZYX[2], CHUNK_TZYX[1]), lv.extent))
    return t, Box(start, stop)  # type: ignore[arg-type]  # x, y, z in and out


def chunk_bytes(block: np.ndarray, dtype: str) -> bytes:
    """The stored form of one chunk from its (z, y, x) voxels (edge chunks padded with zeros)."""
    full = np.zeros(CHUNK_TZYX[1:], dtype=dtype)
    full[: block.shape[0], : block.shape[1], : block.shape[2]] = block
    return codecs.encode(full)


def is_whole_chunk(box: Box) -> bool:
    return box.shape == BOSS_CUBOID
