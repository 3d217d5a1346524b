"""The read side of a push: what every image source implements, and the spec that opens one.

The upload engine asks a source for z-slabs (at most one BOSS cuboid deep, 16 slices) and never
for a whole volume, so memory stays bounded by the slab, whatever the size of the input:

    source = open_source(SourceSpec(datasource="local", base_path="/data", base_filename="img_<p:4>",
                                    extension="tif", z_range=(0, 1000), datatype="uint8"))
    source.validate()                 # reads a few slices now, so bad input fails before any post
    slab = source.read_slab(0, 16)    # (16, y, x) array, z numbered as in the source
    source.close()

Coordinates: a source numbers z as its input does (file names, stack pages, render z values);
`z_range` is that numbering, half-open, before any --offset_extents or --forced_offsets, which are
the engine's business. `origin_xy` is where the first voxel of a slice lies in the input's own x/y
coordinates (the --x_extent/--y_extent starts for files, the scaled stack bounds for render), so
the engine can derive offsets the way ndex 1.x did.

Errors: every failure to read input is a `SourceError` whose message names the file (or URL),
what was found and what was expected; a spec that cannot work is a `UsageError`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ndex.errors import InvalidBox, OutOfBounds, UsageError
from ndex.geometry import BOSS_CUBOID, Box

DATASOURCES = ("local", "s3", "render", "tiles", "stack", "zarr", "n5", "precomputed")  # built in; open_source checks the name
RGB_NAMES = {"r": 0, "red": 0, "g": 1, "green": 1, "b": 2, "blue": 2, "a": 3, "alpha": 3}

Range = tuple[int, int]


@runtime_checkable
class Source(Protocol):
    """A z-indexed stack of equally sized 2D grayscale slices.

    `missing` lists the z's that were replaced by zero slices because their input did not exist
    and the spec allowed it (warn_missing_files); it grows as slabs are read. Sources are used
    from one thread at a time; each may read the slices of one slab in parallel internally.
    """

    dtype: np.dtype
    shape_xy: tuple[int, int]  # (x, y) size of one slice
    z_range: Range  # source z numbering, half-open, before any offset
    origin_xy: tuple[int, int]  # (x, y) of the slice's first voxel in the input's own coordinates

    @property
    def missing(self) -> list[int]:
        """Sorted z's read as zero slices because their input was missing."""

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        """Slices z0..z1-1 (source numbering) as a C-ordered (z1-z0, y, x) array of `dtype`.

        The engines read through `read_box`, so a source that can read part of a slice (XY bands)
        adds `supports_partial_reads = True` and `read(box)`, and is asked only for the boxes it needs."""

    def validate(self, sample: int = 3) -> None:
        """Read the first, the last and `sample` evenly spaced slices; SourceError on the first problem."""

    def describe(self) -> str:
        """One line for logs and run reports."""

    def close(self) -> None:
        """Release files, connections and threads. Idempotent."""


