"""Push image slices into a channel: pipelined slabs, cuboid-aligned blocks, resumable and verified.

Coordinates. A source numbers z (and places x/y) in its own coordinates; `PushSpec.offsets` shift
them into BOSS coordinates: BOSS (x, y, z) = source (x, y, z) + offsets, where a source's x/y start at
its `origin_xy` (the --x_extent/--y_extent starts). Slabs and blocks are aligned to the 512x512x16
cuboid grid of BOSS coordinates *after* the offsets, so a job boundary on the grid is a cuboid
boundary on the server, and two jobs whose z ranges do not overlap never touch the same cuboid.

Pipeline. A reader thread reads the next 16-slice slab while worker threads post the blocks of the
current one. Each worker copies its block out of the slab into a pooled buffer; the slab is freed
(and its slot given to the next read) as soon as its last block is copied. Memory is bounded by
`slabs_in_flight` slabs plus the blocks in flight (the copy, its compressed body and, when verified,
the read-back); `PushPlan.memory_estimate` says how much, and `PushPlan.process_estimate` adds what
the process holds besides (the interpreter and libraries, slices being decoded by the source).

Edges. A block at the edge of the data covers only part of a cuboid; only that box is posted, and
the server merges it into the cuboid, so no read-modify-write happens on the client.

Zeros. All-zero blocks are not posted (the merge rule makes posting zeros a no-op). With
`post_zero_blocks` every block *replaces* what is stored: it is cleared with to_black first and
then its non-zero voxels are posted -- that is how a re-ingest clears old data.

Resume and verification: see `manifest.py` and `verify.py`. Throttling (429/503): fewer blocks in
flight (halved per throttle, grown back by one after a run of successes) and every worker waits
out the server's Retry-After; a throttled block is retried, never failed for being throttled.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from ndex.client import ChannelInfo, ChannelRef
from ndex.errors import OutOfBounds, QuotaExceeded, Throttled, UsageError, ends_transfer
from ndex.geometry import Box, Triple, plan_blocks, z_slabs
from ndex.progress import NullProgress, Progress, mb
from ndex.sources import SourceSpec, open_source
from ndex.transfer.flow import acquire_unless_stopped
from ndex.transfer.manifest import CONFIRMED, EMPTY, FAILED, POSTED, VERIFIED, Manifest
from ndex.transfer.memory import SLAB_DEPTH, slab_bytes, too_small
from ndex.transfer.report import RunReport
from ndex.transfer.verify import compare, digest

log = logging.getLogger(__name__)

VERIFY_MODES = ("sample", "all", "none")
DEFAULT_PUSH_BLOCK_BYTES = 4 * 2**20  # at most one cuboid of any dtype: ndex serve stores a whole cuboid without a merge
# RSS of the interpreter with numpy, requests, tifffile, blosc, tensorstore and ndex imported
# (measured 77 MB on Linux x86-64, Python 3.11), rounded up
PROCESS_BASE_BYTES = 90 * 10**6
# a block in flight holds a pooled contiguous copy, its compressed body (at most as big) and, when
# verified, its read-back copy: what memory estimates (here and in `ndex plan`) count per block
COPIES_PER_BLOCK = 3
MAX_THROTTLE_ROUNDS = 50  # a block throttled this often (after the client's own retries) is failed
NOTIFY_FAILURES = 3  # failures announced as they happen; the final report lists the rest


@dataclass(frozen=True)
class PushSpec:
    """Everything that defines a push; JSON round-trippable, and the same spec re-run resumes it."""

    ref: ChannelRef
    source: SourceSpec
    offsets: Triple = (0, 0, 0)  # added to source coordinates to give BOSS coordinates
    res: int = 0
    threads: int = 8
    slabs_in_flight: int = 2
    block_bytes: int = DEFAULT_PUSH_BLOCK_BYTES
    post_zero_blocks: bool = False
    verify: str = "sample"
    verify_per_slab: int = 1  # blocks read back per slab in "sample" mode
    manifest: str | None = None  # SQLite file; None keeps it in memory (no resume)
    max_memory: int | None = None  # bytes for slabs and blocks in flight

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", tuple(int(v) for v in self.offsets))
        if len(self.offsets) != 3:
            raise UsageError(f"offsets {self.offsets} must be three integers (x, y, z)")
        if self.verify not in VERIFY_MODES:
            raise UsageError(f"unknown --verify {self.verify!r}: use one of {', '.join(VERIFY_MODES)}")
        for name in ("threads", "slabs_in_flight", "block_bytes"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} {getattr(self, name)} must be at least 1")
        if self.verify_per_slab < 0:
            raise UsageError(f"verify_per_slab {self.verify_per_slab} must not be negative")

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["ref"] = self.ref.path
        data["source"] = self.source.to_dict()
        data["offsets"] = list(self.offsets)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PushSpec:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown push spec field(s) {', '.join(unknown)}")
        data["ref"] = ChannelRef.parse(data["ref"])
        data["source"] = SourceSpec.from_dict(data["source"])
        return cls(**data)

    def key(self, server: str = "") -> str:
        """Hash of what decides the blocks and their contents (not threads, verification or memory)."""
        source = {k: v for k, v in self.source.to_dict().items() if k != "read_threads"}
        what = {"server": server, "ref": self.ref.path, "source": source, "offsets": list(self.offsets),
                "res": self.res, "block_bytes": self.block_bytes, "post_zero_blocks": self.post_zero_blocks}
        return hashlib.blake2b(json.dumps(what, sort_keys=True).encode(), digest_size=16).hexdigest()

    def for_z_range(self, z0: int, z1: int) -> PushSpec:
        """The same push restricted to BOSS z range z0:z1 (how a planner cuts jobs on the cuboid grid)."""
        oz = self.offsets[2]
        return replace(self, source=replace(self.source, z_range=(z0 - oz, z1 - oz)))


@dataclass(frozen=True)
class Layout:
    """A push of `box` cut into slabs and blocks, and what of it is in flight: arithmetic only, no source or channel."""

    spec: PushSpec
    box: Box  # BOSS coordinates of the data this job posts
    itemsize: int
    slabs: tuple[Box, ...]
    blocks_per_slab: tuple[tuple[Box, ...], ...]
    block_bytes: int  # bytes of the largest block
    slabs_in_flight: int
    inflight: int

    @property
    def nblocks(self) -> int:
        return sum(len(b) for b in self.blocks_per_slab)

    @property
    def nbytes(self) -> int:
        return self.box.nbytes(self.itemsize)

    @property
    def slab_bytes(self) -> int:
        return slab_bytes(self.box, self.itemsize)

    @property
    def memory_estimate(self) -> int:
        """Slabs and blocks in flight (what --max_memory caps, and what `ndex plan` budgets per job)."""
        # each block in flight holds a pooled contiguous copy and its compressed body (at most as
        # big), and a verified block also its read-back copy
        return self.slabs_in_flight * self.slab_bytes + self.inflight * COPIES_PER_BLOCK * self.block_bytes

    @property
    def decode_bytes(self) -> int:
        """Slices being fetched and decoded by the source: a file's bytes and its decoded image per thread."""
        sx, sy, _ = self.box.shape
        return self.spec.source.read_threads * 2 * sx * sy * self.itemsize

    @property
    def process_estimate(self) -> int:
        """Peak RSS of the whole push process: the engine's buffers, the source's, and the interpreter."""
        return self.memory_estimate + self.decode_bytes + PROCESS_BASE_BYTES


