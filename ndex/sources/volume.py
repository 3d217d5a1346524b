"""OME-Zarr (v2 / v3), N5 and neuroglancer precomputed volumes read through tensorstore:
`--datasource zarr|n5|precomputed --source URL`.

    source = open_source(SourceSpec(datasource="zarr", source_url="s3://lab/brain.ome.zarr", source_level=1))
    source.voxel_size, source.voxel_unit, source.voxel_offset   # from the metadata, for --create_resources
    source.read(Box((0, 0, 0), (512, 512, 16)))                 # only the chunks under the box are read

The source reads boxes (`supports_partial_reads`): the upload engine asks for one slab's blocks, and
tensorstore fetches and decodes only the chunks they touch, with no cache, so memory stays bounded by
the engine's slabs whatever the volume's size. z, y and x are the array's own indices, from 0; where
the metadata places the volume (its translation, in voxels of the chosen level) is `voxel_offset`,
which ndpush uses as the offsets unless --forced_offsets are given.

A 4D/5D array's time axis is read one time point at a time (`time_index`), its channel axis one
channel at a time (`channel_index`, or the channel whose OME label is `channel`); BigDataViewer N5's
setups and time points are its channels and time points (its dataset.xml, given as --source, adds the
setups' names and voxel sizes: ndex/sources/bdv_xml.py).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorstore as ts

from ndex.errors import BadInput, NdexError, OutOfBounds, SourceError
from ndex.geometry import Box
from ndex.sources.base import SourceSpec, check_slab, sample_points
from ndex.sources.ts_store import first_line, kvstore, open_array
from ndex.sources.volume_formats import Located, locate_n5, locate_precomputed, locate_zarr, pick

log = logging.getLogger(__name__)

BOSS_DTYPES = ("uint8", "uint16", "uint32", "uint64")
LARGE_CHUNK = 64 << 20  # a stored chunk above this is named: each read decodes whole chunks, held beside the slab
_WARNED: set[str] = set()
# tensorstore's codes for bytes that are there but do not decode (truncated, corrupt): unlike a network
# failure, a re-run reads the same bytes, so the user is told where the fix lies
DAMAGED = ("FAILED_PRECONDITION", "DATA_LOSS", "INVALID_ARGUMENT")
DAMAGED_HINT = " (a damaged chunk of the volume: re-write it there; re-running reads the same bytes)"
VALIDATE_XY = 64  # validation reads a corner this wide of a few slices: chunks decode, without reading a volume


def source_url(spec: SourceSpec) -> str:
    url = spec.source_url or spec.base_path
    if not url:
        raise BadInput(f"--datasource {spec.datasource} needs --source URL (a path, s3://, gs:// or http(s)://)")
    return url.replace("<ch>", spec.channel)


class VolumeSource:
    """Source protocol over one level (channel, time point) of a tensorstore array."""

    supports_partial_reads = True

    def __init__(self, spec: SourceSpec, located: Located) -> None:
        self.spec, self.located, self.name = spec, located, located.name
        array = open_array(located.spec, located.name)
        self._array = array[ts.d[:].translate_to[0]]  # precomputed starts at voxel_offset: read from 0
        axes = located.axes or ()
        if len(axes) != self._array.rank:
            axes = tuple("tczyx"[5 - self._array.rank:]) if self._array.rank <= 5 else axes
        if len(axes) != self._array.rank or not {"x", "y"} <= set(axes):
            raise BadInput(f"{self.name} has {self._array.rank} dimensions named {list(located.axes)}: ndex reads "
                           "volumes with x and y (and z, t, c) axes")
        self.axes, sizes = axes, dict(zip(axes, self._array.shape))
        self.channel_count = located.channels or sizes.get("c", 1)
        self.time_points = located.time_points or sizes.get("t", 1)
        self.channel_labels = located.channel_labels
        self._fixed = self._fixed_indices(sizes)
        self.shape_xy = (int(sizes["x"]), int(sizes["y"]))
        self.depth = int(sizes.get("z", 1))
        self.dtype = target_dtype(self._array.dtype.numpy_dtype, spec.dtype, self.name)
        self.z_range = spec.z_range or (0, self.depth)
        self.origin_xy = spec.origin_xy
        self._check_extents()
        self.voxel_size, self.voxel_unit = located.voxel_size, located.unit
        self.chunk_bytes = chunk_bytes(self._array)
        if self.chunk_bytes > LARGE_CHUNK and self.name not in _WARNED:  # ndpush opens a volume more than once
            _WARNED.add(self.name)
            log.warning("%s is stored in chunks of %.0f MB: each read decodes whole chunks, so the push needs "
                        "%.0f MB more memory (counted in its estimate); re-chunk the volume (e.g. 64x512x512) to avoid it",
                        self.name, self.chunk_bytes / 1e6, 2 * self.chunk_bytes / 1e6)
        self.voxel_offset = tuple(int(round(v)) for v in located.translation)
        if any(abs(v - round(v)) > 1e-6 for v in located.translation):  # e.g. a pyramid level's half-voxel shift
            log.info("%s: translation %s voxels is not whole; the volume is placed at %s", self.name,
                     located.translation, self.voxel_offset)

    def _fixed_indices(self, sizes: dict[str, int]) -> dict[str, int]:
        """The index read on every axis that is not x, y or z: the chosen channel and time point, else 0."""
        spec, fixed = self.spec, {}
        for axis, size in sizes.items():
            if axis == "c":
                fixed[axis] = pick(spec.channel_index, size, spec.channel, self.channel_labels, "channel", self.name)
            elif axis == "t":
                fixed[axis] = pick(spec.time_index, size, None, (), "time point", self.name)
            elif axis not in ("x", "y", "z"):
                if size != 1:
                    raise BadInput(f"{self.name} has an axis {axis!r} of size {size}: ndex reads x, y, z, time "
                                   "and channel axes")
                fixed[axis] = 0
        return fixed

    def _check_extents(self) -> None:
        spec, (x, y) = self.spec, self.shape_xy
        for axis, extent, size in (("x", spec.x_extent, x), ("y", spec.y_extent, y)):
            if extent and extent[1] - extent[0] != size:
                raise BadInput(f"{self.name} is {x}x{y} (x by y) but --{axis}_extent is {extent[0]}:{extent[1]}: "
                               "fix the extents or leave them out")
        if self.z_range[0] < 0 or self.z_range[1] > self.depth:
            raise OutOfBounds(f"z range {self.z_range[0]}:{self.z_range[1]} is outside {self.name}, which has "
                              f"z 0:{self.depth}")

    @property
    def missing(self) -> list[int]:
        return []  # a chunk a volume never wrote reads as its fill value, not as a missing file

    def read(self, box: Box) -> np.ndarray:
        """The voxels of `box` (x/y from `origin_xy`, z the array's) as a C-ordered (z, y, x) array."""
        check_slab(self.z_range, *box.z)
        (x0, y0) = self.origin_xy
        ranges = {"x": slice(box.x[0] - x0, box.x[1] - x0), "y": slice(box.y[0] - y0, box.y[1] - y0),
                  "z": slice(*box.z)}
        index = tuple(ranges[a] if a in ranges else self._fixed[a] for a in self.axes)
        try:
            data = self._array[index].read().result()
        except Exception as exc:  # a chunk that cannot be fetched or decoded
            text = first_line(exc)
            hint = DAMAGED_HINT if text.startswith(DAMAGED) else ""
            raise SourceError(f"cannot read {box} of {self.name}: {text}{hint}") from None
        kept = [a for a in self.axes if a in ranges]
        if "z" not in kept:
            data, kept = data[np.newaxis], ["z", *kept]
        data = np.transpose(data, [kept.index(a) for a in "zyx"])
        return np.ascontiguousarray(fit(data, self.dtype, self.name, box))

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        x0, y0 = self.origin_xy
        return self.read(Box((x0, y0, z0), (x0 + self.shape_xy[0], y0 + self.shape_xy[1], z1)))

    def validate(self, sample: int = 3) -> None:
        x0, y0 = self.origin_xy
        corner = (x0 + min(VALIDATE_XY, self.shape_xy[0]), y0 + min(VALIDATE_XY, self.shape_xy[1]))
        for z in sample_points(self.z_range, sample):
            self.read(Box((x0, y0, z), (*corner, z + 1)))

    def describe(self) -> str:
        x, y = self.shape_xy
        extra = [f"{k} {v} of {self.channel_count if k == 'c' else self.time_points}" for k, v in self._fixed.items()
                 if k in "ct" and (self.channel_count if k == "c" else self.time_points) > 1]
        return (f"{self.located.kind} {self.name} z {self.z_range[0]}:{self.z_range[1]} of {self.depth} "
                f"({x}x{y} {self.dtype.name}{', ' if extra else ''}{', '.join(extra)})")

    def close(self) -> None:
        pass  # tensorstore holds no file open between reads


def chunk_bytes(array: ts.TensorStore) -> int:
    """Decoded bytes of one stored chunk of `array` (0 when the driver does not say)."""
    shape = array.chunk_layout.read_chunk.shape
    if not shape or any(v is None for v in shape):
        return 0
    return math.prod(int(v or 0) for v in shape) * array.dtype.numpy_dtype.itemsize


def target_dtype(found: np.dtype, wanted: np.dtype | None, name: str) -> np.dtype:
    """The voxel type pushed: `wanted` (values checked on every read when it may not hold them), else the
    volume's own when a BOSS channel can hold it."""
    found = np.dtype(found)
    if wanted is None:
        if found.name in BOSS_DTYPES:
            return found
        raise BadInput(f"{name} holds {found.name} voxels, which no BOSS channel holds: pass --datatype "
                       "uint8/uint16/uint32/uint64 (each value is checked to fit) or convert the volume")
    if found.kind not in "biu":
        raise BadInput(f"{name} holds {found.name} voxels, which a {np.dtype(wanted).name} channel cannot hold "
                       "without rounding: convert the volume to unsigned integers first")
    return np.dtype(wanted)


def fit(data: np.ndarray, dtype: np.dtype, name: str, box: Box) -> np.ndarray:
    """`data` as `dtype`, or BadInput if a value does not fit (never a silent wrap-around)."""
    if data.dtype == dtype:
        return data
    if not np.can_cast(data.dtype, dtype, "safe") and data.size:
        lo, hi = data.min(), data.max()
        if lo < 0 or hi > np.iinfo(dtype).max:
            raise BadInput(f"{name} has values {lo}..{hi} in {box}, which {dtype.name} cannot hold: pass a wider "
                           "--datatype")
    return data.astype(dtype)


def _store(spec: SourceSpec) -> dict[str, Any]:
    return kvstore(source_url(spec), spec.s3_endpoint, spec.aws_profile)


def _locate(spec: SourceSpec, find: Callable[..., Located], *args: Any) -> Located:
    """`find(*args)`; metadata of the wrong shape (a list where an object belongs, text for a number) is the
    input's fault: one line naming the volume, never a traceback."""
    try:
        return find(*args)
    except NdexError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise BadInput(f"the metadata of {source_url(spec)} is malformed ({type(exc).__name__}: {exc}): it is not "
                       f"what a {spec.datasource} volume's metadata holds; fix it or --source") from None


def open_zarr(spec: SourceSpec) -> VolumeSource:
    return VolumeSource(spec, _locate(spec, locate_zarr, _store(spec), spec.source_level))


def open_n5(spec: SourceSpec) -> VolumeSource:
    url = source_url(spec)
    if url.lower().endswith(".xml"):  # BigDataViewer's dataset.xml: the N5 it names, with its setups' voxel sizes
        from ndex.sources.bdv_xml import locate_bdv_xml

        return VolumeSource(spec, _locate(spec, locate_bdv_xml, url, spec))
    return VolumeSource(spec, _locate(spec, locate_n5, _store(spec), spec.source_level, spec.channel_index,
                                      spec.time_index))


def open_precomputed(spec: SourceSpec) -> VolumeSource:
    return VolumeSource(spec, _locate(spec, locate_precomputed, _store(spec), spec.source_level))
