"""Is what the server holds what the source has? Block hashes, comparisons and the `ndex verify` check.

BOSS merges a posted block into what is stored: a non-zero voxel replaces the stored value, a zero
voxel leaves it as it was (boss-api.md 3.6). So after a plain push, a voxel that is zero in the
source may legitimately be non-zero on the server (data from an earlier ingest). The comparison
therefore has two modes:

* merge (default): every voxel that is non-zero in the source must be equal on the server; stored
  non-zero voxels where the source is zero are counted as `stale`, not as mismatches;
* strict (after `--post_zero_blocks`, which clears each block before posting it, and `ndex verify
  --exact`): every voxel must be equal.

The manifest keeps a checksum of each block's C-ordered bytes ("crc32:" and 8 hex digits): equal
checksums say the content is unchanged (a random change slips through once in 2**32), without
comparing voxel by voxel. CRC-32 rather than a cryptographic hash because it is computed for every
block posted: zlib's runs at ~2.7 GB/s here against blake2b's ~0.7 GB/s, which cost a push about a
tenth of a core at 250 MB/s; nothing here needs protection against deliberate collisions.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ndex.errors import BadInput
from ndex.geometry import Box
from ndex.progress import NullProgress, Progress, mb
from ndex.sources.base import read_box
from ndex.transfer.report import RunReport

log = logging.getLogger(__name__)


def digest(data: np.ndarray) -> str:
    """'crc32:' + hex CRC-32 of an array's C-ordered bytes (dtype and shape are the block's, so not hashed)."""
    return f"crc32:{zlib.crc32(np.ascontiguousarray(data).data):08x}"  # zlib releases the GIL on big buffers


@dataclass(frozen=True)
class Comparison:
    """How a block read back from the server compares with the source."""

    block: Box
    mismatched: int  # voxels that differ and count as wrong under the mode
    stale: int  # voxels zero in the source but non-zero on the server (allowed by the merge rule)

    @property
    def ok(self) -> bool:
        return self.mismatched == 0

    @property
    def exact(self) -> bool:
        return self.mismatched == 0 and self.stale == 0

    def describe(self) -> str:
        if self.exact:
            return f"block {self.block}: identical"
        parts = []
        if self.mismatched:
            parts.append(f"{self.mismatched} voxels differ from the source")
        if self.stale:
            parts.append(f"{self.stale} voxels are non-zero on the server where the source is zero "
                         "(older data kept by the merge rule; --post_zero_blocks replaces it)")
        return f"block {self.block}: " + "; ".join(parts)


def compare(block: Box, source: np.ndarray, stored: np.ndarray, *, strict: bool = False) -> Comparison:
    """Compare the source's voxels of `block` with the server's (same shape and dtype)."""
    if source.shape != stored.shape:
        raise ValueError(f"cannot compare {source.shape} source voxels with {stored.shape} stored voxels")
    if np.array_equal(source, stored):
        return Comparison(block, 0, 0)
    differ = source != stored
    nonzero = source != 0
    wrong = int(np.count_nonzero(differ & nonzero))
    stale = int(np.count_nonzero(differ & ~nonzero))
    return Comparison(block, wrong + (stale if strict else 0), 0 if strict else stale)


@dataclass
class VerifyReport(RunReport):
    """A RunReport of `ndex verify`: blocks compared, how many match, voxels that differ."""

    blocks_matched: int = 0
    voxels_mismatched: int = 0
    voxels_stale: int = 0
    slices_read: int = 0

    def summary(self) -> str:
        return (f"verify: {self.slices_read} slices read, {self.blocks_done} blocks compared "
                f"({self.blocks_skipped} all-zero in the source, not read back), {self.blocks_matched} match, "
                f"{len(self.failures)} differ or failed; {self.voxels_mismatched} voxels differ, "
                f"{self.voxels_stale} stale non-zero voxels; {mb(self.nbytes)} in {self.seconds:.1f} s")


def verify_volume(client: Any, plan: Any, source: Any, *, strict: bool = False, skip_zero: bool = True,
                  progress: Progress | None = None) -> VerifyReport:
    """Read every block of `plan` (an `upload.PushPlan`) from the server and compare it with `source`.

    Band by band (the push plan's), so memory is one band plus one block. All-zero source blocks are not read back
    unless `skip_zero` is False (then the server must hold zeros there too, whatever `strict` says).
    """
    progress = progress or NullProgress()
    report = VerifyReport("verify", blocks_total=plan.nblocks)
    progress.start(plan.nblocks, plan.nbytes)
    with report.measure(client, progress):
        for slab, blocks in zip(plan.slabs, plan.blocks_per_slab):
            _verify_slab(client, plan, source, slab, blocks, report, progress, strict, skip_zero)
    return report


def _verify_slab(client: Any, plan: Any, source: Any, slab: Box, blocks: tuple[Box, ...], report: VerifyReport,
                 progress: Progress, strict: bool, skip_zero: bool) -> None:
    try:  # `slab` is a band of the push plan: read as the push read it
        data = read_box(source, slab.shift(tuple(-v for v in plan.spec.offsets)))  # type: ignore[arg-type]
    except BadInput:
        raise  # a missing or bad file: the flags or the file need fixing, and the comparison would mean nothing
    except Exception as exc:  # an unreadable slab fails its blocks, the others are still compared
        for block in blocks:
            report.block_failed(block, exc)
        return
    report.slices_read += data.shape[0]
    for block in blocks:
        local = data[block.slices_in(slab)]
        if skip_zero and not local.any():
            report.blocks_skipped += 1
            progress.advance(1, 0)
            continue
        try:
            stored = _read_back(client, plan, block)
        except Exception as exc:
            report.block_failed(block, exc)
            continue
        result = compare(block, local, stored, strict=strict or not skip_zero)
        report.block_done(local.nbytes)
        report.voxels_mismatched += result.mismatched
        report.voxels_stale += result.stale
        if result.ok:
            report.blocks_matched += 1
        else:
            report.failures[block] = result.describe()
        progress.advance(1, local.nbytes)


def _read_back(client: Any, plan: Any, block: Box) -> np.ndarray:
    """The server's voxels of `block`, from the time sample the push wrote (a 4D source's time point)."""
    when = plan.spec.time_range
    stored = client.get_cutout(plan.spec.ref, plan.spec.res, block, plan.dtype, time_range=when)
    return stored if when is None else stored[0]
