"""Where each voxel of a pull goes: ndex 1.x file names, time indices and the checks on incoming data.

ndex 1.x named slices `{collection}_{experiment}_{channel}_x{x0}-{x1}_y{y0}-{y1}_z{z:0Nd}.tif`, with
x1, y1 the exclusive stops and N = int(log10(z_stop)) + 1, i.e. the number of digits of the
*exclusive* z stop (z 0:100 gives z000..z099), not of the largest z. We keep that exactly, so
scripts written for 1.x find the same files. Time series add `_t{t:0Md}` before `_z`, with M the
digits of the exclusive time stop by the same rule, so that a name sort lists each time point's
volume contiguously (what Fiji's "Image Sequence" import expects).
"""
from __future__ import annotations

import numpy as np

from ndex.errors import InvalidBox, UsageError
from ndex.geometry import BOSS_CUBOID, VOXEL_UNITS, Box, z_slabs
from ndex.sinks.base import OutputSpec

UNSIGNED = ("uint8", "uint16", "uint32", "uint64")  # uint32: ndex 1.x --force_datatype could ask for it


def stop_digits(stop: int) -> int:
    """ndex 1.x padding width: digits of the exclusive stop (int(log10(stop)) + 1, without float error)."""
    return len(str(max(int(stop), 1)))


def region_tag(box: Box) -> str:
    """`x{x0}-{x1}_y{y0}-{y1}` with exclusive stops, as ndex 1.x printed them."""
    return f"x{box.x[0]}-{box.x[1]}_y{box.y[0]}-{box.y[1]}"


def slice_name(spec: OutputSpec, z: int, t: int | None = None) -> str:
    """The ndex 1.x file name of slice `z` (and time point `t`)."""
    name = f"{spec.prefix}_{region_tag(spec.box)}"
    if t is not None:
        name += f"_t{t:0{stop_digits(max(spec.times) + 1)}d}"  # type: ignore[type-var, operator]  # t is given: times are ints
    return name + f"_z{z:0{spec.z_digits or stop_digits(spec.box.z[1])}d}.tif"


def volume_name(spec: OutputSpec) -> str:
    """Base name of a single-file output when no stack_filename is given."""
    name = f"{spec.prefix}_{region_tag(spec.box)}_z{spec.box.z[0]}-{spec.box.z[1]}"
    if spec.time_points is not None:
        name += f"_t{min(spec.times)}-{max(spec.times) + 1}"  # type: ignore[type-var, operator]  # time_points given: times are ints
    return name


def volume_shape(spec: OutputSpec) -> tuple[int, ...]:
    """Array shape of the whole output: (z, y, x), or (t, z, y, x) for a time series."""
    zyx = spec.box.shape_zyx
    return zyx if spec.time_points is None else (len(spec.times), *zyx)


def time_index(spec: OutputSpec, t: int | None) -> int | None:
    """Position of time point `t` in the output (None for a 3D pull)."""
    if spec.time_points is None:
        if t is not None:
            raise InvalidBox(f"time point {t} given for a pull without a time range")
        return None
    try:
        return spec.times.index(t)
    except ValueError:
        raise InvalidBox(f"time point {t} is not one of the pulled time points {list(spec.times)}") from None


def conform(spec: OutputSpec, box: Box, data: np.ndarray) -> np.ndarray:
    """Check that `data` fills `box` inside the pulled region; cast it to the output dtype.

    The cast is what ndex 1.x --force_datatype did (astype): the caller chose the output dtype.
    """
    if not spec.box.contains(box):
        raise InvalidBox(f"block {box} lies outside the pulled region {spec.box}")
    if tuple(data.shape) != box.shape_zyx:
        raise InvalidBox(f"data of shape {tuple(data.shape)} does not fill {box} (needs {box.shape_zyx}, z, y, x)")
    return data if data.dtype == spec.dtype else data.astype(spec.dtype)


def fingerprint(spec: OutputSpec, kind: str) -> dict:
    """What must match for a previous run's partial output to be continued."""
    return {"kind": kind, "box": [list(spec.box.start), list(spec.box.stop)], "dtype": np.dtype(spec.dtype).name,
            "times": None if spec.time_points is None else list(spec.times),
            "compression": [spec.compression, spec.compression_level]}


# BOSS voxel units -> (OME-XML unit symbol, NGFF/UDUNITS-2 unit name)
def units(spec: OutputSpec) -> tuple[str, str]:
    """(OME symbol, NGFF name) of the spec's BOSS voxel unit; 'nanometer' and 'nanometers' both accepted."""
    key = spec.voxel_unit.strip().lower()
    key = key if key.endswith("s") else key + "s"
    if key not in VOXEL_UNITS:
        raise UsageError(f"unknown voxel unit {spec.voxel_unit!r}: use one of {', '.join(VOXEL_UNITS)}")
    return VOXEL_UNITS[key]


def check_band(spec: OutputSpec, box: Box, sink: str) -> None:
    """A sink without partial writes takes one band at a time: a whole z-slab of the output, or a part of
    its XY extent whose edges lie on the cuboid grid (SlabAssembly makes them from blocks)."""
    slab = spec.box.with_z(*box.z)
    on_grid = all(v in edge or v % c == 0 for v, edge, c in
                  zip((*box.x, *box.y), (slab.x, slab.x, slab.y, slab.y), (BOSS_CUBOID[0],) * 2 + (BOSS_CUBOID[1],) * 2))
    if not spec.box.contains(box) or slab not in z_slabs(spec.box) or not on_grid:
        raise ValueError(f"{sink} writes whole z-slabs of the output, or bands of them on the cuboid grid, not "
                         f"{box}: wrap it in ndex.sinks.SlabAssembly to write blocks")
