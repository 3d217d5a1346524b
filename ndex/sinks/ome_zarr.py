"""OME-Zarr output: NGFF 0.4 on zarr v2, written in place through tensorstore.

Why 0.4 / zarr v2: it is what every current reader opens -- napari (napari-ome-zarr), zarr-python 2
and 3, neuroglancer, Fiji's n5/zarr and MoBIE, webknossos -- while NGFF 0.5 (zarr v3) readers are
still catching up. One level (the pulled resolution) at path "0", chunks 16x512x512 (x1 in t),
axes with units, scale = voxel size and translation = the pulled region's origin in physical units.

Blocks are written from worker threads as they arrive (tensorstore serialises read-modify-write of a
chunk shared by two blocks when the region is not chunk-aligned). The directory is
`<name>.ome.zarr.partial` until finish(); the finished slabs live in a sidecar
`<name>.ome.zarr.progress.json` beside it, rewritten atomically by slab_done.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import tensorstore as ts

from ndex.errors import SinkError, UsageError
from ndex.geometry import BOSS_CUBOID, Box, z_slabs
from ndex.sinks._files import disk_error, make_dir, partial_of, publish, remove, write_json
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import conform, fingerprint, time_index, units, volume_name, volume_shape
from ndex.sinks.ledger import SlabLedger
from ndex.sinks.tiff_options import check_compression

log = logging.getLogger(__name__)

LEVEL_PATH = "0"
CHUNK_ZYX = (BOSS_CUBOID[2], BOSS_CUBOID[1], BOSS_CUBOID[0])  # the server's cuboid: aligned pulls write whole chunks
SUFFIX = ".ome.zarr"
OS_ERROR_CODE = re.compile(r"os_error_code=\W?(\d+)")


def zarr_name(spec: OutputSpec) -> str:
    """`<stack_filename or region name>.ome.zarr` (a given .zarr / .ome.zarr suffix is not doubled)."""
    base = spec.stack_filename or volume_name(spec)
    for suffix in (SUFFIX, ".zarr"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + SUFFIX


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


def multiscales(spec: OutputSpec, name: str) -> dict:
    """NGFF 0.4 group attributes for one level holding the pulled region."""
    _, unit = units(spec)
    vx, vy, vz = (float(v) for v in spec.voxel_size)
    axes = [{"name": a, "type": "space", "unit": unit} for a in "zyx"]
    scale = [vz, vy, vx]
    origin = [spec.box.z[0] * vz, spec.box.y[0] * vy, spec.box.x[0] * vx]
    if spec.time_points is not None:
        axes.insert(0, {"name": "t", "type": "time"})
        scale.insert(0, 1.0)
        origin.insert(0, float(min(spec.times)))  # type: ignore[type-var, arg-type]  # time_points given: times are ints
    transforms = [{"type": "scale", "scale": scale}, {"type": "translation", "translation": origin}]
    return {"multiscales": [{
        "version": "0.4", "name": name, "axes": axes,
        "datasets": [{"path": LEVEL_PATH, "coordinateTransformations": transforms}],
        "metadata": {"description": "pulled by ndex", "resolution": spec.resolution},
    }]}


class OmeZarr:
    """A single-level OME-Zarr of the pulled region, resumable slab by slab."""

    supports_partial_writes = True

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.path = Path(spec.outdir) / zarr_name(spec)
        self._partial = partial_of(self.path)
        self._ledger = SlabLedger(self.path.with_name(self.path.name + ".progress.json"), fingerprint(spec, "zarr"))
        resume = self._ledger.load() and (self._partial / LEVEL_PATH / ".zarray").is_file()
        if not resume:
            remove(self._partial)
            make_dir(self._partial)
            self._ledger.save()
        self._write_group()
        self._array = self._open_array(create=not resume)

    def _write_group(self) -> None:
        write_json(self._partial / ".zgroup", {"zarr_format": 2})
        write_json(self._partial / ".zattrs", multiscales(self.spec, self.path.name[: -len(SUFFIX)]))

    def _open_array(self, *, create: bool) -> ts.TensorStore:
        shape = volume_shape(self.spec)
        chunks = CHUNK_ZYX if len(shape) == 3 else (1, *CHUNK_ZYX)
        spec: dict[str, Any] = {
            "driver": "zarr",
            "kvstore": {"driver": "file", "path": str(self._partial / LEVEL_PATH)},
            "metadata": {"shape": list(shape), "chunks": list(chunks), "dtype": np.dtype(self.spec.dtype).newbyteorder("<").str,
                         "compressor": compressor(self.spec), "fill_value": 0, "order": "C",
                         "dimension_separator": "/"},
        }
        spec.update({"create": True, "delete_existing": True} if create else {"open": True})
        try:
            return ts.open(spec).result()
        except ValueError as exc:  # tensorstore reports I/O failures as ValueError
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> SinkError:
        return disk_error(self._partial, _oserror_in(exc))

    def completed(self, slabs: list[Box]) -> set[Box]:
        return self._ledger.completed(slabs)

    def write(self, box: Box, data: np.ndarray, t: int | None) -> None:
        ti = time_index(self.spec, t)
        data = conform(self.spec, box, data)
        index = box.slices_in(self.spec.box)
        target = self._array[index] if ti is None else self._array[(ti, *index)]
        try:
            target.write(data).result()
        except ValueError as exc:
            raise self._error(exc) from exc

    def slab_failed(self, slab: Box) -> None:
        """Nothing to undo: the ledger records only complete slabs."""

    def slab_done(self, slab: Box) -> None:
        self._ledger.mark(slab)

    def finish(self) -> list[Path]:
        self._ledger.require_all(z_slabs(self.spec.box), self.path)
        publish(self._partial, self.path)
        self._ledger.remove()
        return [self.path]

    def abort(self) -> None:
        """Nothing to undo: the .partial directory and the ledger are the resumable state."""


def _oserror_in(exc: BaseException) -> OSError:
    """The OSError behind a tensorstore error: it appends `[os_error_code='28']` to its message."""
    text = str(exc)
    found = OS_ERROR_CODE.search(text)
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    return OSError(None, text.splitlines()[0] if text else type(exc).__name__)
