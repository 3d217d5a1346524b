"""Push image slices into a channel: pipelined slabs, cuboid-aligned blocks, resumable and verified.

What a push is, and how it is cut into slabs and blocks, is `push_plan.py`; the concurrency both
engines share is `pipeline.py`.

Pipeline. A reader thread reads the next 16-slice slab while worker threads post the blocks of the
current one. Each worker copies its block out of the slab into a pooled buffer; the slab is freed
(and its slot given to the next read) as soon as its last block is copied.

Edges. A block at the edge of the data covers only part of a cuboid; only that box is posted, and
the server merges it into the cuboid, so no read-modify-write happens on the client.

Zeros. All-zero blocks are not posted (the merge rule makes posting zeros a no-op). With
`post_zero_blocks` every block *replaces* what is stored: it is cleared with to_black first and
then its non-zero voxels are posted -- that is how a re-ingest clears old data.

Resume and verification: see `manifest.py` and `verify.py`. Throttling (429/503): see `pipeline.py`.
"""
from __future__ import annotations

import json
import logging
import queue
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ndex.errors import BadInput, QuotaExceeded
from ndex.geometry import Box
from ndex.progress import NullProgress, Progress, mb
from ndex.sources import open_source
from ndex.sources.base import read_box
from ndex.transfer.manifest import CONFIRMED, EMPTY, FAILED, POSTED, VERIFIED, Manifest
from ndex.transfer.options import VERIFY_MODES, TransferOptions
from ndex.transfer.pipeline import BlockBuffers, Dispatcher, acquire_unless_stopped, throttled_call
from ndex.transfer.push_plan import (
    COPIES_PER_BLOCK,
    DEFAULT_PUSH_BLOCK_BYTES,
    PushPlan,
    PushSpec,
    layout,
    make_plan,
    push_block_bytes,
    source_box,
)
from ndex.transfer.report import RunReport
from ndex.transfer.verify import compare, digest

__all__ = ["COPIES_PER_BLOCK", "DEFAULT_PUSH_BLOCK_BYTES", "VERIFY_MODES", "PushPlan", "PushReport", "PushSpec",
           "TransferOptions", "layout", "make_plan", "push", "source_box"]

log = logging.getLogger(__name__)

NOTIFY_FAILURES = 3  # failures announced as they happen; the final report lists the rest

