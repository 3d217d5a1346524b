"""What both transfer engines hold besides their blocks in flight: one 16-slice slab of the XY extent.

Both engines stream a volume slab by slab on the server's cuboid grid, so a slab buffer is always 16
slices deep whatever the depth of the region; `ndex plan` budgets its jobs with the same figure. A
memory cap below one slab plus one block cannot be met by shrinking what is in flight: `too_small`
is the error both engines raise then, naming the flag that set the cap (ndpull's and ndpush's
--max_memory, or ndex plan's --memory_per_worker).
"""
from __future__ import annotations

from ndex.errors import UsageError
from ndex.geometry import BOSS_CUBOID, Box
from ndex.progress import mb

SLAB_DEPTH = BOSS_CUBOID[2]  # slices of one slab: the server's cuboid depth


def slab_bytes(box: Box, itemsize: int, time_samples: int = 1) -> int:
    """Bytes of one 16-slice slab of `box`'s XY extent (all `time_samples`)."""
    return box.with_z(0, SLAB_DEPTH).nbytes(itemsize, time_samples)


def too_small(flag: str, limit: int, who: str, needed: int, parts: str, advice: str) -> UsageError:
    """The one line for a memory cap that cannot hold one slab and one block: what is needed, and the flag to raise."""
    return UsageError(f"{flag} {mb(limit)} is too small for one 16-slice slab: {who} needs at least {mb(needed)} "
                      f"({parts}); raise {flag}{advice}")
