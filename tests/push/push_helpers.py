"""Helpers of the push tests: slice files on disk, random volumes, source specs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from ndex.client import ChannelRef
from ndex.sources import SourceSpec

REF = ChannelRef("coll", "exp", "chan")


def write_slices(directory: Path, volume: np.ndarray, stem: str = "img_", first: int = 0, step: int = 1) -> Path:
    """One TIFF per z of `volume` (z, y, x): slice i is file number (first + i) * step, 4 digits."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, plane in enumerate(volume):
        tifffile.imwrite(directory / f"{stem}{(first + i) * step:04d}.tif", plane)
    return directory


def random_volume(shape: tuple[int, int, int], dtype: str = "uint8", seed: int = 0,
                  zero_fraction: float = 0.0) -> np.ndarray:
    """Non-zero noise over the dtype's range (then `zero_fraction` of voxels set to 0)."""
    rng = np.random.default_rng(seed)
    top = min(int(np.iinfo(dtype).max), 2**62)
    data = rng.integers(1, top, size=shape, dtype=dtype, endpoint=True)
    if zero_fraction:
        data[rng.random(shape) < zero_fraction] = 0
    return data


def local_spec(directory: Path, z_range: tuple[int, int], **extra) -> SourceSpec:
    return SourceSpec(datasource="local", base_path=str(directory), base_filename="img_<p:4>", extension="tif",
                      z_range=z_range, read_threads=2, **extra)
