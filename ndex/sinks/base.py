"""The write side of a pull: what every output format implements.

The download engine fetches cuboid-aligned blocks and hands them to a sink in one of two ways:

* `places_blocks = True` (OME-Zarr, numpy): `write_block` is called from worker threads, in any
  order, with each block as soon as it arrives; memory is only the blocks in flight.
* `places_blocks = False` (TIFF slices, TIFF stack): the engine assembles one z-slab (at most 16
  slices, aligned to the BOSS cuboid) of the requested XY extent and calls `write_slab`, from a
  single thread, in increasing z (and, for time series, increasing t within each slab).

Resume: `completed(slabs)` tells which slabs a previous, interrupted run already wrote completely,
so they are not downloaded again. Nothing is ever visible under a final name until it is complete:
writers use `<name>.partial` and rename (or keep their progress in a sidecar the engine never reads).
`finish()` makes everything final; `abort()` leaves resumable state but no half-written final file.
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
    places_blocks: bool

    def completed(self, slabs: list[Box]) -> set[Box]:
        """The subset of `slabs` (z-slabs of spec.box) already written completely for every time point."""

    def write_block(self, box: Box, data: np.ndarray, t: int | None) -> None:
        """Place one block (array in z, y, x order) at `box`; thread-safe. Only if places_blocks."""

    def write_slab(self, slab: Box, data: np.ndarray, t: int | None) -> None:
        """Write one complete z-slab (z, y, x) of the full XY extent. Only if not places_blocks."""

    def slab_done(self, slab: Box) -> None:
        """Every block (places_blocks) or every time point (slabs) of `slab` has been written."""

    def finish(self) -> list[Path]:
        """Make the output final (rename .partial files); returns the final paths."""

    def abort(self) -> None:
        """Stop after a failure or interrupt: keep resumable state, leave no half-written final file."""