@dataclass
class PushReport(RunReport):
    """The run report of a push: slices read, blocks posted / empty / resumed / failed, verification."""

    slices_read: int = 0
    blocks_empty: int = 0  # all-zero, not posted
    blocks_resumed: int = 0  # confirmed by an earlier run
    verified: int = 0
    verify_mismatches: int = 0
    reposted: int = 0
    missing_slices: list[int] = field(default_factory=list)

    def add(self, counter: str, n: int = 1) -> None:
        """Thread-safe `counter += n`."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def summary(self) -> str:
        verify = (f"verified {self.verified} blocks, {self.verify_mismatches} mismatches"
                  f"{f' ({self.reposted} re-posted)' if self.reposted else ''}")
        return (f"push: {self.slices_read} slices read, {self.blocks_done} blocks posted, "
                f"{self.blocks_empty} empty skipped, {self.blocks_resumed} done earlier, "
                f"{len(self.failures)} failed of {self.blocks_total}; {mb(self.nbytes)} in "
                f"{self.seconds:.1f} s = {mb(self.throughput)}/s; {verify}; {self.requests} requests, "
                f"{self.retries} retries, {self.throttled} throttled")


class _Slab:
    """One slab read into memory, released (its slot freed) once every block is copied out or dropped."""

    def __init__(self, index: int, box: Box, data: np.ndarray, pending: int, release: Any) -> None:
        self.index, self.box, self.data = index, box, data
        self._pending, self._release = pending, release
        self._lock = threading.Lock()

    def block_finished(self, count: int = 1) -> None:
        with self._lock:
            self._pending -= count
            last = self._pending <= 0 and self.data is not None
        if last:
            self.data = None  # type: ignore[assignment]
            self._release()


class _Pusher:
    """Runs the slab reader and the block workers of one push."""

    def __init__(self, client: Any, plan: PushPlan, source: Any, manifest: Manifest, report: PushReport,
                 progress: Progress, rng: random.Random, notifier: Any = None) -> None:
        self.client, self.plan, self.source, self.manifest = client, plan, source, manifest
        self.report, self.progress, self.rng, self.notifier = report, progress, rng, notifier
        self.spec, self.options = plan.spec, plan.options
        self.blocks = Dispatcher(plan.inflight, self.options.threads, "ndpush", report.end)
        self.limit = self.blocks.limit
        self.stop = self.blocks.stop
        self.buffers = BlockBuffers(plan.inflight, plan.block_bytes)
        self.slab_slots = threading.Semaphore(plan.slabs_in_flight)

    # --- the reader -----------------------------------------------------------------------------------

    def read_slabs(self, work: list[tuple[int, list[Box]]], out: queue.Queue) -> None:
        """Read each slab with work into `out` (a _Slab or the exception), bounded by the slab slots."""
        try:
            for index, blocks in work:
                if not acquire_unless_stopped(self.slab_slots, self.stop):
                    return
                out.put((index, self._read(index, len(blocks))))
        finally:
            out.put(None)

    def _read(self, index: int, nblocks: int) -> _Slab | Exception:
        # only the _Slab refers to the array: its slot and memory go together, never held by this
        # thread while it waits for the next slot (which let a third slab live)
        box = self.plan.slabs[index]
        try:
            data = read_box(self.source, box.shift(tuple(-v for v in self.spec.offsets)))  # type: ignore[arg-type]
        except Exception as exc:  # reported per block of the slab by the dispatcher
            return exc
        self.report.add("slices_read", data.shape[0])
        return _Slab(index, box, data, nblocks, self.slab_slots.release)

    # --- the dispatcher -------------------------------------------------------------------------------

    def run(self, work: list[tuple[int, list[Box]]]) -> None:
        slabs: queue.Queue = queue.Queue()
        reader = threading.Thread(target=self.read_slabs, args=(work, slabs), name="ndpush-read", daemon=True)
        todo = dict(work)
        reader.start()
        try:
            with self.blocks.running():
                while (item := slabs.get()) is not None:
                    index, slab = item
                    self._take(index, slab, todo)
        finally:
            self.stop.set()
            reader.join()

    def _take(self, index: int, slab: _Slab | Exception, todo: dict[int, list[Box]]) -> None:
        if self.stop.is_set():
            if isinstance(slab, Exception):
                self.slab_slots.release()
            else:
                slab.block_finished(len(todo[index]))
        elif isinstance(slab, Exception):
            self._slab_failed(todo[index], slab)
        else:
            self._dispatch(slab, todo[index])

    def _dispatch(self, slab: _Slab, blocks: list[Box]) -> None:
        checked = self._sample(blocks)
        sent = self.blocks.submit_all(blocks, lambda block: self._one(slab, block, block in checked), self._fail)
        if sent < len(blocks):  # never sent: finish them so the slab is released
            slab.block_finished(len(blocks) - sent)

    def _sample(self, blocks: list[Box]) -> set[Box]:
        if self.options.verify == "all":
            return set(blocks)
        if self.options.verify == "none" or not blocks:
            return set()
        return set(self.rng.sample(blocks, min(self.options.verify_per_slab, len(blocks))))

    def _slab_failed(self, blocks: list[Box], exc: BaseException) -> None:
        for block in blocks:
            self._fail(block, exc)
        self.blocks.fatal(exc)  # a bad slice fails every re-read alike: the run ends with it, said once
        self.slab_slots.release()

    # --- one block ------------------------------------------------------------------------------------

    def _one(self, slab: _Slab, block: Box, check: bool) -> None:
        buffer = None
        try:
            if not self.stop.is_set():
                buffer, data = self.buffers.copy(slab.data[block.slices_in(slab.box)])
                # the copy is all the block needs: the slab's last copy frees it for the next read
                slab.block_finished()
                self._push_block(block, data, check)
        finally:  # a failure goes to _fail, through the dispatcher
            if buffer is None:
                slab.block_finished()
            else:
                self.buffers.give_back(buffer)

    def _push_block(self, block: Box, data: np.ndarray, check: bool) -> None:
        nonzero = bool(data.any())
        if not nonzero and not self.spec.post_zero_blocks:
            self.manifest.mark(block, EMPTY)
            self.report.add("blocks_empty")
            self.progress.advance(1, 0)
            return
        block_hash = digest(data)
        self._send(block, data, nonzero)
        self.manifest.mark(block, POSTED, digest=block_hash, attempt=True)
        self.report.block_done(data.nbytes)
        self.progress.advance(1, data.nbytes)
        if check:
            self._verify(block, data, nonzero)

    def _send(self, block: Box, data: np.ndarray, nonzero: bool) -> None:
        """Post (after to_black when replacing); throttling shrinks the window and retries, never fails."""
        s, when = self.spec, self.spec.time_range

        def post() -> None:
            if s.post_zero_blocks:
                self.client.cutout_to_black(s.ref, s.res, block, when)
            if nonzero:
                self.client.post_cutout(s.ref, s.res, block, data if when is None else data[np.newaxis], time_range=when)

        throttled_call(self.limit, post)

    def _verify(self, block: Box, data: np.ndarray, nonzero: bool) -> None:
        """Read the block back; a mismatch is re-posted once, then the block is confirmed or failed."""
        s = self.spec
        result = compare(block, data, self._read_back(block, data.dtype),
                         strict=s.post_zero_blocks)
        if not result.ok:
            log.warning("verification: %s; posting it again", result.describe())
            self.report.add("verify_mismatches")
            self.report.add("reposted")
            self._send(block, data, nonzero)
            result = compare(block, data, self._read_back(block, data.dtype),
                             strict=s.post_zero_blocks)
            if not result.ok:
                raise VerificationError(f"read back after a second post: {result.describe()}")
        elif result.stale:
            log.info("verification: %s", result.describe())
        self.manifest.mark(block, VERIFIED)
        self.report.add("verified")

    def _read_back(self, block: Box, dtype: np.dtype) -> np.ndarray:
        when = self.spec.time_range
        stored = self.client.get_cutout(self.spec.ref, self.spec.res, block, dtype, time_range=when)
        return stored if when is None else stored[0]

    def _fail(self, block: Box, exc: BaseException) -> None:
        self.report.block_failed(block, exc)
        error = self.report.failures.get(block, str(exc))
        self.manifest.mark(block, FAILED, error=error, attempt=True)
        quota = isinstance(exc, (QuotaExceeded, BadInput))  # the run's own end, said once by the caller
        log.log(logging.INFO if quota else logging.ERROR, "block %s failed: %s", block, error)
        if self.notifier is not None and not quota and len(self.report.failures) <= NOTIFY_FAILURES:
            self.notifier.send(f"ndpush {self.spec.ref}: block {block} failed: {error}")


class VerificationError(Exception):
    """A block read back from the server still differs from the source after a second post."""


def pending_work(plan: PushPlan, manifest: Manifest, report: PushReport) -> list[tuple[int, list[Box]]]:
    """(slab index, blocks to send) for every slab with unconfirmed blocks; counts the confirmed ones."""
    manifest.register(b for blocks in plan.blocks_per_slab for b in blocks)
    states = manifest.states()
    work = []
    for index, blocks in enumerate(plan.blocks_per_slab):
        todo = [b for b in blocks if states.get(b) not in CONFIRMED]
        report.blocks_resumed += len(blocks) - len(todo)
        if todo:
            work.append((index, todo))
    return work


def open_manifest(spec: PushSpec, options: TransferOptions, client: Any) -> Manifest:
    remote = getattr(client, "remote", None)
    record = {"spec": spec.to_dict(), "block_bytes": push_block_bytes(options)}
    return Manifest(options.manifest, spec.key(getattr(remote, "url", ""), push_block_bytes(options)),
                    json.dumps(record, sort_keys=True))


def push(spec: PushSpec, options: TransferOptions | None = None, *, client: Any, source: Any = None,
         progress: Progress | None = None, notifier: Any = None, plan: PushPlan | None = None,
         seed: int | None = None) -> PushReport:
    """Ingest `spec` through `client`, run as `options` say; returns the report (failures listed, never raised).

    `source` defaults to `open_source(spec.source)` (closed again at the end). Bad input that can be
    known beforehand (datatype, extents, frame bounds, unreadable first slices) raises before any
    block is posted. `notifier.send(text)` (optional) hears about the start and about failures.
    """
    options = options or TransferOptions()
    progress = progress or NullProgress()
    own_source = source is None
    if source is None:
        source = open_source(spec.source)  # the registry imports a backend (boto3, ...) only now
    try:
        source.validate()
        plan = plan or make_plan(client, spec, options, source)
        manifest = open_manifest(spec, options, client)
        try:
            return _execute(client, plan, source, manifest, progress, notifier, random.Random(seed))
        finally:
            manifest.close()
    finally:
        if own_source:
            source.close()


def _execute(client: Any, plan: PushPlan, source: Any, manifest: Manifest, progress: Progress,
             notifier: Any, rng: random.Random) -> PushReport:
    report = PushReport("push", blocks_total=plan.nblocks)
    work = pending_work(plan, manifest, report)
    todo_bytes = sum(b.nbytes(plan.dtype.itemsize) for _, blocks in work for b in blocks)
    progress.start(plan.nblocks, plan.nbytes, done_blocks=report.blocks_resumed,
                   done_bytes=plan.nbytes - todo_bytes)
    report.blocks_skipped = report.blocks_resumed
    if notifier is not None:
        notifier.send(f"ndpush started: {plan.spec.ref}, {plan.box}, {plan.nblocks} blocks "
                      f"({report.blocks_resumed} done earlier)")
    pusher = _Pusher(client, plan, source, manifest, report, progress, rng, notifier)
    with report.measure(client, progress), client.retry_listener(pusher.limit.retried):
        pusher.run(work)
    report.throttled = pusher.limit.throttles
    report.blocks_skipped = report.blocks_resumed + report.blocks_empty
    report.missing_slices = list(getattr(source, "missing", []))
    if report.missing_slices:
        report.notes.append(f"{len(report.missing_slices)} missing slice(s) ingested as zeros: "
                            f"z {_ranges(report.missing_slices)}")
    if report.unsent > 0:
        report.notes.append(f"{report.unsent} blocks were not sent (the run stopped early): re-run to send them")
        if not report.failures:
            report.failures["run"] = "stopped before every block was sent"
    return report


def _ranges(values: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    out: list[str] = []
    for v in sorted(values):
        if out and out[-1].split("-")[-1] == str(v - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{v}"
        else:
            out.append(str(v))
    return ", ".join(out)