@dataclass(frozen=True)
class SourceSpec:
    """Everything needed to open a source; JSON round-trippable through `to_dict`/`from_dict`.

    Field names follow ndpush's flags. File name templates (base_path and base_filename) take
    ndex 1.x's placeholders: `<p:4>` the file number zero-padded to 4 digits, `<>` unpadded,
    `<ch>` the channel name. The file number of slice z is `z * z_step` (ndex 1.x's meaning:
    with z_step 2, z 0, 1, 2 read files 0, 2, 4).
    """

    datasource: str = "local"
    base_path: str = ""
    base_filename: str = ""
    extension: str = "tif"
    channel: str = ""  # substituted for <ch>
    z_step: int = 1
    z_range: Range | None = None
    x_extent: Range | None = None  # BOSS x range of the data; its width is the slice width
    y_extent: Range | None = None
    datatype: str | None = None  # None: taken from the first slice
    warn_missing_files: bool = False
    rgb_channel: int | None = None  # which channel of RGB(A) input to keep; "r"/"g"/"b" accepted
    read_threads: int = 4  # slices, tiles or render boxes fetched and decoded in parallel within one slab
    # s3
    s3_bucket: str | None = None
    aws_profile: str | None = None
    s3_endpoint: str | None = None  # default: AWS_ENDPOINT_URL
    # render-ws
    render_base_url: str | None = None
    render_owner: str | None = None
    render_project: str | None = None
    render_stack: str | None = None
    render_channel: str | None = None
    render_scale: float = 1.0
    render_window: Range | None = None  # (min, max) of 16-bit intensities mapped onto 0..255
    render_tile_size: int = 4096  # pixels per side of one box request (after scaling)
    limit_x: Range | None = None
    limit_y: Range | None = None
    limit_z: Range | None = None
    # CATMAID-style tiles
    tile_pattern: str = "{z}/{row}_{col}.png"
    tile_size: tuple[int, int] = (1024, 1024)  # (x, y)
    # OME-Zarr / N5 / precomputed through tensorstore (ndex/sources/volume.py)
    source_url: str = ""  # path, s3://, gs:// or http(s)://; '<ch>' is the channel name
    source_level: int = 0  # multiscale level (OME-Zarr dataset, N5 s<N>, precomputed scale)
    time_index: int | None = None  # time point of a 4D/5D volume (None: the only one)
    channel_index: int | None = None  # channel of the volume's channel axis (None: the one labelled `channel`)

    def __post_init__(self) -> None:
        for name in ("z_range", "x_extent", "y_extent", "render_window", "limit_x", "limit_y", "limit_z"):
            object.__setattr__(self, name, _range(getattr(self, name), name))
        if int(self.z_step) < 1:
            raise UsageError(f"z_step {self.z_step} must be a positive integer")
        if int(self.read_threads) < 1:
            raise UsageError(f"read_threads {self.read_threads} must be at least 1")
        if not float(self.render_scale) > 0:
            raise UsageError(f"render_scale {self.render_scale} must be positive")
        object.__setattr__(self, "z_step", int(self.z_step))
        object.__setattr__(self, "read_threads", int(self.read_threads))
        object.__setattr__(self, "render_scale", float(self.render_scale))
        object.__setattr__(self, "rgb_channel", parse_rgb_channel(self.rgb_channel))
        object.__setattr__(self, "tile_size", _tile_size(self.tile_size))
        object.__setattr__(self, "extension", str(self.extension or "").lstrip("."))

    @property
    def dtype(self) -> np.dtype | None:
        """The requested numpy dtype, or None to take the input's."""
        if self.datatype is None:
            return None
        try:
            return np.dtype(self.datatype)
        except TypeError:
            raise UsageError(f"unknown datatype {self.datatype!r}: use uint8, uint16 or uint64") from None

    @property
    def origin_xy(self) -> tuple[int, int]:
        """(x, y) of a slice's first voxel: the starts of x_extent and y_extent, 0 without one."""
        return (self.x_extent[0] if self.x_extent else 0, self.y_extent[0] if self.y_extent else 0)

    @property
    def size_xy(self) -> tuple[int | None, int | None]:
        """(x, y) slice size the extents fix (their widths); None on an axis the input has to tell."""
        return (self.x_extent[1] - self.x_extent[0] if self.x_extent else None,
                self.y_extent[1] - self.y_extent[0] if self.y_extent else None)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown source spec field(s) {', '.join(unknown)}")
        return cls(**data)


