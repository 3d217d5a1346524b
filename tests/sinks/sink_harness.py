"""Drive a sink the way the download engine does, and read any sink's output back without zarr-python."""
from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorstore as ts
import tifffile

from ndex.geometry import BOSS_CUBOID, Box, iter_blocks, z_slabs
from ndex.sinks import OutputSpec, open_sink

KINDS = ("tif", "stack", "ome-tiff", "zarr", "numpy", "npy")
PERSISTENT = ("tif", "stack", "ome-tiff", "zarr", "npy")  # "npy": the numpy sink backed by a .npy file
FINAL_SUFFIXES = (".tif", ".ome.zarr", ".npy")
REGION = Box((500, 1000, 14), (530, 1022, 37))  # crosses x, y and z cuboid edges: 3 z-slabs, 2 blocks in x, y
DTYPES = ("uint8", "uint16", "uint64")


def make_spec(outdir: Path, dtype: str = "uint16", times: tuple[int, ...] | None = None, **kw) -> OutputSpec:
    return OutputSpec(box=kw.pop("box", REGION), dtype=np.dtype(dtype), prefix="col_exp_chan", outdir=outdir,
                      time_points=times, voxel_size=kw.pop("voxel_size", (4.0, 4.0, 40.0)), **kw)


def sink_for(kind: str, spec: OutputSpec):
    """open_sink, with "npy" meaning the numpy sink writing `vol.npy`."""
    if kind == "npy":
        return open_sink("numpy", dataclasses.replace(spec, stack_filename="vol.npy"))
    return open_sink(kind, spec)


def volume(spec: OutputSpec, seed: int = 0) -> np.ndarray:
    """Random voxels of the whole output ((t,) z, y, x), using the dtype's full range."""
    rng = np.random.default_rng(seed)
    shape = spec.box.shape_zyx if spec.time_points is None else (len(spec.times), *spec.box.shape_zyx)
    return rng.integers(0, np.iinfo(spec.dtype).max, size=shape, dtype=spec.dtype, endpoint=True)


def part_of(spec: OutputSpec, vol: np.ndarray, box: Box, t: int | None) -> np.ndarray:
    index = box.slices_in(spec.box)
    return vol[index] if t is None else vol[(spec.times.index(t), *index)]


def feed(sink, spec: OutputSpec, vol: np.ndarray, slabs: list[Box] | None = None) -> None:
    """What the engine does for `slabs` (default: all): blocks from threads in random order, or whole slabs."""
    for slab in z_slabs(spec.box) if slabs is None else slabs:
        if sink.places_blocks:
            _place_blocks(sink, spec, vol, slab)
        else:
            for t in spec.times:
                sink.write_slab(slab, part_of(spec, vol, slab, t), t)
        sink.slab_done(slab)


def _place_blocks(sink, spec: OutputSpec, vol: np.ndarray, slab: Box) -> None:
    jobs = [(b, t) for t in spec.times for b in iter_blocks(slab, BOSS_CUBOID)]
    random.Random(1).shuffle(jobs)
    with ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(sink.write_block, b, part_of(spec, vol, b, t), t) for b, t in jobs]:
            f.result()


def read_back(kind: str, sink, spec: OutputSpec, paths: list[Path]) -> np.ndarray:
    """The finished output as one array ((t,) z, y, x)."""
    if kind == "numpy":
        return sink.array
    if kind == "tif":
        pages = np.stack([tifffile.imread(p) for p in paths])
        return pages if spec.time_points is None else pages.reshape(len(spec.times), -1, *pages.shape[1:])
    if kind in ("stack", "ome-tiff", "npy"):
        (path,) = paths
        if kind == "npy":
            return np.load(path)
        return tifffile.imread(path)
    (path,) = paths
    return read_zarr(path)


def read_zarr(path: Path) -> np.ndarray:
    store = ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(path / "0")}, "open": True}).result()
    return store.read().result()


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}
