"""How a transfer runs, apart from what it moves: threads, block size, memory, retries, verification.

A pull or a push is a spec (what: channel, source or output, region, offsets, resolution) plus a
`TransferOptions` (how). Both are plain data that round-trip through JSON, so `ndex plan` writes
them into job files and `ndex run` hands them to the engine unchanged. Options never change what
is stored or written: a job re-run with other options resumes the same transfer.

Memory. Both engines stream a volume slab by slab on the server's cuboid grid, so besides their
blocks in flight they hold at most a few 16-slice slabs of the XY extent, whatever the depth of the
region; `ndex plan` budgets its jobs with the same figure. A cap below one slab plus one block cannot
be met by shrinking what is in flight: `too_small` is the error both engines raise then, naming the
field `max_memory` (a CLI names its flag instead: ndpull's --max_memory, ndex plan's --memory_per_worker).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ndex.errors import FieldError, UsageError
from ndex.geometry import BOSS_CUBOID, Box
from ndex.progress import mb

VERIFY_MODES = ("sample", "all", "none")
SLAB_DEPTH = BOSS_CUBOID[2]  # slices of one slab: the server's cuboid depth


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


def too_small(limit: int, needed: int, parts: str, advice: str) -> FieldError:
    """The one line for a memory cap that cannot hold one slab and one block: what is needed, and what to raise."""
    return FieldError("max_memory", f"{{field}} {mb(limit)} is too small for one 16-slice slab: a transfer "
                                    f"needs at least {mb(needed)} ({parts}); raise {{field}}{advice}")
