"""Several resolution levels of one pull: the `levels` range, and where the region lies at each level.

The region of a multi-level pull is given at its first level (like `res`); level L's box is that box
mapped by the ratio of the two levels' downsampling factors (start floored, stop rounded up: every
touched voxel kept, as `geometry.box_at_res` does from level 0), then clamped to the level-0 frame
start that BOSS checks at every level (`geometry.clamp_to_start`). The factors follow the experiment's
hierarchy (`ChannelInfo.voxel_size_at`: z halves on every level of an isotropic hierarchy, never on an
anisotropic one, or from the iso level on with `iso`).
"""
from __future__ import annotations

import re
from typing import Any

from ndex.client import ChannelInfo
from ndex.errors import FieldError, OutOfBounds
from ndex.geometry import Box, Triple, ceil_div, clamp_to_start

LEVELS = re.compile(r"^\s*(\d+)\s*(?:[-:]\s*(\d+)\s*)?$")


def parse_levels(value: Any) -> tuple[int, int]:
    """'0-3' (inclusive), '2', (0, 3) or [0, 3] -> (first, last); FieldError naming `levels` otherwise."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = (int(v) for v in value)
    else:
        found = LEVELS.match(str(value))
        if not found:
            raise FieldError("levels", f"{{field}} {value!r} is not a level range such as 0-3 (first-last, inclusive)")
        lo = int(found.group(1))
        hi = int(found.group(2) if found.group(2) is not None else lo)
    if lo < 0 or hi < lo:
        raise FieldError("levels", f"{{field}} {lo}-{hi} is empty or inverted: write first-last, e.g. 0-3")
    return lo, hi


def factors(info: ChannelInfo, res: int, iso: bool) -> Triple:
    """Per-axis downsampling factor (x, y, z) of level `res` against level 0 (powers of two, exact)."""
    scaled, base = info.voxel_size_at(res, iso), info.frame.voxel_size
    return tuple(max(1, round(s / b)) if b > 0 else 1 for s, b in zip(scaled, base))  # type: ignore[return-value]


def level_box(info: ChannelInfo, box: Box, first: int, res: int, iso: bool = False) -> Box:
    """`box` (at level `first`) at level `res` >= first; OutOfBounds if nothing of it is left there."""
    ratio = [r // f for r, f in zip(factors(info, res, iso), factors(info, first, iso))]
    start = tuple(lo // k for lo, k in zip(box.start, ratio))
    stop = tuple(ceil_div(hi, k) for hi, k in zip(box.stop, ratio))
    clamped = clamp_to_start(Box(start, stop), info.frame.box.start)  # type: ignore[arg-type]
    if clamped is None:
        raise OutOfBounds(f"the region {box} at resolution {first} has no voxel at resolution {res} that BOSS "
                          f"serves (it checks every level against the frame start {info.frame.box.start}): "
                          f"pull fewer levels")
    return clamped
