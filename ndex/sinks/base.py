"""The write side of a pull: what every output format implements.

One interface, `write(box, data, t)`: the download engine fetches cuboid-aligned blocks and writes
each one (an array in z, y, x order) at its box, from worker threads, in any order within a z-slab.
A sink declares what it can take:

* `supports_partial_writes = True` (OME-Zarr, numpy): any box inside the output; thread-safe.
* `supports_partial_writes = False` (TIFF slices, TIFF stack): only whole z-slabs (at most 16 slices,
  aligned to the BOSS cuboid) of the output's XY extent, from one thread, in increasing z. The engine
  wraps such a sink in `SlabAssembly` (sinks/assembly.py), which builds the slabs from blocks.

Resume: `completed(slabs)` tells which slabs a previous, interrupted run already wrote completely,
so they are not downloaded again; `slab_done(slab)` says a slab is complete for every time point,
`slab_failed(slab)` that one of its blocks will never come. Nothing is ever visible under a final
name until it is complete: writers use `<name>.partial` and rename (or keep their progress in a
sidecar the engine never reads). `finish()` makes everything final; `abort()` leaves resumable state
but no half-written final file. `ndex.testing.sinks` is the conformance suite every sink passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ndex.geometry import Box

COMPRESSIONS = ("none", "zlib", "zstd", "lzw")


@dataclass(frozen=True)
class OutputSpec:
    """Everything a sink needs to lay out its files."""

    box: Box  # the pulled region, in voxel coordinates of the pulled resolution
    dtype: np.dtype
    prefix: str  # "{collection}_{experiment}_{channel}" (ndex 1.x file names)
    outdir: Path = Path(".")
    time_points: tuple[int, ...] | None = None  # None: a 3D pull without a time range
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)  # x, y, z at the pulled resolution
    voxel_unit: str = "nanometers"
    resolution: int = 0
    compression: str = "none"  # one of COMPRESSIONS
    compression_level: int | None = None
    stack_filename: str | None = None  # multipage TIFF / OME-TIFF / OME-Zarr name, when one file is wanted
    z_digits: int | None = None  # zero padding of z in slice names; None: digits of the z stop (ndex 1.x)
    extra: dict = field(default_factory=dict)  # format-specific options

    @property
    def times(self) -> tuple[int | None, ...]:
        """The time points to write: (None,) for a plain 3D pull."""
        return self.time_points if self.time_points is not None else (None,)


class Sink(Protocol):
    supports_partial_writes: bool

    def completed(self, slabs: list[Box]) -> set[Box]:
        """The subset of `slabs` (z-slabs of spec.box) already written completely for every time point."""

    def write(self, box: Box, data: np.ndarray, t: int | None) -> None:
        """Write `data` (z, y, x) at `box`: any box if supports_partial_writes, else one whole z-slab."""

    def slab_done(self, slab: Box) -> None:
        """Every block of `slab`, at every time point, has been written."""

    def slab_failed(self, slab: Box) -> None:
        """A block of `slab` failed or was never fetched: the slab stays unwritten (a re-run fetches it)."""

    def finish(self) -> list[Path]:
        """Make the output final (rename .partial files); returns the final paths."""

    def abort(self) -> None:
        """Stop after a failure or interrupt: keep resumable state, leave no half-written final file."""