@dataclass(frozen=True)
class PushPlan(Layout):
    """The resolved push: its layout, checked against the channel and the source."""

    info: ChannelInfo
    source_description: str = ""

    @property
    def dtype(self) -> np.dtype:
        return self.info.dtype

    def source_z(self, slab: Box) -> tuple[int, int]:
        """The source's z numbering of a BOSS slab."""
        oz = self.spec.offsets[2]
        return slab.z[0] - oz, slab.z[1] - oz

    def describe(self) -> list[str]:
        s = self.spec
        return [
            f"channel   {s.ref} ({self.info.channel.datatype}, {self.info.channel.type}) at resolution {s.res}",
            f"source    {self.source_description}",
            f"region    {self.box} (BOSS coordinates, offsets x {s.offsets[0]}, y {s.offsets[1]}, z {s.offsets[2]})",
            f"blocks    {self.nblocks} cuboid-aligned blocks in {len(self.slabs)} slabs of up to 16 slices",
            f"bytes     {mb(self.nbytes)} uncompressed",
            f"memory    ~{self.process_estimate / 1e6:,.0f} MB peak: {self.slabs_in_flight} slabs of "
            f"{mb(self.slab_bytes)} + {self.inflight} blocks of <= {mb(self.block_bytes)} in flight "
            f"x3 (copy, body, read-back) + {self.decode_bytes / 1e6:,.0f} MB of slices being decoded "
            f"+ {PROCESS_BASE_BYTES / 1e6:,.0f} MB interpreter",
            f"verify    {s.verify}" + (f" ({s.verify_per_slab} block(s) per slab)" if s.verify == "sample" else ""),
            f"zeros     {'cleared (to_black) and posted' if s.post_zero_blocks else 'all-zero blocks skipped'}",
        ]


