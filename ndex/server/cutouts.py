"""Cutout requests parsed at the edge: resolution, ranges, time, size cap, and blosc bodies checked
against what the URL announces (boss-api.md 3 and 4). Every refusal is a BossError with BOSS's code."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ndex import codecs
from ndex.errors import CorruptBody
from ndex.geometry import CUTOUT_MAX_BYTES, Box, request_cost
from ndex.server import bodies
from ndex.server.channels import ChannelInfo
from ndex.server.fields import DATATYPES
from ndex.server.http_errors import (
    BOSS_SYSTEM_ERROR,
    DATA_DIMENSION_MISMATCH,
    DATATYPE_DOES_NOT_MATCH,
    DATATYPE_NOT_SUPPORTED,
    INVALID_CUTOUT_ARGS,
    INVALID_URL,
    REQUEST_TOO_LARGE,
    TYPE_ERROR,
    BossError,
)
from ndex.server.values import MAX_EXTENT

_DIGITS = len(str(MAX_EXTENT))  # a coordinate has at most as many digits as the largest frame extent
# ASCII only: \d also matches other digits, $ a newline
RANGE = re.compile(rf"^([0-9]{{1,{_DIGITS}}}):([0-9]{{1,{_DIGITS}}})\Z")
BLOSC_OVERHEAD = 16  # a blosc-1 frame is at most this much larger than its data


@dataclass(frozen=True)
class Region:
    """A validated cutout address: channel, level, box, time samples, and whether the URL was 4D."""

    info: ChannelInfo
    res: int
    box: Box
    t_range: tuple[int, int]
    four_d: bool
    iso: bool = False

    @property
    def layout(self):
        return self.info.layout(self.iso)

    @property
    def t_span(self) -> int:
        return self.t_range[1] - self.t_range[0]

    @property
    def itemsize(self) -> int:
        return np.dtype(self.info.datatype).itemsize

    @property
    def stored_box(self) -> Box | None:
        """The part of the box where the level holds voxels; the rest (a coarser level's box reaches past
        its data, being addressed in the level-0 frame) reads as zeros. None: all of it."""
        return self.box.intersect(self.info.data_box(self.res, self.iso))

    @property
    def nbytes(self) -> int:
        return self.box.nbytes(self.itemsize, self.t_span)

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape on the wire: (t, z, y, x) for 4D URLs, (z, y, x) otherwise."""
        return (self.t_span, *self.box.shape_zyx) if self.four_d else self.box.shape_zyx


def parse_res(info: ChannelInfo, text: str) -> int:
    if not re.fullmatch(r"[0-9]", text or ""):
        raise BossError(TYPE_ERROR, f"resolution {text!r} must be a single digit")
    res = int(text)
    top = info.base + info.experiment["num_hierarchy_levels"] - 1
    if not info.base <= res <= top:
        raise BossError(TYPE_ERROR, f"resolution {res} is not available: this channel has levels {info.base}..{top}")
    return res


def parse_range(text: str, axis: str) -> tuple[int, int]:
    m = RANGE.match(text or "")
    if not m:
        raise BossError(INVALID_CUTOUT_ARGS, f"{axis} range {text!r} must be START:STOP with non-negative integers")
    lo, hi = int(m.group(1)), int(m.group(2))
    if lo >= hi:
        raise BossError(INVALID_CUTOUT_ARGS, f"{axis} range {lo}:{hi} is empty: the stop must exceed the start")
    return lo, hi


def parse_box(info: ChannelInfo, x: str, y: str, z: str) -> Box:
    """The URL's box, inside the level-0 frame whatever the resolution (as BOSS checks it)."""
    box = Box.from_ranges(parse_range(x, "x"), parse_range(y, "y"), parse_range(z, "z"))
    frame = info.frame_box
    if not frame.contains(box):
        raise BossError(INVALID_CUTOUT_ARGS, f"{box} lies outside the coordinate frame {frame}: every resolution "
                                             "is addressed within the level-0 frame; clip the request to it")
    return box


def parse_time(info: ChannelInfo, t: str | None) -> tuple[tuple[int, int], bool]:
    """(t_range, four_d); without a time segment the channel's default_time_sample is used."""
    if t is None:
        d = info.channel["default_time_sample"]
        return (d, d + 1), False
    m = RANGE.match(t)
    n = info.experiment["num_time_samples"]
    if not m or not int(m.group(1)) < int(m.group(2)) <= n + 1 or int(m.group(1)) > n:
        raise BossError(INVALID_URL, f"time range {t!r} is invalid: use T0:T1 with T0 < T1 (the experiment "
                                     f"has {n} time samples, 0..{n - 1})")
    return (int(m.group(1)), int(m.group(2))), True


