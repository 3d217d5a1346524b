"""`--force_datatype`: convert voxel values by a documented rule, never by silent wrap-around.

Modes (the default is `scale`):

* `scale`: shift by the difference in bit depth, so the full range maps onto the full range
  (uint16 -> uint8 is `>> 8`, uint8 -> uint16 is `<< 8`, uint64 -> uint16 is `>> 48`).
* `clip`: keep values, saturating at the target's maximum (uint16 300 -> uint8 255).
* `wrap`: keep the low bits (numpy's astype); only when asked for explicitly.
"""
from __future__ import annotations

import numpy as np

from ndex.errors import UsageError

MODES = ("scale", "clip", "wrap")


def convert(data: np.ndarray, dtype: np.dtype | str, mode: str = "scale") -> np.ndarray:
    """`data` as `dtype` by `mode`; returns `data` itself when nothing changes."""
    target = np.dtype(dtype)
    if data.dtype == target:
        return data
    if target.kind != "u" or data.dtype.kind != "u":
        raise UsageError(f"cannot convert {data.dtype} to {target}: only unsigned integer types are supported")
    if mode == "wrap":
        return data.astype(target)
    if mode == "clip":
        return np.minimum(data, np.iinfo(target).max).astype(target)
    if mode == "scale":
        shift = 8 * (data.dtype.itemsize - target.itemsize)
        if shift > 0:
            return (data >> np.array(shift, dtype=data.dtype)).astype(target)
        return data.astype(target) << np.array(-shift, dtype=target)
    raise UsageError(f"unknown conversion mode {mode!r}: use one of {', '.join(MODES)}")
