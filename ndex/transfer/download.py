"""Pull a region of a channel: cuboid-aligned blocks fetched across threads, streamed into a sink.

Memory is bounded by the blocks in flight (`inflight` x block size) plus, for sinks that take whole
slabs (TIFF slices and stacks), one 16-slice slab of the requested XY extent. It does not grow with
the depth of the volume. Slabs already written by an interrupted earlier run (the sink knows) are
not fetched again.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ndex.client import BossClient, ChannelInfo, ChannelRef
from ndex.config import Remote
from ndex.errors import TransferFailed, UsageError, ends_transfer
from ndex.geometry import BOSS_CUBOID, DEFAULT_BLOCK_BYTES, Box, plan_blocks, z_slabs
from ndex.progress import NullProgress, Progress, mb
from ndex.sinks import open_sink
from ndex.sinks.base import COMPRESSIONS, OutputSpec, Sink
from ndex.sinks.factory import PLACES_BLOCKS, SINKS
from ndex.transfer.convert import MODES, convert
from ndex.transfer.flow import acquire_unless_stopped
from ndex.transfer.memory import slab_bytes, too_small
from ndex.transfer.report import RunReport

log = logging.getLogger(__name__)

OUTPUTS = tuple(SINKS)
_ALL_DELIVERED = (None, None, None)  # the submitter's last word on the arrivals queue


@dataclass(frozen=True)
class PullSpec:
    """Everything that defines a pull; the same spec re-run resumes it."""

    ref: ChannelRef
    box: Box | None = None  # voxel coordinates at `res`; None means the full extent at `res`
    res: int = 0
    iso: bool = False
    time_range: tuple[int, int] | None = None  # None: the channel's default time sample, 3D output
    output: str = "tif"
    outdir: Path = Path(".")
    stack_filename: str | None = None
    compression: str | None = None  # None: "none" for image channels, "zlib" level 1 for annotations
    compression_level: int | None = None
    force_datatype: str | None = None
    force_datatype_mode: str = "scale"
    threads: int = 8
    block_bytes: int = DEFAULT_BLOCK_BYTES
    max_memory: int | None = None  # bytes; shrinks blocks in flight (and block size) to fit
    z_digits: int | None = None  # zero padding of z in TIFF slice names (a planned pull keeps one width)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise UsageError(f"unknown output {self.output!r}: use one of {', '.join(OUTPUTS)}")
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise UsageError(f"unknown compression {self.compression!r}: use one of {', '.join(COMPRESSIONS)}")
        if self.force_datatype_mode not in MODES:
            raise UsageError(f"unknown --force_datatype_mode {self.force_datatype_mode!r}: use {', '.join(MODES)}")
        if self.threads < 1:
            raise UsageError(f"--threads {self.threads} must be at least 1")
        if self.time_range is not None and self.time_range[0] >= self.time_range[1]:
            raise UsageError(f"time range {self.time_range[0]}:{self.time_range[1]} is empty or inverted")


@dataclass(frozen=True)
class PullPlan:
    """The resolved pull: region, blocks, slabs and the memory it will need."""

    spec: PullSpec
    info: ChannelInfo
    box: Box
    slabs: tuple[Box, ...]
    blocks_per_slab: tuple[tuple[Box, ...], ...]
    block_bytes: int
    inflight: int
    out_dtype: np.dtype
    output_spec: OutputSpec = field(repr=False)
    warnings: tuple[str, ...] = ()  # e.g. a level that may miss writes made after its downsample

    @property
    def nblocks(self) -> int:
        return sum(len(b) for b in self.blocks_per_slab)

    @property
    def ntimes(self) -> int:
        return 1 if self.spec.time_range is None else self.spec.time_range[1] - self.spec.time_range[0]

    @property
    def nbytes(self) -> int:
        return self.box.nbytes(self.info.dtype.itemsize, self.ntimes)

    @property
    def slab_bytes(self) -> int:
        return buffer_bytes(self.spec, self.box, self.info.dtype.itemsize, self.ntimes)

    @property
    def memory_estimate(self) -> int:
        return self.inflight * self.block_bytes + self.slab_bytes

    def describe(self) -> list[str]:
        """The dry-run plan, one fact per line."""
        s = self.spec
        return [
            f"channel   {s.ref.collection}/{s.ref.experiment}/{s.ref.channel} ({self.info.channel.datatype}, "
            f"{self.info.channel.type}) at resolution {s.res}",
            f"region    {self.box}" + (f", time {s.time_range[0]}:{s.time_range[1]}" if s.time_range else ""),
            f"blocks    {self.nblocks} cuboid-aligned requests in {len(self.slabs)} slabs of 16 slices",
            f"bytes     {mb(self.nbytes)} uncompressed",
            f"memory    ~{self.memory_estimate / 1e6:,.0f} MB peak ({self.inflight} blocks of "
            f"<= {mb(self.block_bytes)} in flight + {mb(self.slab_bytes)} slab buffer)",
            f"output    {s.output} in {s.outdir}" + (f" ({self.output_spec.compression} compression)"
                                                     if s.output not in PLACES_BLOCKS else ""),
        ]


def resolve_box(spec: PullSpec, info: ChannelInfo, built_before: bool = False) -> Box:
    """The requested region at `spec.res`, checked against the frame at that level (`built_before`: see
    `ChannelInfo.check_res`)."""
    info.check_res(spec.res, built_before=built_before)
    box = spec.box if spec.box is not None else info.extent_at(spec.res, spec.iso)
    info.check_box(box, spec.res, spec.iso)
    if spec.time_range is not None:
        info.check_time(spec.time_range)
    return box


def resolve_region(client: BossClient, spec: PullSpec, info: ChannelInfo) -> tuple[Box, str | None]:
    """`resolve_box`, and a warning when the level may be stale. A level whose DOWNSAMPLED status a later
    write reset may still hold an earlier pyramid: the channel's metadata is asked only then."""
    built_before = (spec.res in info.data_levels and not info.is_built(spec.res)
                    and client.pyramid_recorded(spec.ref))
    return resolve_box(spec, info, built_before), info.stale_warning(spec.res)


