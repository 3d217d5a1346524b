"""Pure geometry: boxes, the BOSS cuboid grid, resolution scaling and block plans.

Coordinates are BOSS voxel coordinates, ordered (x, y, z) in every tuple here; arrays are
C-ordered (z, y, x) -- `Box.shape_zyx` bridges the two. Ranges are half-open.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from ndex.errors import InvalidBox

BOSS_CUBOID = (512, 512, 16)  # x, y, z: the server's storage block; aligned requests avoid read-modify-write
CUTOUT_MAX_BYTES = 520 * 2**20  # the server's per-request cap on uncompressed bytes (413 beyond)
DEFAULT_BLOCK_BYTES = 4 * 2**20  # one uint8 cuboid; measured fastest against ndex serve (vs 8 and 32 MiB)

Triple = tuple[int, int, int]


# BOSS voxel units -> (OME symbol, the UDUNITS name OME-Zarr requires): the one list client, server and CLI use
VOXEL_UNITS = {
    "nanometers": ("nm", "nanometer"),
    "micrometers": ("µm", "micrometer"),
    "millimeters": ("mm", "millimeter"),
    "centimeters": ("cm", "centimeter"),
}


def ceil_div(value: int, step: int) -> int:
    """ceil(value / step) in integers, exact for any size (no float rounding)."""
    return -(-value // step)


def align_down(value: int, step: int) -> int:
    """Largest multiple of `step` that is <= value."""
    return (value // step) * step


def align_up(value: int, step: int) -> int:
    """Smallest multiple of `step` that is >= value."""
    return -((-value) // step) * step


@dataclass(frozen=True, order=True)
class Box:
    """A non-empty half-open box [start, stop) in (x, y, z) voxel coordinates."""

    start: Triple
    stop: Triple

    def __post_init__(self) -> None:
        start, stop = tuple(int(v) for v in self.start), tuple(int(v) for v in self.stop)
        if len(start) != 3 or len(stop) != 3:
            raise InvalidBox(f"a box needs three start and three stop values, got {self.start} and {self.stop}")
        for axis, lo, hi in zip("xyz", start, stop):
            if lo >= hi:
                raise InvalidBox(f"empty or inverted {axis} range {lo}:{hi}: the stop must be greater than the start")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "stop", stop)

    @classmethod
    def from_ranges(cls, x: tuple[int, int], y: tuple[int, int], z: tuple[int, int]) -> Box:
        return cls((x[0], y[0], z[0]), (x[1], y[1], z[1]))

    @property
    def x(self) -> tuple[int, int]:
        return self.start[0], self.stop[0]

    @property
    def y(self) -> tuple[int, int]:
        return self.start[1], self.stop[1]

    @property
    def z(self) -> tuple[int, int]:
        return self.start[2], self.stop[2]

    @property
    def shape(self) -> Triple:
        """Extent as (x, y, z)."""
        return tuple(hi - lo for lo, hi in zip(self.start, self.stop))  # type: ignore[return-value]

    @property
    def shape_zyx(self) -> Triple:
        """Extent in array order (z, y, x)."""
        sx, sy, sz = self.shape
        return sz, sy, sx

    @property
    def nvoxels(self) -> int:
        sx, sy, sz = self.shape
        return sx * sy * sz

    def nbytes(self, itemsize: int, time_samples: int = 1) -> int:
        return self.nvoxels * itemsize * time_samples

    def intersect(self, other: Box) -> Box | None:
        lo = tuple(max(a, b) for a, b in zip(self.start, other.start))
        hi = tuple(min(a, b) for a, b in zip(self.stop, other.stop))
        if any(a >= b for a, b in zip(lo, hi)):
            return None
        return Box(lo, hi)  # type: ignore[arg-type]

    def contains(self, other: Box) -> bool:
        return all(a <= b for a, b in zip(self.start, other.start)) and all(
            a >= b for a, b in zip(self.stop, other.stop))

    def shift(self, offset: Triple) -> Box:
        return Box(tuple(a + d for a, d in zip(self.start, offset)),  # type: ignore[arg-type]
                   tuple(a + d for a, d in zip(self.stop, offset)))  # type: ignore[arg-type]

    def with_z(self, z0: int, z1: int) -> Box:
        return Box((self.start[0], self.start[1], z0), (self.stop[0], self.stop[1], z1))

    def slices_in(self, outer: Box) -> tuple[slice, slice, slice]:
        """numpy (z, y, x) slices that select this box inside an array covering `outer`."""
        if not outer.contains(self):
            raise InvalidBox(f"{self} does not lie inside {outer}")
        rel = [lo - o for lo, o in zip(self.start, outer.start)]
        sx, sy, sz = self.shape
        return slice(rel[2], rel[2] + sz), slice(rel[1], rel[1] + sy), slice(rel[0], rel[0] + sx)

    def is_aligned(self, grid: Triple = BOSS_CUBOID) -> bool:
        return all(v % g == 0 for v, g in zip(self.start, grid)) and all(
            v % g == 0 for v, g in zip(self.stop, grid))

    def url_ranges(self) -> str:
        """The `x0:x1/y0:y1/z0:z1` segment of a BOSS cutout URL."""
        return "/".join(f"{lo}:{hi}" for lo, hi in zip(self.start, self.stop))

    def __str__(self) -> str:
        return ", ".join(f"{a} {lo}:{hi}" for a, lo, hi in zip("xyz", self.start, self.stop))


def parse_range(text: str, name: str = "range") -> tuple[int, int]:
    """'0:512' -> (0, 512); a clear error for anything else."""
    try:
        lo, hi = (int(v) for v in str(text).split(":"))
    except ValueError:
        raise InvalidBox(f"{name} {text!r} is not of the form START:STOP (two integers)") from None
    if lo >= hi:
        raise InvalidBox(f"{name} {lo}:{hi} is empty or inverted: the stop must be greater than the start")
    return lo, hi


# --- resolution levels ------------------------------------------------------------------------


MAX_ISO_LEVEL = 29


def iso_level(x_voxel: float, z_voxel: float) -> int:
    """The level whose x voxel size is closest to z's: where an anisotropic pyramid becomes isotropic
    (boss-api.md 3.7). Client and server must agree on it."""
    return min(range(MAX_ISO_LEVEL + 1), key=lambda r: abs(z_voxel / (x_voxel * 2**r) - 1))


def level_factors(res: int, z_scaled: bool) -> Triple:
    """Per-axis downsampling factor of level `res`: x, y halve every level; z only if `z_scaled`."""
    if res < 0:
        raise InvalidBox(f"resolution {res} is negative")
    f = 2**res
    return f, f, (f if z_scaled else 1)


def box_at_res(box: Box, res: int, z_scaled: bool) -> Box:
    """Map a level-0 box to level `res` (start floored, stop rounded up: every touched voxel kept)."""
    fx, fy, fz = level_factors(res, z_scaled)
    start = (box.start[0] // fx, box.start[1] // fy, box.start[2] // fz)
    stop = (ceil_div(box.stop[0], fx), ceil_div(box.stop[1], fy), ceil_div(box.stop[2], fz))
    return Box(start, stop)


def clamp_to_start(box: Box, start: Triple) -> Box | None:
    """`box` with its start raised to `start` on every axis; None if nothing is left.

    BOSS checks the cutouts of every level against the *level-0* frame (bosscore/request.py,
    set_cutoutargs): a range below x_start/y_start/z_start is refused at any level, so what a level
    serves is its scaled frame clamped to the unscaled start (neuroglancer's BOSS source does the same).
    """
    lo = tuple(max(a, b) for a, b in zip(box.start, start))
    if any(a >= b for a, b in zip(lo, box.stop)):
        return None
    return Box(lo, box.stop)  # type: ignore[arg-type]


def downsample_blocker(hierarchy_method: str, voxel_size: tuple[float, float, float]) -> str | None:
    """Why BOSS cannot downsample a channel of this hierarchy, or None if it can.

    spdb's get_isotropic_level raises for an anisotropic hierarchy whose x and y voxel sizes differ,
    so BOSS answers a downsample POST with 500 and its status with 400/9001.
    """
    vx, vy, _ = voxel_size
    if hierarchy_method == "anisotropic" and vx != vy:
        return (f"BOSS cannot downsample an anisotropic hierarchy whose x and y voxel sizes differ "
                f"(x {vx:g}, y {vy:g})")
    return None


def voxel_size_at_res(voxel: tuple[float, float, float], res: int, z_scaled: bool) -> tuple[float, float, float]:
    fx, fy, fz = level_factors(res, z_scaled)
    return voxel[0] * fx, voxel[1] * fy, voxel[2] * fz


# --- block planning ---------------------------------------------------------------------------


def request_cost(box: Box, itemsize: int, time_samples: int = 1) -> int:
    """Bytes the server counts against its cap (64-bit channels count a quarter, as BOSS does)."""
    return _counted(box.nbytes(itemsize, time_samples), itemsize)


def _counted(nbytes: int, itemsize: int) -> int:
    return nbytes // 4 if itemsize == 8 else nbytes


def block_shape(box: Box, itemsize: int, max_bytes: int = DEFAULT_BLOCK_BYTES, *, time_samples: int = 1,
                depth: int | None = None) -> Triple:
    """Shape (x, y, z) of the aligned blocks for `box`: whole cuboids, grown x first, then y, then z.

    `depth` fixes the z size (a multiple of the cuboid depth). One cuboid is the minimum even when it
    exceeds `max_bytes`; nothing exceeds the server's cap.
    """
    cx, cy, cz = BOSS_CUBOID
    span = [math.ceil((align_up(hi, c) - align_down(lo, c)) / c)
            for lo, hi, c in zip(box.start, box.stop, BOSS_CUBOID)]
    nz = max(1, (depth or cz) // cz)
    n = [1, 1, min(nz, span[2])]

    def fits(shape: list[int]) -> bool:
        nbytes = shape[0] * cx * shape[1] * cy * shape[2] * cz * itemsize * time_samples
        return nbytes <= max_bytes and _counted(nbytes, itemsize) <= CUTOUT_MAX_BYTES

    for axis in (0, 1) + (() if depth else (2,)):
        while n[axis] < span[axis]:
            trial = list(n)
            trial[axis] = min(span[axis], n[axis] * 2)
            if not fits(trial):
                trial[axis] = n[axis] + 1  # one more cuboid rather than doubling
                if not fits(trial):
                    break
            n = trial
    return n[0] * cx, n[1] * cy, n[2] * cz


def iter_blocks(box: Box, shape: Triple) -> Iterator[Box]:
    """Tile `box` with blocks on the grid of `shape` anchored at 0, clipped to the box; z-major order."""
    ranges = []
    for lo, hi, s in zip(box.start, box.stop, shape):
        edges = list(range(align_down(lo, s), hi, s))
        ranges.append([(max(lo, e), min(hi, e + s)) for e in edges])
    for z0, z1 in ranges[2]:
        for y0, y1 in ranges[1]:
            for x0, x1 in ranges[0]:
                yield Box((x0, y0, z0), (x1, y1, z1))


def plan_blocks(box: Box, itemsize: int, max_bytes: int = DEFAULT_BLOCK_BYTES, *, time_samples: int = 1,
                depth: int | None = None) -> list[Box]:
    """Split `box` into cuboid-aligned blocks of at most `max_bytes` (and never over the server cap)."""
    shape = block_shape(box, itemsize, max_bytes, time_samples=time_samples, depth=depth)
    return list(iter_blocks(box, shape))


def z_slabs(box: Box, depth: int = BOSS_CUBOID[2]) -> list[Box]:
    """The box cut into z-slabs aligned to `depth` (the first and last may be thinner)."""
    return [box.with_z(lo, hi) for lo, hi in
            ((max(box.start[2], e), min(box.stop[2], e + depth))
             for e in range(align_down(box.start[2], depth), box.stop[2], depth))]
