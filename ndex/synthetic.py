"""Deterministic synthetic volumes that look like the real thing, for the demo and the benchmarks.

EM-like uint8 slices: cell interiors of slowly varying brightness, dark membranes between them and
shot noise; never exactly zero (so every block is posted). Annotation-like uint64 labels: large ids
of wobbly cells. Any slice can be generated alone, so a volume never has to sit in memory whole.
"""
from __future__ import annotations

import numpy as np


def _grid(shape_yx: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape_yx
    return np.arange(ny, dtype=np.float32)[:, None], np.arange(nx, dtype=np.float32)[None, :]


def em_slice(z: int, shape_yx: tuple[int, int], seed: int = 0) -> np.ndarray:
    """One EM-like uint8 slice (y, x) at depth z."""
    y, x = _grid(shape_yx)
    phase = np.float32(z * 0.11 + seed)
    field = (np.sin(x * np.float32(0.021) + y * np.float32(0.013) + phase)
             + np.sin(x * np.float32(-0.017) + y * np.float32(0.024) + phase * np.float32(0.7))
             + np.sin((x + y) * np.float32(0.008) - phase * np.float32(1.3)))
    membrane = np.abs(np.sin(field * np.float32(2.2))) < np.float32(0.12)
    rng = np.random.default_rng(seed * 100_003 + z)
    noise = rng.normal(0.0, 11.0, size=shape_yx).astype(np.float32)
    image = np.float32(150) + np.float32(28) * field + noise
    image[membrane] -= np.float32(85)
    return np.clip(image, 1, 255).astype(np.uint8)


def label_slice(z: int, shape_yx: tuple[int, int], cell: int = 128, first_id: int = 1_000_000_000) -> np.ndarray:
    """One uint64 label slice (y, x): wobbly cells of about `cell` voxels, ids from `first_id` upwards."""
    y, x = _grid(shape_yx)
    wobble_x = np.float32(cell / 6) * np.sin(y / np.float32(37.0) + np.float32(z / 9))
    wobble_y = np.float32(cell / 6) * np.sin(x / np.float32(41.0) - np.float32(z / 11))
    col = np.floor((x + wobble_x + cell) / cell).astype(np.int64)
    row = np.floor((y + wobble_y + cell) / cell).astype(np.int64)
    cells_per_row = (shape_yx[1] // cell) + 3
    index = (row * cells_per_row + col) + (z // 16) * cells_per_row * ((shape_yx[0] // cell) + 3)
    return (np.uint64(first_id) + index.astype(np.uint64) * np.uint64(7919))


def volume(kind: str, shape_zyx: tuple[int, int, int], z0: int = 0, seed: int = 0) -> np.ndarray:
    """Slices z0 .. z0+nz of the `kind` ("em" or "labels") volume as one array (z, y, x)."""
    nz, ny, nx = shape_zyx
    if kind == "em":
        return np.stack([em_slice(z, (ny, nx), seed) for z in range(z0, z0 + nz)])
    return np.stack([label_slice(z, (ny, nx)) for z in range(z0, z0 + nz)])
