"""Fixtures of the planner tests: a tiny TIFF volume (`ndex_server` comes from tests/conftest.py)."""
from __future__ import annotations

import numpy as np
import pytest


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
