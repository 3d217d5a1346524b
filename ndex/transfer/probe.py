"""A short measurement of one job's throughput, for `ndex plan --probe`'s time estimate.

pull: GET the first few cuboid-aligned blocks of the region, as ndpull plans them, with the job's
threads: bytes per second of the server's reads.

push: read the first 16-slice slab of the first job from the source, then post its blocks through
ndpush's own engine (same blocks, zero skipping and verification). That is the data the first job
posts at the same place anyway, and the server merges identical voxels into a no-op, so the probe
changes nothing a finished plan would not. A job reads the next slab while it posts the current
one, so its rate is the lower of the two. A channel that does not exist yet (the plan's create
step has not run) is not posted to: the probe then measures the source alone and says so.

The probe is a measurement, so it is silent and returns numbers; the CLI prints `Probe.lines()`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from ndex.client import BossClient, ChannelInfo
from ndex.errors import RemoteError, ResourceNotFound
from ndex.geometry import Box, z_slabs
from ndex.progress import mb
from ndex.sources import Source
from ndex.sources.base import read_box
from ndex.transfer import pull_plan, upload
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullSpec
from ndex.transfer.push_plan import PushSpec

PROBE_BLOCKS = 8  # a pull probe GETs this many blocks ...
PROBE_BYTES = 64 * 2**20  # ... or fewer, when they would hold more than this: a probe takes seconds, not minutes
# a probe measures: a request that needs retries would time the backoff, and a server that fails
# twice in a row is an error to report at once, not to wait out (the jobs retry as usual)
PROBE_RETRIES = 2

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One timed part of a probe: what moved, how many bytes, in how many seconds."""

    what: str  # e.g. "read 16 slices (5.8 MB) from the source"
    nbytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.nbytes / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class Probe:
    """What a probe measured; `throughput` is one job's rate in bytes per second."""

    steps: tuple[Step, ...]
    unprobed: str = ""  # why a side of the transfer was not measured, if one was not

    @property
    def throughput(self) -> float:
        return min(step.rate for step in self.steps)  # the slowest side sets a job's pace

    def lines(self) -> list[str]:
        measured = ", ".join(f"{step.what} at {mb(step.rate)}/s" for step in self.steps)
        return ([f"probe: {measured} -> ~{mb(self.throughput)}/s per job"]
                + ([f"probe: {self.unprobed}"] if self.unprobed else []))


def timed(work: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of `work()`."""
    t0 = time.perf_counter()
    result = work()
    return time.perf_counter() - t0, result


# --- pull ------------------------------------------------------------------------------------------


def first_blocks(spec: PullSpec, options: TransferOptions, info: ChannelInfo, box: Box, count: int,
                 max_bytes: int) -> list[Box]:
    """The first `count` blocks of `box` in ndpull's order, fewer if they would exceed `max_bytes` (at least one)."""
    chosen: list[Box] = []
    total = 0
    for slab in z_slabs(box):
        plan = pull_plan.layout(spec, options, info, slab)
        for block in (b for band in plan.blocks_per_slab for b in band):
            size = block.nbytes(info.dtype.itemsize, plan.ntimes)
            if chosen and (len(chosen) >= count or total + size > max_bytes):
                return chosen
            chosen.append(block)
            total += size
    return chosen


def probe_pull(client: BossClient, spec: PullSpec, options: TransferOptions, info: ChannelInfo, box: Box, *,
               count: int = PROBE_BLOCKS, max_bytes: int = PROBE_BYTES) -> Probe:
    """GET the first blocks of `box` with `options.threads` threads, as one ndpull job would."""
    blocks = first_blocks(spec, options, info, box, count, max_bytes)

    def fetch(block: Box) -> int:
        return client.get_cutout(spec.ref, spec.res, block, info.dtype, time_range=spec.time_range,
                                 iso=spec.iso).nbytes

    def fetch_all() -> int:
        with ThreadPoolExecutor(options.threads, thread_name_prefix="ndex-probe") as pool:
            return sum(pool.map(fetch, blocks))

    seconds, nbytes = timed(fetch_all)
    what = f"fetched {len(blocks)} block{'s' * (len(blocks) != 1)} ({mb(nbytes)}) with {options.threads} threads"
    return Probe((Step(what, int(nbytes), seconds),))


# --- push ------------------------------------------------------------------------------------------


class HeldSlab:
    """A source serving one band already read (x/y and z in the source's coordinates), so that the posts are
    timed without reading it again."""

    def __init__(self, source: Source, band: Box, data: np.ndarray) -> None:
        self.dtype, self.shape_xy, self.origin_xy = source.dtype, band.shape[:2], band.start[:2]
        self.z_range, self.data = band.z, data
        self.missing = list(source.missing)
        self.description = source.describe()

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        return self.data[z0 - self.z_range[0]:z1 - self.z_range[0]]

    def validate(self, sample: int = 3) -> None:
        """Read already, by the source it came from."""

    def describe(self) -> str:
        return self.description

    def close(self) -> None:
        self.data = None  # type: ignore[assignment]


def read_step(source: Source, spec: PushSpec, options: TransferOptions, slab: Box) -> tuple[Step, HeldSlab]:
    """Read the first band ndpush would read of `slab` (BOSS coordinates): a band, not a whole section."""
    band = upload.layout(spec, options, slab, np.dtype(source.dtype).itemsize).slabs[0]
    band = band.shift(tuple(-v for v in spec.offsets))  # type: ignore[arg-type]  # the source's coordinates
    seconds, data = timed(lambda: read_box(source, band))
    what = f"read {data.shape[0]} slices ({mb(data.nbytes)}) from the source"
    return Step(what, data.nbytes, seconds), HeldSlab(source, band, data)


def post_step(client: BossClient, spec: PushSpec, options: TransferOptions, held: HeldSlab,
              info: ChannelInfo) -> Step | str:
    """Post the held slab with ndpush's engine; the reason instead when nothing was there to post."""
    job = spec.for_z_range(*(z + spec.offsets[2] for z in held.z_range))
    options = replace(options, manifest=None)
    plan = upload.make_plan(client, job, options, held, info)
    report = upload.push(job, options, client=client, source=held, plan=plan)
    if not report.ok:
        raise RemoteError(f"the probe's posts of the first slab failed: {report.failure_lines(1)[0]}")
    if not report.blocks_done:
        return "the server side was not probed: every block of the first slab is all zero, and ndpush posts none"
    what = f"posted {report.blocks_done} of {plan.nblocks} blocks ({mb(report.nbytes)})"
    return Step(what, report.nbytes, report.seconds)


def probe_push(client: BossClient, spec: PushSpec, options: TransferOptions, source: Source, slab: Box) -> Probe:
    """Read `slab` (BOSS coordinates) from `source`, then post it to `spec.ref` if that channel exists."""
    read, held = read_step(source, spec, options, slab)
    try:
        info = client.channel_info(spec.ref)
    except ResourceNotFound:
        return Probe((read,), f"the server side was not probed: channel {spec.ref.path} does not exist yet "
                              "(the plan's create step makes it); the estimate is the source's read rate only")
    posted = post_step(client, spec, options, held, info)
    if isinstance(posted, str):
        return Probe((read,), posted)
    return Probe((read, posted))
