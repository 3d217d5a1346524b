"""OME-Zarr output: one multiscale image, NGFF 0.5 on zarr v3 (default) or NGFF 0.4 on zarr v2.

Why v3 / 0.5 by default: it is the current NGFF version, what the server's own /zarr/ serves, and
what zarr-python 3, tensorstore, ome-zarr-py, neuroglancer and napari (via ome-zarr) open;
`zarr_version=2` (`--zarr_version 2`) writes NGFF 0.4 for readers that have not moved on (Fiji's
n5-zarr, MoBIE, older napari plugins). Levels are datasets "0", "1", ... (the first pulled level
first), each with its voxel size as scale and the region's origin at that level as translation
(metadata.py); chunks are the server's cuboid, 16x512x512 (x1 in t); the pull's record sits in the
group attributes under "ndex".

Blocks are written from worker threads as they arrive (tensorstore serialises read-modify-write of a
chunk shared by two blocks when the region is not chunk-aligned). The directory is
`<name>.ome.zarr.partial` until finish(); each level's finished slabs live in a sidecar ledger
beside it (levels.py).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tensorstore as ts

from ndex.errors import UsageError
from ndex.geometry import BOSS_CUBOID, Box
from ndex.sinks._files import write_json
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import units, volume_name, volume_shape
from ndex.sinks.levels import Pyramid
from ndex.sinks.metadata import box_record, corner_origin, pull_record
from ndex.sinks.tiff_options import check_compression

log = logging.getLogger(__name__)

CHUNK_ZYX = (BOSS_CUBOID[2], BOSS_CUBOID[1], BOSS_CUBOID[0])  # the server's cuboid: aligned pulls write whole chunks
SUFFIX = ".ome.zarr"
ZARR_VERSIONS = (2, 3)
NGFF = {2: "0.4", 3: "0.5"}


def zarr_name(spec: OutputSpec) -> str:
    """`<stack_filename or region name>.ome.zarr` (a given .zarr / .ome.zarr suffix is not doubled)."""
    base = spec.stack_filename or volume_name(spec)
    for suffix in (SUFFIX, ".zarr"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + SUFFIX


def zarr_version(spec: OutputSpec) -> int:
    version = int(spec.extra.get("zarr_version") or 3)
    if version not in ZARR_VERSIONS:
        raise UsageError(f"zarr version {version} is not one ndex writes: use 2 (NGFF 0.4) or 3 (NGFF 0.5)")
    return version


def compressor(spec: OutputSpec) -> dict | None:
    """The zarr v2 compressor for the spec's compression: none, zlib or blosc-zstd (blosc stops at level 9)."""
    check_compression(spec.compression, spec.compression_level)
    if spec.compression == "none":
        return None
    if spec.compression == "zlib":
        return {"id": "zlib", "level": 1 if spec.compression_level is None else spec.compression_level}
    if spec.compression == "zstd":
        level = 1 if spec.compression_level is None else spec.compression_level
        return {"id": "blosc", "cname": "zstd", "clevel": min(level, 9), "shuffle": 1}
    raise UsageError(f"OME-Zarr cannot use compression {spec.compression}: choose none, zlib or zstd")


def codecs_v3(spec: OutputSpec) -> list[dict]:
    """The zarr v3 codec chain with the same compression as `compressor` (zlib is v3's gzip codec)."""
    v2 = compressor(spec)
    chain: list[dict] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if v2 is None:
        return chain
    if v2["id"] == "zlib":
        return chain + [{"name": "gzip", "configuration": {"level": v2["level"]}}]
    return chain + [{"name": "blosc", "configuration": {"cname": "zstd", "clevel": v2["clevel"], "shuffle": "shuffle",
                                                         "typesize": np.dtype(spec.dtype).itemsize, "blocksize": 0}}]


def axes(spec: OutputSpec) -> list[dict]:
    _, unit = units(spec)
    space = [{"name": a, "type": "space", "unit": unit} for a in "zyx"]
    return space if spec.time_points is None else [{"name": "t", "type": "time"}, *space]


def dataset(spec: OutputSpec, path: str) -> dict:
    """One level: its path, its voxel size as scale and its origin (first voxel x voxel size) as translation (z, y, x)."""
    vx, vy, vz = (float(v) for v in spec.voxel_size)
    ox, oy, oz = corner_origin(spec)
    scale, shift = [vz, vy, vx], [oz, oy, ox]
    if spec.time_points is not None:
        scale.insert(0, 1.0)
        shift.insert(0, float(min(spec.times)))  # type: ignore[type-var, arg-type]  # time_points given: times are ints
    return {"path": path, "coordinateTransformations": [{"type": "scale", "scale": scale},
                                                         {"type": "translation", "translation": shift}]}


