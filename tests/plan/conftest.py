"""Fixtures of the planner tests: the shared `ndex serve` fixture and a tiny TIFF volume."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
for path in (str(HERE.parent), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fixtures_server import ndex_server  # noqa: E402,F401  (a fixture, used by name)


@pytest.fixture
def tiff_volume(tmp_path):
    """40 uint16 slices of 600 x 300 (x, y): a non-aligned extent, a few MB."""
    import tifffile

    rng = np.random.default_rng(7)
    data = rng.integers(1, 60000, size=(40, 300, 600), dtype=np.uint16)
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, plane in enumerate(data):
        tifffile.imwrite(folder / f"img_{z:04d}.tif", plane)
    return folder, data
