"""How a transfer runs, apart from what it moves: threads, block size, memory, retries, verification.

A pull or a push is a spec (what: channel, source or output, region, offsets, resolution) plus a
`TransferOptions` (how). Both are plain data that round-trip through JSON, so `ndex plan` writes
them into job files and `ndex run` hands them to the engine unchanged. Options never change what
is stored or written: a job re-run with other options resumes the same transfer.

Memory. Both engines stream a volume slab by slab on the server's cuboid grid, and each slab band by
band (rows of whole cuboids, or for the widest regions parts of a cuboid row), so besides their
blocks in flight they hold at most a few bands of 16 slices, whatever the depth or the slice size of
the region; `ndex plan` budgets its jobs with the same figure. A cap below one band (one cuboid row,
or one cuboid where x may be split) plus one block cannot be met by shrinking what is in flight: `too_small` is the error both engines raise then, naming the
field `max_memory` (a CLI names its flag instead: ndpull's --max_memory, ndex plan's --memory_per_worker).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ndex.errors import FieldError, UsageError
from ndex.geometry import BOSS_CUBOID, Box, align_down, align_up, iter_blocks
from ndex.progress import mb

VERIFY_MODES = ("sample", "all", "none")
SLAB_DEPTH = BOSS_CUBOID[2]  # slices of one slab: the server's cuboid depth
BAND_STEP = BOSS_CUBOID[1]  # bands are cut on the cuboid grid: whole cuboid rows (and columns)
DEFAULT_BAND_BYTES = 256 * 2**20  # without --max_memory: a 4096 x 4096 uint8 slab is one band, as before
# peak RSS of an engine process before its buffers: the interpreter with numpy, requests, blosc, tifffile,
# Pillow and ndex imported and a client made (measured 53-58 MB on Linux x86-64, Python 3.11), rounded up
PROCESS_BASE_BYTES = 60 * 10**6


@dataclass(frozen=True)
class TransferOptions:
    """How a pull or push runs; every field has a default, and unknown fields are refused by `from_dict`."""

    threads: int = 8  # parallel requests
    block_bytes: int | None = None  # largest block per request; None: the engine's default
    max_memory: int | None = None  # bytes for slabs and blocks in flight; None: no cap
    slabs_in_flight: int = 2  # push: slabs read ahead while the blocks of earlier ones are posted
    verify: str = "sample"  # push: read back some blocks per slab (sample), every block (all), or none
    verify_per_slab: int = 1  # push: blocks read back per slab in "sample" mode
    retries: int | None = None  # retries of one request, when the engine makes its own client; None: default
    manifest: str | None = None  # push: SQLite resume record; None keeps it in memory (no resume)

    def __post_init__(self) -> None:
        for name in ("threads", "slabs_in_flight", "block_bytes", "max_memory"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise FieldError(name, f"{{field}} {value} must be at least 1")
        for name in ("verify_per_slab", "retries"):
            value = getattr(self, name)
            if value is not None and int(value) < 0:
                raise FieldError(name, f"{{field}} {value} must not be negative")
        if self.verify not in VERIFY_MODES:
            raise FieldError("verify", f"unknown {{field}} {self.verify!r}: use one of {', '.join(VERIFY_MODES)}")

    def with_memory_cap(self, *caps: int | None) -> TransferOptions:
        """These options under the tightest of `max_memory` and `caps` (None: no cap)."""
        given = [v for v in (self.max_memory, *caps) if v is not None]
        return replace(self, max_memory=min(given) if given else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransferOptions:
        return cls(**known_fields(cls, data, "transfer options"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TransferOptions:
        return cls.from_dict(json.loads(text))


def known_fields(cls: Any, data: dict[str, Any], what: str) -> dict[str, Any]:
    """`data` if every key is a field of the dataclass `cls`; one line naming the unknown ones otherwise."""
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise UsageError(f"unknown {what} field(s) {', '.join(unknown)}")
    return dict(data)


def slab_bytes(box: Box, itemsize: int, time_samples: int = 1) -> int:
    """Bytes of one 16-slice slab of `box`'s XY extent (all `time_samples`)."""
    return box.with_z(0, SLAB_DEPTH).nbytes(itemsize, time_samples)


Band = tuple[int, int]  # (rows, columns) of a band's grid; columns cover the width when it is not split


def band_floor(box: Box, itemsize: int, time_samples: int = 1, split_x: bool = False) -> int:
    """Bytes of the smallest band: one cuboid row of the slab (one cuboid, when x may be split)."""
    width = min(box.shape[0], BAND_STEP) if split_x else box.shape[0]
    return SLAB_DEPTH * min(box.shape[1], BAND_STEP) * width * itemsize * time_samples


def band_shape(box: Box, itemsize: int, budget: int, time_samples: int = 1, split_x: bool = False) -> Band | None:
    """The largest band grid (rows, columns, multiples of the cuboid) whose bands of `box`'s slabs fit in
    `budget` bytes: whole slabs when they fit, else full-width bands of fewer rows, else (with `split_x`)
    parts of one cuboid row; None when not even one cuboid row (or cuboid) fits."""
    width, height = box.shape[0], box.shape[1]
    per_row = SLAB_DEPTH * itemsize * time_samples
    full_cols = align_up(box.x[1], BAND_STEP)
    all_rows = align_up(box.y[1], BAND_STEP)
    rows = align_down(budget // (per_row * width), BAND_STEP)
    if rows >= BAND_STEP or budget >= per_row * width * height:
        return min(max(rows, BAND_STEP), all_rows), full_cols
    if not split_x:
        return None
    cols = align_down(budget // (per_row * min(height, BAND_STEP)), BAND_STEP)
    return (BAND_STEP, cols) if cols >= BAND_STEP else None


def band_bytes(box: Box, band: Band, itemsize: int, time_samples: int = 1) -> int:
    """Bytes of the largest band of `box`'s slabs on the grid `band`."""
    return SLAB_DEPTH * min(band[0], box.shape[1]) * min(band[1], box.shape[0]) * itemsize * time_samples


def bands_in_flight(box: Box, band: Band, count: int, itemsize: int, time_samples: int = 1) -> int:
    """Bytes of the `count` largest consecutive bands (a full slab's pattern, repeating slab after slab)."""
    slab = box.with_z(0, SLAB_DEPTH)
    sizes = [b.nbytes(itemsize, time_samples) for b in cut_bands(slab, band)]
    cycle = sizes * (count + 1)
    return max(sum(cycle[i:i + count]) for i in range(len(sizes)))


def cut_bands(slab: Box, band: Band) -> list[Box]:
    """`slab` cut on the band grid (anchored at 0, so on the cuboid grid), in z, y, x order."""
    return list(iter_blocks(slab, (band[1], band[0], SLAB_DEPTH)))


def too_small(limit: int, needed: int, parts: str, advice: str) -> FieldError:
    """The one line for a memory cap that cannot hold one band and one block: what is needed, and what to raise."""
    return FieldError("max_memory", f"{{field}} {mb(limit)} is too small for one band of 16 slices: a transfer "
                                    f"needs at least {mb(needed)} ({parts}); raise {{field}}{advice}")
