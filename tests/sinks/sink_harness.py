"""Read any sink's output back without zarr-python; the feeding itself is the package's (`ndex.testing.sinks`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorstore as ts

from ndex.testing.sinks import REGION, feed, make_spec, part_of, volume

__all__ = ["REGION", "feed", "files_under", "make_spec", "part_of", "read_zarr", "volume"]


def read_zarr(path: Path) -> np.ndarray:
    store = ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(path / "0")}, "open": True}).result()
    return store.read().result()


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}
