"""ndex 1.x's rules for where pushed data lies: its extents, the offsets into BOSS coordinates, the frame.

BOSS coordinates = source coordinates + offsets. Forced offsets are taken as given; otherwise
`shift_negative` moves each negative extent start to 0 (ndex 1.x's --offset_extents). BOSS cannot
address negative coordinates, and a coordinate frame must contain the data after offsets: both are
refused before anything is created or posted. Errors name the field (`offsets`, `frame`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ndex.errors import FieldError
from ndex.geometry import Box, Triple

Range = Sequence[int]


def data_extents(source: Any, x: Range | None = None, y: Range | None = None, z: Range | None = None) -> Box:
    """The whole data's extent before offsets: the ranges given, else what the source reports."""
    (x0, y0), (sx, sy) = source.origin_xy, source.shape_xy
    return Box.from_ranges(tuple(x) if x else (x0, x0 + sx), tuple(y) if y else (y0, y0 + sy),  # type: ignore[arg-type]  # ranges of two
                           tuple(z) if z else tuple(source.z_range))  # type: ignore[arg-type]


def offsets_for(data: Box | None, *, forced: Range | None = None, shift_negative: bool = False) -> Triple:
    """Forced offsets as given, else each negative start of `data` shifted to 0 if asked, else none."""
    if forced:
        return tuple(int(v) for v in forced)  # type: ignore[return-value]
    if shift_negative and data is not None:
        return tuple(max(0, -lo) for lo in data.start)  # type: ignore[return-value]
    return 0, 0, 0


def check_non_negative(data: Box, offsets: Triple) -> None:
    """BOSS cannot address negative coordinates: refuse before creating or posting anything."""
    for axis, lo, off in zip("xyz", data.start, offsets):
        if lo + off < 0:
            raise FieldError("offsets", f"the {axis} extent starts at {lo + off} after offsets, but BOSS "
                                        "coordinates cannot be negative: pass {field}")


def frame_box(data: Box, offsets: Triple, given: Sequence[Range | None] = (None, None, None)) -> Box:
    """The coordinate frame: the ranges `given` per axis, else the data's after offsets; it must contain the data."""
    shifted = data.shift(offsets)
    frame = Box.from_ranges(*(tuple(g) if g else (lo, hi) for g, lo, hi in zip(given, shifted.start, shifted.stop)))  # type: ignore[arg-type]  # ranges of two
    if not frame.contains(shifted):
        raise FieldError("frame", f"the coordinate frame ({frame}) must contain the data after offsets "
                                  f"({shifted}): widen {{field}}")
    return frame