def buffer_bytes(spec: PullSpec, box: Box, itemsize: int, ntimes: int) -> int:
    """Bytes of the one slab buffer a slab-writing sink needs (0 for sinks that place blocks)."""
    return 0 if spec.output in PLACES_BLOCKS else slab_bytes(box, itemsize, ntimes)


def fit_memory(spec: PullSpec, slab_bytes: int, itemsize: int, *, flag: str = "--max_memory",
               who: str = "this pull") -> tuple[int, int]:
    """(block_bytes, inflight) so that blocks in flight plus the slab buffer fit `max_memory`.

    A cap below the slab buffer plus one cuboid is refused, naming `flag` and what `who` needs.
    """
    inflight = spec.threads + 2  # every thread busy, plus a couple of finished blocks waiting to be placed
    block_bytes = spec.block_bytes
    if spec.max_memory is None:
        return block_bytes, inflight
    budget = spec.max_memory - slab_bytes
    cuboid_bytes = BOSS_CUBOID[0] * BOSS_CUBOID[1] * BOSS_CUBOID[2] * itemsize
    if budget < cuboid_bytes:
        raise too_small(flag, spec.max_memory, who, slab_bytes + cuboid_bytes,
                        f"a {mb(slab_bytes)} slab buffer plus one {mb(cuboid_bytes)} block",
                        ", pull a narrower x/y region, or use --output zarr (no slab buffer)")
    inflight = max(1, min(inflight, budget // cuboid_bytes))
    return max(cuboid_bytes, min(block_bytes, budget // inflight)), int(inflight)


def default_compression(info: ChannelInfo, spec: PullSpec) -> tuple[str, int | None]:
    if spec.compression is not None:
        return spec.compression, spec.compression_level
    if spec.output == "zarr":  # chunks are compressed anyway; zstd-1 is fast and well supported by readers
        return "zstd", 1 if spec.compression_level is None else spec.compression_level
    if info.channel.type == "annotation" or info.dtype.itemsize == 8:
        return "zlib", 1 if spec.compression_level is None else spec.compression_level
    return "none", spec.compression_level


def make_plan(client: BossClient, spec: PullSpec, info: ChannelInfo | None = None, **memory_words: str) -> PullPlan:
    """The resolved pull; `memory_words` (flag=, who=) name the memory cap in `fit_memory`'s error."""
    info = info or client.channel_info(spec.ref)
    box, warning = resolve_region(client, spec, info)
    times = None if spec.time_range is None else tuple(range(*spec.time_range))
    ntimes = 1 if times is None else len(times)
    itemsize = info.dtype.itemsize
    block_bytes, inflight = fit_memory(spec, buffer_bytes(spec, box, itemsize, ntimes), itemsize, **memory_words)
    slabs = tuple(z_slabs(box))
    blocks = tuple(tuple(plan_blocks(slab, itemsize, block_bytes, time_samples=ntimes, depth=BOSS_CUBOID[2]))
                   for slab in slabs)
    out_dtype = np.dtype(spec.force_datatype) if spec.force_datatype else info.dtype
    compression, level = default_compression(info, spec)
    output_spec = OutputSpec(
        box=box, dtype=out_dtype, prefix=spec.ref.prefix, outdir=Path(spec.outdir), time_points=times,
        voxel_size=info.voxel_size_at(spec.res, spec.iso), voxel_unit=info.frame.voxel_unit, resolution=spec.res,
        compression=compression, compression_level=level, stack_filename=spec.stack_filename,
        z_digits=spec.z_digits)
    return PullPlan(spec, info, box, slabs, blocks, block_bytes, inflight, out_dtype, output_spec,
                    (warning,) if warning else ())


class _Fetcher:
    """Runs block requests on a thread pool with at most `inflight` blocks held in memory."""

    def __init__(self, client: BossClient, plan: PullPlan, report: RunReport, progress: Progress) -> None:
        self.client, self.plan, self.report, self.progress = client, plan, report, progress
        self.slots = threading.Semaphore(plan.inflight)
        self.stop = threading.Event()
        self.stopped_by: BaseException | None = None  # the error that ended the run early, if any

    def fetch(self, block: Box) -> np.ndarray:
        s = self.plan.spec
        data = self.client.get_cutout(s.ref, s.res, block, self.plan.info.dtype, time_range=s.time_range, iso=s.iso)
        if s.time_range is None:
            data = data[np.newaxis]
        return convert(data, self.plan.out_dtype, s.force_datatype_mode)

    def run(self, work: list[tuple[int, Box]], deliver: Callable[[int, Box, Any], None]) -> None:
        """Fetch every (slab index, block) in order; `deliver(slab, block, array | exception)`.

        Submission is in slab order, so the blocks of the earliest unfinished slab always hold
        slots before any later block does: the consumer can always make progress.
        """
        with ThreadPoolExecutor(self.plan.spec.threads, thread_name_prefix="ndpull") as pool:
            try:
                for index, block in work:
                    if not acquire_unless_stopped(self.slots, self.stop):
                        return
                    pool.submit(self._one, index, block, deliver)
            except BaseException:  # Ctrl-C while submitting: queued blocks must not start
                self.stop.set()
                raise

    def _one(self, index: int, block: Box, deliver: Callable[[int, Box, Any], None]) -> None:
        if self.stop.is_set():
            deliver(index, block, None)
            return
        try:
            deliver(index, block, self.fetch(block))
        except Exception as exc:  # every failure is reported per block, none is swallowed
            if ends_transfer(exc):  # e.g. the server went away: stop now, a re-run resumes
                self.stopped_by = self.stopped_by or exc
                self.stop.set()
            deliver(index, block, exc)


def pending_work(plan: PullPlan, sink: Sink, report: RunReport) -> list[tuple[int, Box]]:
    done = sink.completed(list(plan.slabs))
    work = []
    for index, (slab, blocks) in enumerate(zip(plan.slabs, plan.blocks_per_slab)):
        if slab in done:
            report.blocks_skipped += len(blocks)
            continue
        work.extend((index, block) for block in blocks)
    return work


def _run_direct(fetcher: _Fetcher, plan: PullPlan, sink: Sink, work: list[tuple[int, Box]]) -> None:
    """Blocks go straight into the sink from the worker threads."""
    remaining = {i: len(plan.blocks_per_slab[i]) for i, _ in work}
    failed: set[int] = set()
    lock = threading.Lock()

    def deliver(index: int, block: Box, result: Any) -> None:
        try:
            if isinstance(result, np.ndarray):
                for t, arr in zip(plan.output_spec.times, result):
                    sink.write_block(block, arr, t)
                fetcher.report.block_done(result.nbytes)
                fetcher.progress.advance(1, result.nbytes)
            elif isinstance(result, BaseException):
                fetcher.report.block_failed(block, result)
            with lock:
                remaining[index] -= 1
                failed.update([index] if not isinstance(result, np.ndarray) else [])
                finished = remaining[index] == 0 and index not in failed
            if finished:
                sink.slab_done(plan.slabs[index])
        except BaseException as exc:  # a sink failure (disk full) stops the whole run
            fetcher.report.block_failed(block, exc)
            fetcher.stop.set()
        finally:
            fetcher.slots.release()

    fetcher.run(work, deliver)


def _run_slabs(fetcher: _Fetcher, plan: PullPlan, sink: Sink, work: list[tuple[int, Box]]) -> None:
    """Blocks are assembled into one slab buffer; complete slabs are written in increasing z."""
    arrivals: queue.Queue = queue.Queue()

    def submit_all() -> None:
        try:
            fetcher.run(work, lambda *item: arrivals.put(item))
        except Exception as exc:  # reported, not lost in a thread's traceback
            fetcher.report.block_failed("submitting blocks", exc)
        finally:  # every task has delivered by now: a consumer still waiting must not wait forever
            arrivals.put(_ALL_DELIVERED)

    submitter = threading.Thread(target=submit_all, name="ndpull-submit", daemon=True)
    submitter.start()
    expected: dict[int, int] = {}
    for index, _ in work:
        expected[index] = expected.get(index, 0) + 1
    order = sorted(expected)
    waiting: dict[int, list[tuple[Box, Any]]] = {i: [] for i in order}
    buffer: np.ndarray | None = None
    try:
        for index in order:
            slab = plan.slabs[index]
            shape = (plan.ntimes, *slab.shape_zyx)
            buffer = np.empty(shape, plan.out_dtype) if buffer is None or buffer.shape != shape else buffer
            ok = _fill_slab(fetcher, slab, buffer, expected[index], waiting, index, arrivals)
            if ok:  # a complete slab is written even when the run is stopping: a re-run skips it
                for t, arr in zip(plan.output_spec.times, buffer):
                    sink.write_slab(slab, arr, t)
                sink.slab_done(slab)
    finally:
        fetcher.stop.set()
        submitter.join()


def _fill_slab(fetcher: _Fetcher, slab: Box, buffer: np.ndarray, count: int,
               waiting: dict[int, list[tuple[Box, Any]]], index: int, arrivals: queue.Queue) -> bool:
    """Copy `count` blocks of slab `index` into `buffer`; later slabs' blocks wait (holding their slot)."""
    ok, received = True, 0
    for block, result in _arrivals_for(index, count, waiting, arrivals):
        received += 1
        if isinstance(result, np.ndarray):
            buffer[(slice(None), *block.slices_in(slab))] = result
            fetcher.report.block_done(result.nbytes)
            fetcher.progress.advance(1, result.nbytes)
        else:
            ok = False
            if isinstance(result, BaseException):
                fetcher.report.block_failed(block, result)
        fetcher.slots.release()
    return ok and received == count  # a block that never came leaves the slab unwritten


def _arrivals_for(index: int, count: int, waiting: dict[int, list[tuple[Box, Any]]],
                  arrivals: queue.Queue) -> Iterator[tuple[Box, Any]]:
    """The `count` blocks of slab `index`: those already waiting first, then from the queue."""
    got = 0
    while waiting[index]:
        got += 1
        yield waiting[index].pop()
    while got < count:
        item = arrivals.get()
        if item is _ALL_DELIVERED:
            arrivals.put(item)  # for the next slab's wait too; its missing blocks leave the slab unwritten
            return
        slab_index, block, result = item
        if slab_index == index:
            got += 1
            yield block, result
        else:
            waiting[slab_index].append((block, result))


def pull(spec: PullSpec, *, client: BossClient | None = None, remote: Remote | None = None,
         progress: Progress | None = None, sink: Sink | None = None, plan: PullPlan | None = None) -> RunReport:
    """Download `spec`'s region into its output; returns the report (failures listed, never raised).

    Pass a `client` (or a `remote` to build one). A re-run of the same spec resumes.
    """
    progress = progress or NullProgress()
    with given_or_own(client, remote, "pull", threads=spec.threads, on_retry=progress.retry) as boss:
        plan = plan or make_plan(boss, spec)
        sink = sink or open_sink(spec.output, plan.output_spec)
        return _execute(boss, plan, sink, progress)


@contextmanager
def given_or_own(client: BossClient | None, remote: Remote | None, caller: str,
                 **options: Any) -> Iterator[BossClient]:
    """`client` itself, or a client of `remote` made for this call and closed after it."""
    if client is not None:
        yield client
        return
    if remote is None:
        raise UsageError(f"{caller}() needs a BossClient or a Remote (ndex.config.discover() finds one)")
    with BossClient(remote, **options) as own:
        yield own


def _execute(client: BossClient, plan: PullPlan, sink: Sink, progress: Progress) -> RunReport:
    report = RunReport("pull", blocks_total=plan.nblocks)
    work = pending_work(plan, sink, report)
    total_bytes = plan.box.nbytes(plan.out_dtype.itemsize, plan.ntimes)
    todo_bytes = sum(b.nbytes(plan.out_dtype.itemsize, plan.ntimes) for _, b in work)
    progress.start(plan.nblocks, total_bytes, done_blocks=report.blocks_skipped, done_bytes=total_bytes - todo_bytes)
    fetcher = _Fetcher(client, plan, report, progress)
    runner = _run_direct if sink.places_blocks else _run_slabs
    with report.measure(client, progress):
        try:
            runner(fetcher, plan, sink, work)
        except BaseException:
            fetcher.stop.set()
            sink.abort()
            raise
    if fetcher.stopped_by is not None:
        report.end(fetcher.stopped_by)
        report.notes.append(f"stopped early ({' '.join(str(fetcher.stopped_by).split())}); {report.unsent} blocks "
                            "were not fetched: re-run the same command to continue")
    if report.ok:
        report.files = list(sink.finish())
    else:
        sink.abort()
    return report


def pull_array(ref: ChannelRef, box: Box | None = None, *, res: int = 0, client: BossClient | None = None,
               remote: Remote | None = None, **options: Any) -> np.ndarray:
    """A region as a numpy array: (z, y, x), or (t, z, y, x) with `time_range=`. Raises on any failed block."""
    spec = PullSpec(ref=ref, box=box, res=res, output="numpy", **options)
    with given_or_own(client, remote, "pull_array", threads=spec.threads) as boss:
        plan = make_plan(boss, spec)
        sink = open_sink("numpy", plan.output_spec)
        report = _execute(boss, plan, sink, NullProgress())
    if not report.ok:
        raise TransferFailed("; ".join(report.failure_lines(3)), report.failures)
    return sink.array
