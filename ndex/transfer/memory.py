"""What both transfer engines hold besides their blocks in flight: one 16-slice slab of the XY extent.

Both engines stream a volume slab by slab on the server's cuboid grid, so a slab buffer is always 16
slices deep whatever the depth of the region; `ndex plan` budgets its jobs with the same figure.
"""
from __future__ import annotations

from ndex.geometry import BOSS_CUBOID, Box

SLAB_DEPTH = BOSS_CUBOID[2]  # slices of one slab: the server's cuboid depth


def slab_bytes(box: Box, itemsize: int, time_samples: int = 1) -> int:
    """Bytes of one 16-slice slab of `box`'s XY extent (all `time_samples`)."""
    return box.with_z(0, SLAB_DEPTH).nbytes(itemsize, time_samples)