def source_box(source: Any, offsets: Triple) -> Box:
    """BOSS box of a source's data after offsets; a clear error if it would start below zero."""
    (ox, oy, oz), (x0, y0), (sx, sy) = offsets, source.origin_xy, source.shape_xy
    z0, z1 = source.z_range
    start = (x0 + ox, y0 + oy, z0 + oz)
    for axis, value in zip("xyz", start):
        if value < 0:
            raise OutOfBounds(f"the data starts at {axis} = {value} in BOSS coordinates, but BOSS coordinates "
                              "cannot be negative: pass --offset_extents (or --forced_offsets X Y Z)")
    return Box(start, (x0 + ox + sx, y0 + oy + sy, z1 + oz))


def check_channel(info: ChannelInfo, source: Any, res: int) -> None:
    """Datatype and resolution checks that must pass before anything is posted."""
    if np.dtype(source.dtype) != info.dtype:
        raise UsageError(f"channel {info.ref} holds {info.channel.datatype} but the images are "
                         f"{np.dtype(source.dtype).name}: pass --datatype {info.channel.datatype} to convert, "
                         "or push into a channel of the images' datatype")
    base = info.channel.base_resolution
    if res not in (base, base + 1):
        raise OutOfBounds(f"resolution {res} of channel {info.ref} cannot be written: BOSS writes only the "
                          f"base resolution {base} (or {base + 1})")


