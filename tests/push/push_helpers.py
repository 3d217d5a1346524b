"""Helpers of the push tests: slice files on disk, random volumes, source specs."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import tifffile

from ndex.client import ChannelRef
from ndex.sources import SourceSpec
from ndex.transfer.options import TransferOptions
from ndex.transfer.push_plan import PushSpec, push_block_bytes

REF = ChannelRef("coll", "exp", "chan")
OPTION_FIELDS = {f.name for f in fields(TransferOptions)}


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


@dataclass(frozen=True)
class Job:
    """A push as the engine takes it: what (spec) and how (options)."""

    spec: PushSpec
    options: TransferOptions

    def key(self, server: str = "") -> str:
        return self.spec.key(server, push_block_bytes(self.options))


def push_job(source: SourceSpec, ref: ChannelRef = REF, **kw) -> Job:
    """PushSpec and TransferOptions out of one set of keywords (the tests' shorthand)."""
    how = {k: kw.pop(k) for k in list(kw) if k in OPTION_FIELDS}
    return Job(PushSpec(ref, source, **kw), TransferOptions(**how))
