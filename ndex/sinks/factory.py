"""Choose a sink by name.

| kind       | class        | output                                                        |
|------------|--------------|---------------------------------------------------------------|
| `tif`      | TiffSlices   | one TIFF per z (and t), ndex 1.x names (the default)          |
| `stack`    | TiffStack    | one multipage TIFF `stack_filename` (OME if named .ome.tif)   |
| `ome-tiff` | TiffStack    | the same as an OME-TIFF with physical sizes (no uint64)       |
| `zarr`     | OmeZarr      | `<stack_filename or region>.ome.zarr`, NGFF 0.4               |
| `numpy`    | NumpySink    | `sink.array` in memory, or a `.npy` file if stack_filename    |
|            |              | ends in .npy (memory-mapped, resumable)                       |
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ndex.errors import UsageError
from ndex.sinks.base import OutputSpec, Sink
from ndex.sinks.layout import UNSIGNED
from ndex.sinks.numpy_sink import NumpySink
from ndex.sinks.ome_zarr import OmeZarr
from ndex.sinks.tiff_slices import TiffSlices
from ndex.sinks.tiff_stack import TiffStack

SINKS: dict[str, Callable[[OutputSpec], Sink]] = {
    "tif": TiffSlices,
    "stack": TiffStack,
    "ome-tiff": partial(TiffStack, ome=True),
    "zarr": OmeZarr,
    "numpy": NumpySink,
}
# the kinds whose sink places blocks as they arrive: a pull into them holds no slab buffer
PLACES_BLOCKS = frozenset(kind for kind, make in SINKS.items() if getattr(make, "func", make).places_blocks)


def open_sink(kind: str, spec: OutputSpec) -> Sink:
    """The sink `kind` (see the table above) for `spec`; UsageError for an unknown kind or dtype."""
    if kind not in SINKS:
        raise UsageError(f"unknown output format {kind!r}: use one of {', '.join(SINKS)}")
    if np.dtype(spec.dtype).name not in UNSIGNED:
        raise UsageError(f"cannot write {np.dtype(spec.dtype).name} voxels: use one of {', '.join(UNSIGNED)}")
    return SINKS[kind](spec)