def fit_memory(spec: PushSpec, slab_bytes: int, block_bytes: int, *, flag: str = "--max_memory",
               who: str = "this push") -> tuple[int, int]:
    """(slabs_in_flight, blocks in flight) within `max_memory`; blocks keep their size (the manifest's).

    A cap below one slab plus one block in flight is refused, naming `flag` and what `who` needs.
    """
    slabs, inflight = spec.slabs_in_flight, spec.threads
    if spec.max_memory is None:
        return slabs, inflight
    per_block = COPIES_PER_BLOCK * block_bytes
    while slabs > 1 and slabs * slab_bytes + per_block > spec.max_memory:
        slabs -= 1
    budget = spec.max_memory - slabs * slab_bytes
    if budget < per_block:
        raise too_small(flag, spec.max_memory, who, slab_bytes + per_block,
                        f"one {mb(slab_bytes)} slab plus one block in flight of {mb(per_block)}",
                        " or lower --block_size")
    return slabs, max(1, min(inflight, budget // per_block))


def make_plan(client: Any, spec: PushSpec, source: Any, info: ChannelInfo | None = None) -> PushPlan:
    """Resolve and check a push against the channel: every error that can be known beforehand is raised here."""
    info = info or client.channel_info(spec.ref)
    check_channel(info, source, spec.res)
    box = source_box(source, spec.offsets)
    info.check_box(box, spec.res)
    return PushPlan(**vars(layout(spec, box, info.dtype.itemsize)), info=info, source_description=source.describe())


def layout(spec: PushSpec, box: Box, itemsize: int, **memory_words: str) -> Layout:
    """The slabs and blocks of a push of `box` (BOSS coordinates), fitted to `spec.max_memory`.

    `memory_words` (flag=, who=) name the memory cap in `fit_memory`'s error.
    """
    slabs = tuple(z_slabs(box))
    blocks = tuple(tuple(plan_blocks(slab, itemsize, spec.block_bytes, depth=SLAB_DEPTH)) for slab in slabs)
    largest = max((b.nbytes(itemsize) for s in blocks for b in s), default=0)
    nslabs, inflight = fit_memory(spec, slab_bytes(box, itemsize), largest, **memory_words)
    return Layout(spec, box, itemsize, slabs, blocks, largest, nslabs, int(inflight))


@dataclass
class PushReport(RunReport):
    """The run report of a push: slices read, blocks posted / empty / resumed / failed, verification."""

    slices_read: int = 0
    blocks_empty: int = 0  # all-zero, not posted
    blocks_resumed: int = 0  # confirmed by an earlier run
    verified: int = 0
    verify_mismatches: int = 0
    reposted: int = 0
    throttled: int = 0
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


class InflightLimit:
    """Blocks in flight, adapted to the server (AIMD): halved when throttled, +1 after `limit` successes.

    `not_before` is a shared pause: after a 429/503 every worker waits until then before its next
    request, so the server's Retry-After is honoured by all threads, not only the one that got it.
    """

    def __init__(self, maximum: int, *, default_pause: float = 1.0, clock: Any = time.monotonic,
                 sleep: Any = time.sleep) -> None:
        self.maximum = self.limit = max(1, int(maximum))
        self.active = self.successes = self.throttles = 0
        self.not_before = 0.0
        self.default_pause, self.clock, self.sleep = default_pause, clock, sleep
        self._cond = threading.Condition()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a free slot; False if `stop` was set meanwhile."""
        with self._cond:
            while self.active >= self.limit:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            self.active += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def wait_turn(self) -> None:
        """Sleep out a pause the server asked for."""
        while (delay := self.not_before - self.clock()) > 0:
            self.sleep(min(delay, 1.0))

    def success(self) -> None:
        with self._cond:
            self.successes += 1
            if self.successes >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self.successes = 0
                self._cond.notify_all()

    def throttled(self, retry_after: float | None) -> None:
        with self._cond:
            self.throttles += 1
            self.successes = 0
            self.limit = max(1, self.limit // 2)
            pause = self.default_pause if retry_after is None else retry_after
            self.not_before = max(self.not_before, self.clock() + pause)
        log.info("server asks to slow down: %d block(s) in flight from now, pausing %.1f s", self.limit, pause)

    def retried(self, what: str, exc: BaseException) -> None:
        """A retry listener of the client: its own retries of a 429/503 shrink the window too."""
        if isinstance(exc, Throttled):
            self.throttled(exc.retry_after)


class BlockBuffers:
    """Reusable contiguous buffers for the blocks in flight.

    A worker copies its block out of the slab into one (blosc needs contiguous input), posts it and
    gives it back. Without the pool every block is a fresh block-sized array: page faults for each,
    and glibc keeps the freed ones in per-thread malloc arenas, so the process grew by about a block
    per thread beyond what was in use. At most `count` buffers exist (allocated on first use).
    """

    def __init__(self, count: int, nbytes: int) -> None:
        self.count, self.nbytes = max(1, int(count)), int(nbytes)
        self._free: list[np.ndarray] = []
        self._made = 0
        self._cond = threading.Condition()

    def copy(self, view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, contiguous copy of `view` inside it); hand the buffer back with `give_back`.

        Nothing here keeps `view` (nor so the slab it looks into) alive after the copy."""
        if view.nbytes > self.nbytes:
            raise ValueError(f"a {view.nbytes}-byte block does not fit the {self.nbytes}-byte buffers")
        buffer = self._take()
        out = buffer[:view.nbytes].view(view.dtype).reshape(view.shape)
        np.copyto(out, view)
        return buffer, out

    def give_back(self, buffer: np.ndarray) -> None:
        with self._cond:
            self._free.append(buffer)
            self._cond.notify()

    def _take(self) -> np.ndarray:
        with self._cond:
            while not self._free and self._made >= self.count:
                self._cond.wait()
            if self._free:
                return self._free.pop()
            self._made += 1
        return np.empty(self.nbytes, dtype=np.uint8)


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
        self.spec = plan.spec
        self.limit = InflightLimit(plan.inflight)
        self.buffers = BlockBuffers(plan.inflight, plan.block_bytes)
        self.slab_slots = threading.Semaphore(plan.slabs_in_flight)
        self.stop = threading.Event()

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
            data = self.source.read_slab(*self.plan.source_z(box))
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
            with ThreadPoolExecutor(self.spec.threads, thread_name_prefix="ndpush") as pool:
                while (item := slabs.get()) is not None:
                    self._take(pool, *item, todo)
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.stop.set()
            reader.join()

    def _take(self, pool: ThreadPoolExecutor, index: int, slab: _Slab | Exception,
              todo: dict[int, list[Box]]) -> None:
        if self.stop.is_set():
            if isinstance(slab, Exception):
                self.slab_slots.release()
            else:
                slab.block_finished(len(todo[index]))
        elif isinstance(slab, Exception):
            self._slab_failed(todo[index], slab)
        else:
            self._dispatch(pool, slab, todo[index])

    def _dispatch(self, pool: ThreadPoolExecutor, slab: _Slab, blocks: list[Box]) -> None:
        checked = self._sample(blocks)
        for sent, block in enumerate(blocks):
            if not self.limit.acquire(self.stop):
                slab.block_finished(len(blocks) - sent)  # never sent: finish them so the slab is released
                return
            pool.submit(self._one, slab, block, block in checked)

    def _sample(self, blocks: list[Box]) -> set[Box]:
        if self.spec.verify == "all":
            return set(blocks)
        if self.spec.verify == "none" or not blocks:
            return set()
        return set(self.rng.sample(blocks, min(self.spec.verify_per_slab, len(blocks))))

    def _slab_failed(self, blocks: list[Box], exc: BaseException) -> None:
        for block in blocks:
            self._fail(block, exc)
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
        except Exception as exc:  # every failure is recorded for its block, none is swallowed
            self._fail(block, exc)
            if ends_transfer(exc):
                self.report.end(exc)
                self.stop.set()
        finally:
            self.limit.release()
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
        s = self.spec
        for round_ in range(MAX_THROTTLE_ROUNDS):
            self.limit.wait_turn()
            try:
                if s.post_zero_blocks:
                    self.client.cutout_to_black(s.ref, s.res, block)
                if nonzero:
                    self.client.post_cutout(s.ref, s.res, block, data)
                self.limit.success()
                return
            except Throttled as exc:
                self.limit.throttled(exc.retry_after)
                if round_ == MAX_THROTTLE_ROUNDS - 1:
                    raise

    def _verify(self, block: Box, data: np.ndarray, nonzero: bool) -> None:
        """Read the block back; a mismatch is re-posted once, then the block is confirmed or failed."""
        s = self.spec
        result = compare(block, data, self.client.get_cutout(s.ref, s.res, block, data.dtype),
                         strict=s.post_zero_blocks)
        if not result.ok:
            log.warning("verification: %s; posting it again", result.describe())
            self.report.add("verify_mismatches")
            self.report.add("reposted")
            self._send(block, data, nonzero)
            result = compare(block, data, self.client.get_cutout(s.ref, s.res, block, data.dtype),
                             strict=s.post_zero_blocks)
            if not result.ok:
                raise VerificationError(f"read back after a second post: {result.describe()}")
        elif result.stale:
            log.info("verification: %s", result.describe())
        self.manifest.mark(block, VERIFIED)
        self.report.add("verified")

    def _fail(self, block: Box, exc: BaseException) -> None:
        self.report.block_failed(block, exc)
        error = self.report.failures.get(block, str(exc))
        self.manifest.mark(block, FAILED, error=error, attempt=True)
        quota = isinstance(exc, QuotaExceeded)  # the run's own end, said once by the caller: not per block
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


def open_manifest(spec: PushSpec, client: Any) -> Manifest:
    remote = getattr(client, "remote", None)
    return Manifest(spec.manifest, spec.key(getattr(remote, "url", "")), spec.to_json())


def push(spec: PushSpec, *, client: Any, source: Any = None, progress: Progress | None = None,
         notifier: Any = None, plan: PushPlan | None = None, seed: int | None = None) -> PushReport:
    """Ingest `spec` through `client`; returns the report (failures listed, never raised).

    `source` defaults to `open_source(spec.source)` (closed again at the end). Bad input that can be
    known beforehand (datatype, extents, frame bounds, unreadable first slices) raises before any
    block is posted. `notifier.send(text)` (optional) hears about the start and about failures.
    """
    progress = progress or NullProgress()
    own_source = source is None
    if source is None:
        source = open_source(spec.source)  # the registry imports a backend (boto3, ...) only now
    try:
        source.validate()
        plan = plan or make_plan(client, spec, source)
        manifest = open_manifest(spec, client)
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
