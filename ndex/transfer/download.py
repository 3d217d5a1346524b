"""Pull a region of a channel: cuboid-aligned blocks fetched across threads, written into a sink.

What a pull is, and how it is cut, is `pull_plan.py`; the concurrency both engines share (blocks in
flight adapted to the server's 429/503) is `pipeline.py`. There is one runner: every block is written
at its box as it arrives; a sink without partial writes (TIFF) is wrapped in `SlabAssembly`, which
builds its bands (z-slabs cut along y, or x: pull_plan.py). Slabs and bands already written by an
interrupted earlier run (the sink knows) are not fetched again.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ndex.client import BossClient, ChannelRef
from ndex.config import Remote
from ndex.errors import TransferFailed, UsageError
from ndex.geometry import Box
from ndex.progress import NullProgress, Progress
from ndex.sinks import SlabAssembly, open_sink
from ndex.sinks.assembly import band_key
from ndex.sinks.base import Sink
from ndex.sinks.factory import SINKS
from ndex.transfer.convert import convert
from ndex.transfer.options import TransferOptions
from ndex.transfer.pipeline import Dispatcher, throttled_call
from ndex.transfer.pull_plan import PullPlan, PullSpec, layout, make_plan, resolve_box, resolve_region
from ndex.transfer.report import RunReport

__all__ = ["OUTPUTS", "PullPlan", "PullSpec", "TransferOptions", "layout", "make_plan", "pull", "pull_array",
           "resolve_box", "resolve_region"]

log = logging.getLogger(__name__)

OUTPUTS = tuple(SINKS)


class _Fetcher:
    """Fetches blocks through the shared dispatcher, at most `limit` blocks held in memory."""

    def __init__(self, client: BossClient, plan: PullPlan, report: RunReport, progress: Progress) -> None:
        self.client, self.plan, self.report, self.progress = client, plan, report, progress
        self.blocks = Dispatcher(plan.inflight, plan.options.threads, "ndpull", report.end)
        self.limit = self.blocks.limit
        self.stop = self.blocks.stop

    def fetch(self, block: Box) -> np.ndarray:
        s = self.plan.spec
        data = throttled_call(self.limit, lambda: self.client.get_cutout(
            s.ref, s.res, block, self.plan.info.dtype, time_range=s.time_range, iso=s.iso))
        if s.time_range is None:
            data = data[np.newaxis]
        return convert(data, self.plan.out_dtype, s.force_datatype_mode)

    def run(self, work: list[tuple[int, Box]], deliver: Callable[[int, Box, Any], None]) -> None:
        """Fetch every (slab index, block) in order; `deliver(slab, block, array | exception | None)`.

        Submission is in slab order, so the blocks of the earliest unfinished slab always hold
        slots before any later block does: a sink that writes slabs in order can always progress.
        """
        def one(item: tuple[int, Box]) -> None:
            deliver(*item, None if self.stop.is_set() else self.fetch(item[1]))

        with self.blocks.running():
            self.blocks.submit_all(work, one, lambda item, exc: deliver(*item, exc))


def pending_work(plan: PullPlan, sink: Sink, report: RunReport) -> list[tuple[int, Box]]:
    done = sink.completed(list(plan.slabs))
    work: list[tuple[int, Box]] = []
    for index, (slab, blocks) in enumerate(zip(plan.slabs, plan.blocks_per_slab)):
        if slab in done:
            report.blocks_skipped += len(blocks)
            continue
        work.extend((index, block) for block in blocks)
    return work


def _run(fetcher: _Fetcher, plan: PullPlan, sink: Sink, work: list[tuple[int, Box]]) -> None:
    """Each block is written as it arrives; a slab whose blocks all arrived is done, else failed."""
    remaining = {i: len(plan.blocks_per_slab[i]) for i, _ in work}
    failed: set[int] = set()
    lock = threading.Lock()

    def deliver(index: int, block: Box, result: Any) -> None:
        try:
            if isinstance(result, np.ndarray):
                for t, arr in zip(plan.output_spec.times, result):
                    sink.write(block, arr, t)
                fetcher.report.block_done(result.nbytes)
                fetcher.progress.advance(1, result.nbytes)
            elif isinstance(result, BaseException):
                fetcher.report.block_failed(block, result)
            with lock:
                remaining[index] -= 1
                failed.update([index] if not isinstance(result, np.ndarray) else [])
                last, ok = remaining[index] == 0, index not in failed
            if last:  # a complete slab is written even when the run is stopping: a re-run skips it
                (sink.slab_done if ok else sink.slab_failed)(plan.slabs[index])
        except BaseException as exc:  # a sink failure (disk full) stops the whole run
            fetcher.report.block_failed(block, exc)
            fetcher.stop.set()
            sink.abort()  # wakes writers waiting for a slab that will not come

    try:
        fetcher.run(work, deliver)
    except Exception as exc:  # reported, and the blocks never submitted leave their slabs unwritten
        fetcher.report.block_failed("submitting blocks", exc)
        fetcher.stop.set()


def block_sink(plan: PullPlan, sink: Sink, work: list[tuple[int, Box]]) -> Sink:
    """`sink` itself if it takes any box, else wrapped to assemble the slabs of `work` in order."""
    if sink.supports_partial_writes:
        return sink
    return SlabAssembly(sink, plan.output_spec, sorted({plan.slabs[i] for i, _ in work}, key=band_key))


def pull(spec: PullSpec, options: TransferOptions | None = None, *, client: BossClient | None = None,
         remote: Remote | None = None, progress: Progress | None = None, sink: Sink | None = None,
         plan: PullPlan | None = None) -> RunReport:
    """Download `spec`'s region into its output, run as `options` say; returns the report (failures
    listed, never raised). Pass a `client` (or a `remote` to build one). A re-run of the same spec resumes.
    """
    if spec.pyramid and sink is None:  # levels into one pyramid (pyramid.py)
        from ndex.transfer.pyramid import pull_levels
        return pull_levels(spec, options, client=client, remote=remote, progress=progress)
    options = options or TransferOptions()
    progress = progress or NullProgress()
    with given_or_own(client, remote, "pull", options, on_retry=progress.retry) as boss:
        plan = plan or make_plan(boss, spec, options)
        sink = sink or open_sink(spec.output, plan.output_spec)  # type: ignore[arg-type]  # set by PullSpec
        return _execute(boss, plan, sink, progress)


@contextmanager
def given_or_own(client: BossClient | None, remote: Remote | None, caller: str, options: TransferOptions,
                 **extra: Any) -> Iterator[BossClient]:
    """`client` itself, or a client of `remote` made for this call (with the options' threads and
    retries) and closed after it."""
    if client is not None:
        yield client
        return
    if remote is None:
        raise UsageError(f"{caller}() needs a BossClient or a Remote (ndex.config.discover() finds one)")
    retries: dict[str, Any] = {} if options.retries is None else {"retries": options.retries}
    with BossClient(remote, threads=options.threads, **retries, **extra) as own:
        yield own


def _execute(client: BossClient, plan: PullPlan, sink: Sink, progress: Progress) -> RunReport:
    report = RunReport("pull", blocks_total=plan.nblocks)
    work = pending_work(plan, sink, report)
    total_bytes = plan.box.nbytes(plan.out_dtype.itemsize, plan.ntimes)
    todo_bytes = sum(b.nbytes(plan.out_dtype.itemsize, plan.ntimes) for _, b in work)
    progress.start(plan.nblocks, total_bytes, done_blocks=report.blocks_skipped, done_bytes=total_bytes - todo_bytes)
    fetcher = _Fetcher(client, plan, report, progress)
    writer = block_sink(plan, sink, work)
    # the final assembly (writer.finish) is part of the run's time, and so of its MB/s
    with report.measure(client, progress), client.retry_listener(fetcher.limit.retried):
        try:
            _run(fetcher, plan, writer, work)
        except BaseException:
            fetcher.stop.set()
            writer.abort()
            raise
        if report.ok:
            report.files = list(writer.finish())
    report.throttled = fetcher.limit.throttles
    if report.ended_by is not None:
        report.notes.append(f"stopped early ({' '.join(str(report.ended_by).split())}); {report.unsent} blocks "
                            "were not fetched: re-run the same command to continue")
    if not report.ok:
        writer.abort()
    return report


def pull_array(ref: ChannelRef, box: Box | None = None, *, res: int = 0, client: BossClient | None = None,
               remote: Remote | None = None, options: TransferOptions | None = None, **spec: Any) -> np.ndarray:
    """A region as a numpy array: (z, y, x), or (t, z, y, x) with `time_range=`. Raises on any failed block."""
    options = options or TransferOptions()
    pull_spec = PullSpec(ref=ref, box=box, res=res, output="numpy", **spec)
    with given_or_own(client, remote, "pull_array", options) as boss:
        plan = make_plan(boss, pull_spec, options)
        sink = open_sink("numpy", plan.output_spec)
        report = _execute(boss, plan, sink, NullProgress())
    if not report.ok:
        raise TransferFailed("; ".join(report.failure_lines(3)), report.failures)
    return sink.array  # type: ignore[attr-defined]