def parse_region(info: ChannelInfo, res_text: str, x: str, y: str, z: str, t: str | None,
                 iso: bool = False) -> Region:
    res = parse_res(info, res_text)
    use_iso = info.uses_iso(res, iso)
    box = parse_box(info, x, y, z)
    t_range, four_d = parse_time(info, t)
    region = Region(info, res, box, t_range, four_d, use_iso)
    cost = request_cost(box, region.itemsize, region.t_span)
    if cost > CUTOUT_MAX_BYTES:
        raise BossError(REQUEST_TOO_LARGE, f"cutout of {region.nbytes / 2**20:,.0f} MiB exceeds the server's "
                                           f"{CUTOUT_MAX_BYTES // 2**20} MiB cap: split it into smaller blocks")
    if region.nbytes > codecs.MAX_FRAME_BYTES:  # 64-bit channels count a quarter: 4 x 520 MiB passes the cap
        raise BossError(REQUEST_TOO_LARGE, f"cutout of {region.nbytes} bytes exceeds what one blosc-1 frame carries "
                                           f"({codecs.MAX_FRAME_BYTES} bytes, just under 2 GiB): split it")
    return region


def check_writable(region: Region, code: int = BOSS_SYSTEM_ERROR) -> None:
    """BOSS writes only the base resolution and the one above it."""
    if region.res not in (region.info.base, region.info.base + 1):
        raise BossError(code, f"resolution {region.res} is not writable: write resolution {region.info.base} "
                              "(or the one above it) and downsample")


def check_stored(region: Region) -> None:
    """ndex stores a level only within its extent: a write reaching past it is refused (BOSS keeps it)."""
    if region.stored_box != region.box:
        raise BossError(INVALID_CUTOUT_ARGS, f"{region.box} reaches past the data of resolution {region.res} "
                                             f"(x, y, z extent {region.info.extent_at(region.res, region.iso)}): "
                                             "clip the write to the level's extent")


def parse_filter(info: ChannelInfo, text: str) -> np.ndarray:
    if not info.annotation:
        raise BossError(DATATYPE_NOT_SUPPORTED, "filter= works only on annotation channels")
    try:
        ids = [int(v) if v.isascii() and v.isdigit() else -1 for v in text.split(",")]
        if any(not 0 <= v < 2**64 for v in ids):
            raise ValueError
    except ValueError:
        raise BossError(INVALID_CUTOUT_ARGS, f"filter {text!r} must be a comma list of ids, e.g. filter=1,2,3") from None
    return np.array(ids, dtype=np.uint64)


def decode_body(region: Region, body: bytes, media: str = "application/blosc") -> np.ndarray:
    """The posted array as (t, z, y, x), in any of BOSS's three body encodings."""
    if media in (bodies.BLOSC_PYTHON, bodies.NPYGZ):
        return decode_array_body(region, body, media)
    return decode_blosc_body(region, body)


def decode_array_body(region: Region, body: bytes, media: str) -> np.ndarray:
    """A pickled or .npy array: its own dtype and shape must be the channel's and the URL's (BOSS's
    order of checks and codes); a 3D array is accepted for a one-sample time range."""
    read = bodies.unpack_array if media == bodies.BLOSC_PYTHON else bodies.load_npygz
    try:
        array = read(body, region.nbytes)
    except CorruptBody as exc:
        raise BossError(DATATYPE_DOES_NOT_MATCH, f"{exc}: send a {media} body of the "
                                                 f"{region.info.datatype} array") from None
    if array.dtype != np.dtype(region.info.datatype):
        raise BossError(DATATYPE_DOES_NOT_MATCH, f"the body holds {array.dtype} data but the channel stores "
                                                 f"{region.info.datatype}: convert the array first")
    wanted = (region.t_span, *region.box.shape_zyx)
    if array.shape not in (wanted, wanted[1:]):
        raise BossError(DATA_DIMENSION_MISMATCH, f"the body's array has shape {array.shape} but the URL's "
                                                 f"cutout is {'x'.join(map(str, region.shape))}: send an array "
                                                 "of exactly that shape")
    return np.ascontiguousarray(array.reshape(-1, *wanted[1:]))


def decode_blosc_body(region: Region, body: bytes) -> np.ndarray:
    """The raw blosc frame, after checking its header against the URL's extent."""
    try:
        nbytes = codecs.frame_nbytes(body)
    except CorruptBody as exc:
        raise BossError(DATATYPE_DOES_NOT_MATCH, f"the body is not a blosc frame ({exc}): compress the raw "
                                                 f"{region.info.datatype} array with blosc") from None
    if nbytes != region.nbytes:
        raise _size_error(region, body, nbytes)
    try:
        data = codecs.decode(body, region.info.datatype, (region.t_span, *region.box.shape_zyx))
    except CorruptBody as exc:
        raise BossError(DATATYPE_DOES_NOT_MATCH, f"the blosc body could not be decoded: {exc}") from None
    return data


def _size_error(region: Region, body: bytes, nbytes: int) -> BossError:
    typesize = body[3]
    voxels = region.box.nvoxels * region.t_span
    for name, size in ((name, np.dtype(name).itemsize) for name in DATATYPES):
        if name != region.info.datatype and typesize in (size, size * 8) and nbytes == voxels * size:
            return BossError(DATATYPE_DOES_NOT_MATCH, f"the body holds {name} data but the channel stores "
                                                      f"{region.info.datatype}: convert the array first")
    return BossError(DATA_DIMENSION_MISMATCH, f"the body holds {nbytes} bytes but the URL's "
                                              f"{'x'.join(map(str, region.shape))} {region.info.datatype} "
                                              f"cutout needs {region.nbytes}: send an array of exactly that shape")
