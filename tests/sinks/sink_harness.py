"""Read any sink's output back without zarr-python; the feeding itself is the package's (`ndex.testing.sinks`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorstore as ts

from ndex.testing.sinks import REGION, feed, make_spec, part_of, volume

__all__ = ["REGION", "feed", "files_under", "make_spec", "part_of", "read_zarr", "volume"]


def read_zarr(path: Path, level: str = "0") -> np.ndarray:
    """Level `level` of an OME-Zarr, zarr v3 (NGFF 0.5) or v2 (NGFF 0.4)."""
    driver = "zarr3" if (path / "zarr.json").is_file() else "zarr"
    store = ts.open({"driver": driver, "kvstore": {"driver": "file", "path": str(path / level)}, "open": True}).result()
    return store.read().result()


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}
