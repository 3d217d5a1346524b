"""Neuroglancer precomputed output: one volume directory (`info` + one chunk directory per scale).

What a CloudVolume or neuroglancer user expects: `info` with `@type`, `type` (image, or segmentation
for label voxels), `data_type`, `num_channels` 1 and one scale per pulled level (lowest first), each
with its key (the resolution, `4_4_40`, CloudVolume's convention), `size`, `voxel_offset` (the
region's first voxel at that level), `resolution` in nanometres, `chunk_sizes` and `encoding`;
unsharded chunks named `x0-x1_y0-y1_z0-z1`. Chunks are 128x128x16: they tile the server's 512x512x16
cuboid, so a slab of the pull never shares a chunk with the next, and neuroglancer fetches small
pieces. The pull's record is the `ndex` key of `info` (readers ignore keys they do not know).

Encodings: `raw` (any unsigned dtype), `compressed_segmentation` (uint32/uint64 labels; the default
for uint64 and for annotation channels) and `jpeg` (uint8, lossy). A volume has no time axis, so a
pull of several time points is refused. `info` is written by ndex up front; tensorstore's
neuroglancer_precomputed driver writes the chunks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorstore as ts

from ndex.errors import FieldError, UsageError
from ndex.geometry import Box
from ndex.sinks._files import remove, write_json
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import volume_name
from ndex.sinks.levels import Pyramid
from ndex.sinks.metadata import pull_record, resolution_nm

SUFFIX = ".precomputed"
CHUNK_XYZ = (128, 128, 16)
SEGMENTATION_BLOCK = (8, 8, 8)
ENCODINGS = {"raw": ("uint8", "uint16", "uint32", "uint64"), "compressed_segmentation": ("uint32", "uint64"),
             "jpeg": ("uint8",)}


def precomputed_name(spec: OutputSpec) -> str:
    base = spec.stack_filename or volume_name(spec)
    return base if base.lower().endswith(SUFFIX) else base + SUFFIX


def encoding_of(spec: OutputSpec) -> str:
    """The chunk encoding asked for (`extra["encoding"]`), or the default for the dtype and channel type;
    FieldError for one that cannot hold the dtype."""
    dtype = np.dtype(spec.dtype).name
    source = spec.extra.get("source") or {}
    labels = dtype == "uint64" or (source.get("channel_type") == "annotation" and dtype == "uint32")
    encoding = spec.extra.get("encoding") or ("compressed_segmentation" if labels else "raw")
    if encoding not in ENCODINGS:
        raise FieldError("encoding", f"unknown precomputed {{field}} {encoding!r}: use one of {', '.join(ENCODINGS)}")
    if dtype not in ENCODINGS[encoding]:
        fits = [name for name, dtypes in ENCODINGS.items() if dtype in dtypes]
        raise FieldError("encoding", f"precomputed encoding {encoding} cannot hold {dtype} voxels (it takes "
                                     f"{', '.join(ENCODINGS[encoding])}): use {{field}} {' or '.join(fits)}")
    return encoding


def check_spec(spec: OutputSpec) -> None:
    """FieldError for what a precomputed volume cannot hold: several time points, a TIFF/zarr compression."""
    if spec.time_points is not None and len(spec.times) > 1:
        raise FieldError("time_range", f"a precomputed volume has no time axis: pull one time point ({{field}} T T+1) "
                                       f"instead of {len(spec.times)}, or write OME-Zarr")
    if spec.compression != "none":
        raise FieldError("compression", f"precomputed chunks are encoded, not compressed: drop {{field}} "
                                        f"{spec.compression}")


def scale_key(spec: OutputSpec) -> str:
    return "_".join(f"{v:g}" for v in resolution_nm(spec))


def scale(spec: OutputSpec, encoding: str) -> dict:
    out = {"key": scale_key(spec), "size": list(spec.box.shape), "voxel_offset": list(spec.box.start),
           "resolution": resolution_nm(spec), "chunk_sizes": [list(CHUNK_XYZ)], "encoding": encoding}
    if encoding == "compressed_segmentation":
        out["compressed_segmentation_block_size"] = list(SEGMENTATION_BLOCK)
    return out


def info(specs: list[OutputSpec], encoding: str) -> dict:
    """The volume's `info`: one scale per level, and the pull's record under `ndex`."""
    record = pull_record(specs[0])
    record["levels"] = [{"key": scale_key(s), "resolution": s.resolution} for s in specs]
    labels = (specs[0].extra.get("source") or {}).get("channel_type") == "annotation"
    segmentation = labels or encoding == "compressed_segmentation" or np.dtype(specs[0].dtype).name == "uint64"
    return {"@type": "neuroglancer_multiscale_volume", "type": "segmentation" if segmentation else "image",
            "data_type": np.dtype(specs[0].dtype).name, "num_channels": 1,
            "scales": [scale(s, encoding) for s in specs], "ndex": record}


class Precomputed(Pyramid):
    """A neuroglancer precomputed volume of the levels `specs` (lowest first), resumable like OME-Zarr."""

    kind = "precomputed"

    def __init__(self, specs: list[OutputSpec]) -> None:
        for spec in specs:
            check_spec(spec)
        self.encoding = encoding_of(specs[0])
        keys = [scale_key(s) for s in specs]
        if len(set(keys)) < len(keys):
            raise UsageError(f"two pulled levels have the same voxel size ({keys}): pull distinct levels")
        self._arrays: dict[int, ts.TensorStore] = {}
        path = Path(specs[0].outdir) / precomputed_name(specs[0])
        super().__init__(path, specs, {"encoding": self.encoding})

    def array_exists(self, index: int) -> bool:
        return (self.partial / "info").is_file()

    def create_array(self, index: int) -> None:
        remove(self.partial / scale_key(self.specs[index]))  # chunks of a pull that is not being continued

    def open_array(self, index: int) -> None:
        """Arrays open once `info` is written (write_metadata), which every level shares."""

    def write_metadata(self) -> None:
        write_json(self.partial / "info", info(self.specs, self.encoding))
        for index in range(len(self.specs)):
            spec = {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(self.partial)},
                    "scale_index": index, "open": True}
            self._arrays[index] = self.tensorstore(lambda spec=spec: ts.open(spec).result())  # type: ignore[misc]

    def put(self, index: int, box: Box, data: np.ndarray, ti: int | None) -> None:
        (x0, x1), (y0, y1), (z0, z1) = box.x, box.y, box.z
        # the driver's domain is (x, y, z, channel) in the level's own voxel coordinates
        self.tensorstore(lambda: self._arrays[index][x0:x1, y0:y1, z0:z1, 0].write(data.transpose(2, 1, 0)).result())


class PrecomputedVolume(Precomputed):
    """A single-level precomputed volume: the Sink `open_sink("precomputed", spec)` gives."""

    def __init__(self, spec: OutputSpec) -> None:
        super().__init__([spec])