def multiscales(specs: list[OutputSpec], name: str, version: int = 3) -> dict:
    """The NGFF multiscales entry of the levels `specs`, version 0.4 (zarr v2) or 0.5 (zarr v3)."""
    source = specs[0].extra.get("source") or {}
    entry: dict[str, Any] = {
        "name": name, "axes": axes(specs[0]),
        "datasets": [dataset(spec, str(i)) for i, spec in enumerate(specs)],
        "type": "mode" if source.get("channel_type") == "annotation" else "mean",  # how the server downsampled
        "metadata": {"description": "pulled by ndex", "resolutions": [s.resolution for s in specs]},
    }
    if version == 2:
        entry = {"version": NGFF[2], **entry}
    return entry


def provenance(specs: list[OutputSpec]) -> dict:
    """The pull's record, with each level's own resolution, region and voxel size."""
    record = pull_record(specs[0])
    record["levels"] = [{"path": str(i), "resolution": s.resolution, "region": box_record(s.box),
                         "voxel_size": [float(v) for v in s.voxel_size]} for i, s in enumerate(specs)]
    return record


def group_attributes(specs: list[OutputSpec], name: str, version: int) -> dict:
    ms = multiscales(specs, name, version)
    if version == 2:
        return {"multiscales": [ms], "ndex": provenance(specs)}
    return {"ome": {"version": NGFF[3], "multiscales": [ms]}, "ndex": provenance(specs)}


def array_spec(spec: OutputSpec, path: Path, version: int) -> dict:
    """The tensorstore spec of one level's array."""
    shape = volume_shape(spec)
    chunks = CHUNK_ZYX if len(shape) == 3 else (1, *CHUNK_ZYX)
    kvstore = {"driver": "file", "path": str(path)}
    if version == 2:
        return {"driver": "zarr", "kvstore": kvstore, "metadata": {
            "shape": list(shape), "chunks": list(chunks), "dtype": np.dtype(spec.dtype).newbyteorder("<").str,
            "compressor": compressor(spec), "fill_value": 0, "order": "C", "dimension_separator": "/"}}
    return {"driver": "zarr3", "kvstore": kvstore, "metadata": {
        "shape": list(shape), "data_type": np.dtype(spec.dtype).name, "fill_value": 0,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "codecs": codecs_v3(spec), "dimension_names": [a["name"] for a in axes(spec)]}}


class ZarrPyramid(Pyramid):
    """One OME-Zarr image holding the levels `specs` (lowest first), resumable level by level and slab by slab."""

    kind = "zarr"

    def __init__(self, specs: list[OutputSpec]) -> None:
        self.version = zarr_version(specs[0])
        self._arrays: dict[int, ts.TensorStore] = {}
        path = Path(specs[0].outdir) / zarr_name(specs[0])
        super().__init__(path, specs, {"zarr_version": self.version})

    def _meta_name(self) -> str:
        return "zarr.json" if self.version == 3 else ".zarray"

    def array_exists(self, index: int) -> bool:
        return (self.partial / str(index) / self._meta_name()).is_file()

    def create_array(self, index: int) -> None:
        self._open(index, {"create": True, "delete_existing": True})

    def open_array(self, index: int) -> None:
        self._open(index, {"open": True})

    def _open(self, index: int, mode: dict) -> None:
        spec = array_spec(self.specs[index], self.partial / str(index), self.version)
        self._arrays[index] = self.tensorstore(lambda: ts.open({**spec, **mode}).result())

    def write_metadata(self) -> None:
        attrs = group_attributes(self.specs, self.path.name[: -len(SUFFIX)], self.version)
        if self.version == 2:
            write_json(self.partial / ".zgroup", {"zarr_format": 2})
            write_json(self.partial / ".zattrs", attrs)
        else:
            write_json(self.partial / "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": attrs})

    def put(self, index: int, box: Box, data: np.ndarray, ti: int | None) -> None:
        where = box.slices_in(self.specs[index].box)
        array = self._arrays[index]
        target = array[where] if ti is None else array[(ti, *where)]
        self.tensorstore(lambda: target.write(data).result())


class OmeZarr(ZarrPyramid):
    """A single-level OME-Zarr of the pulled region: the Sink `open_sink("zarr", spec)` gives."""

    def __init__(self, spec: OutputSpec) -> None:
        super().__init__([spec])