def parse_rgb_channel(value: int | str | None) -> int | None:
    """'r'/'g'/'b'/'a' (or red/green/blue/alpha, or an index 0..3) -> channel index."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in RGB_NAMES:
        return RGB_NAMES[text]
    if text.isdigit() and int(text) < 4:
        return int(text)
    raise UsageError(f"rgb channel {value!r} is not one of r, g, b, a or an index 0..3")


def _range(value: Any, name: str) -> Range | None:
    if value is None:
        return None
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidBox(f"{name} {value!r} is not a pair of integers (start, stop)") from None
    if lo >= hi:
        raise InvalidBox(f"{name} {lo}:{hi} is empty or inverted: the stop must be greater than the start")
    return lo, hi


def _tile_size(value: Any) -> tuple[int, int]:
    sizes = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(sizes) != 2 or min(sizes) < 1:
        raise UsageError(f"tile_size {value!r} must be one positive integer or an (x, y) pair")
    return sizes  # type: ignore[return-value]


def read_box(source: Source, box: Box) -> np.ndarray:
    """The voxels of `box` as a C-ordered (z, y, x) array: x/y in the input's own coordinates (from
    `origin_xy`), z in the source's numbering.

    A source that can read part of a slice declares `supports_partial_reads = True` and is asked for the
    box itself (`source.read(box)`); the others read whole slices and the box is cut out of them.
    """
    (x0, y0), (sx, sy) = source.origin_xy, source.shape_xy
    if not Box((x0, y0, box.z[0]), (x0 + sx, y0 + sy, box.z[1])).contains(box):
        raise OutOfBounds(f"box {box} is not inside the source's x {x0}:{x0 + sx}, y {y0}:{y0 + sy}")
    if getattr(source, "supports_partial_reads", False):
        return source.read(box)  # type: ignore[attr-defined]
    slab = source.read_slab(*box.z)
    if box.shape[:2] == (sx, sy):
        return slab
    return np.ascontiguousarray(slab[:, box.y[0] - y0:box.y[1] - y0, box.x[0] - x0:box.x[1] - x0])


def check_slab(z_range: Range, z0: int, z1: int) -> None:
    """OutOfBounds unless z0:z1 is a non-empty part of `z_range`."""
    if not z_range[0] <= z0 < z1 <= z_range[1]:
        raise OutOfBounds(f"slab z {z0}:{z1} is not inside the source's z range {z_range[0]}:{z_range[1]}")


def sample_points(z_range: Range, sample: int) -> list[int]:
    """The first and last z of `z_range` and `sample` evenly spaced ones between, in order."""
    lo, hi = z_range
    count = max(int(sample), 0) + 2
    points = {lo, hi - 1} | {lo + (hi - 1 - lo) * i // (count - 1) for i in range(count)}
    return sorted(points)


class SliceBySlice:
    """`read_slab` and `validate` for sources that decode one slice at a time into a given array.

    The class provides `z_range`, `shape_xy`, `dtype`, a thread pool `_pool` and `_read_into(z, out)`.
    """

    z_range: Range
    shape_xy: tuple[int, int]
    dtype: np.dtype
    _pool: Any
    _read_into: Callable[[int, np.ndarray], None]

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        check_slab(self.z_range, z0, z1)
        out = np.empty((z1 - z0, self.shape_xy[1], self.shape_xy[0]), dtype=self.dtype)
        list(self._pool.map(lambda z: self._read_into(z, out[z - z0]), range(z0, z1)))
        return out

    def validate(self, sample: int = 3) -> None:
        scratch = np.empty((self.shape_xy[1], self.shape_xy[0]), dtype=self.dtype)
        for z in sample_points(self.z_range, sample):
            self._read_into(z, scratch)


class BandBySlice(SliceBySlice):
    """A SliceBySlice source that also reads XY bands: `read(box)` over `_region_into(z, rows, cols, out)`,
    which reads rows x cols of slice z (slice coordinates) into `out`; `_spill` keeps slices decoded whole."""

    supports_partial_reads = True
    origin_xy: tuple[int, int]
    _spill: Any
    _region_into: Callable[[int, Range, Range, np.ndarray], None]

    def read(self, box: Box) -> np.ndarray:
        """The voxels of `box` (x/y in the input's coordinates, from origin_xy) as (z, y, x)."""
        check_slab(self.z_range, *box.z)
        (ox, oy), (sx, sy) = self.origin_xy, self.shape_xy
        if box.shape[:2] == (sx, sy):
            return self.read_slab(*box.z)
        rows, cols = (box.y[0] - oy, box.y[1] - oy), (box.x[0] - ox, box.x[1] - ox)
        self._spill.keep(box.z)  # slices of earlier slabs are no longer needed
        out = np.empty(box.shape_zyx, dtype=self.dtype)
        list(self._pool.map(lambda z: self._region_into(z, rows, cols, out[z - box.z[0]]), range(*box.z)))
        return out

    def validate(self, sample: int = 3) -> None:
        """Read the sampled slices whole, one cuboid row at a time: a 50k x 50k section is not held at once."""
        sx, sy = self.shape_xy
        scratch = np.empty((min(sy, BOSS_CUBOID[1]), sx), dtype=self.dtype)
        for z in sample_points(self.z_range, sample):
            for y0 in range(0, sy, BOSS_CUBOID[1]):
                y1 = min(sy, y0 + BOSS_CUBOID[1])
                self._region_into(z, (y0, y1), (0, sx), scratch[:y1 - y0])
