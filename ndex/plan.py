"""Cut one big push or pull into jobs along z: pure arithmetic, no I/O.

A job is a contiguous run of whole 16-slice cuboid slabs in BOSS coordinates (after offsets, at the
transfer's resolution); only the first and last job may start or end inside a slab, and only at the
edges of the requested range. Jobs never overlap, so parallel jobs never write the same cuboid and
never need read-modify-write. Because both transfer engines stream slab by slab, a job's memory does
not depend on its depth: the `Footprint` of one job is the same for every job, and the planner's
only memory question is whether that footprint fits a worker.

`pull_footprint` and `push_footprint` take the footprint from the transfer engines themselves, so
the plan's numbers are the ones the jobs will actually use, and the engines' own memory fitting
answers that question: it shrinks what is in flight to a worker's memory, or refuses a worker too
small for one slab. `pull_job` and `push_job` cut the spec itself into one spec per job.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace

from ndex.client import ChannelInfo
from ndex.errors import UsageError
from ndex.geometry import Box, ceil_div, z_slabs
from ndex.progress import mb
from ndex.sinks.layout import stop_digits
from ndex.transfer import pull_plan, push_plan, pyramid
from ndex.transfer.options import SLAB_DEPTH, TransferOptions
from ndex.transfer.pull_plan import PullSpec
from ndex.transfer.push_plan import PushSpec, block_copies

DEFAULT_JOB_SLABS = 64  # without --workers/--jobs: 1024 slices per job, a restart unit of minutes, not days


@dataclass(frozen=True)
class Footprint:
    """What one job holds in memory at its peak, in the transfer engine's own terms."""

    slab_bytes: int  # one band buffer of 16 slices (0 for engines that place blocks directly)
    slabs_in_flight: int
    block_bytes: int
    blocks_in_flight: int
    requests_per_slab: int  # blocks one 16-slice slab is cut into (edge slabs have the same XY tiling)
    bytes_per_slice: int  # voxel bytes of one z slice of the XY extent, all time points
    process_memory: int | None = None  # the engine's own estimate of a whole job process's peak

    @property
    def memory(self) -> int:
        return self.slabs_in_flight * self.slab_bytes + self.blocks_in_flight * self.block_bytes

    def explain(self) -> str:
        return (f"{self.slabs_in_flight} band(s) of {mb(self.slab_bytes)} + {self.blocks_in_flight} block(s) "
                f"of {mb(self.block_bytes)} in flight")


@dataclass(frozen=True)
class Job:
    """One z range of the plan with what it moves and costs."""

    index: int
    z: tuple[int, int]
    nbytes: int
    requests: int
    memory: int
    seconds: float | None = None  # from the throughput, when one was given
    process_memory: int | None = None  # the whole job process, when the engine estimates it (Footprint's)

    @property
    def slug(self) -> str:
        """A file-name-safe tag naming the range, e.g. 'z0000016-0000032'."""
        return f"z{self.z[0]:07d}-{self.z[1]:07d}"


@dataclass(frozen=True)
class Partition:
    """The jobs of a plan, how many run at once, and what the whole costs."""

    jobs: tuple[Job, ...]
    workers: int
    footprint: Footprint
    throughput: float | None = None  # bytes per second per job
    notes: tuple[str, ...] = field(default=())
    measured: tuple[str, ...] = field(default=())  # how a probe found `throughput`; empty: given (--throughput)

    @property
    def nbytes(self) -> int:
        return sum(j.nbytes for j in self.jobs)

    @property
    def requests(self) -> int:
        return sum(j.requests for j in self.jobs)

    @property
    def memory(self) -> int:
        """Peak memory of all workers together."""
        return self.workers * self.footprint.memory

    @property
    def seconds(self) -> float | None:
        """Wall time with `workers` jobs at once, each job started on the first free worker."""
        if self.throughput is None:
            return None
        free = [0.0] * self.workers
        for job in self.jobs:
            heapq.heappush(free, heapq.heappop(free) + (job.seconds or 0.0))
        return max(free)

    @property
    def throughput_origin(self) -> str:
        return "probed" if self.measured else "from --throughput"

    def describe(self) -> list[str]:
        """The plan as the user reads it: how the throughput was measured, one line per job, then the totals."""
        lines = list(self.measured)
        lines.extend(f"job {j.index:>4}  z {j.z[0]}:{j.z[1]}  {mb(j.nbytes):>12}  {j.requests:>7} requests  "
                     f"memory {mb(j.memory)}" + (f"  ~{duration(j.seconds)}" if j.seconds is not None else "")
                     for j in self.jobs)
        lines.append(f"total: {len(self.jobs)} jobs, {self.workers} at a time, {mb(self.nbytes)}, "
                     f"{self.requests} requests, memory {mb(self.footprint.memory)} per worker "
                     f"({self.footprint.explain()}), {mb(self.memory)} for all workers"
                     + (f", ~{duration(self.seconds)} at {mb(self.throughput or 0)}/s per job "
                        f"({self.throughput_origin})" if self.seconds is not None else ""))
        return lines + [f"note: {n}" for n in self.notes]


def duration(seconds: float | None) -> str:
    s = int(round(seconds or 0))
    h, rest = divmod(s, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def split_evenly(count: int, parts: int) -> list[tuple[int, int]]:
    """[0, count) in `parts` contiguous runs whose sizes differ by at most one."""
    base, extra = divmod(count, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{name} {value} must be at least 1")


def job_count(nslabs: int, workers: int | None, jobs: int | None) -> tuple[int, list[str]]:
    """How many jobs to cut: --jobs, else one per worker, else restartable units of DEFAULT_JOB_SLABS."""
    wanted = jobs or workers or ceil_div(nslabs, DEFAULT_JOB_SLABS)
    if wanted <= nslabs:
        return wanted, []
    flag = "--jobs" if jobs else "--workers"
    return nslabs, [f"{flag} {wanted} asks for more jobs than the range has 16-slice slabs: cut {nslabs} jobs"]


def partition(z: tuple[int, int], footprint: Footprint, *, workers: int | None = None, jobs: int | None = None,
              throughput: float | None = None, measured: tuple[str, ...] = ()) -> Partition:
    """Cut [z0, z1) into non-overlapping, cuboid-aligned jobs that cover it exactly once.

    Every job has `footprint`, already fitted to a worker's memory (`pull_footprint`, `push_footprint`).
    `measured` says how a probe found `throughput` (the plan prints it); without it the rate was given.
    """
    z0, z1 = int(z[0]), int(z[1])
    if z0 >= z1:
        raise UsageError(f"the z range {z0}:{z1} covers nothing: give a range whose stop is above its start")
    for name, value in (("--workers", workers), ("--jobs", jobs)):
        check_positive(name, value)
    if throughput is not None and throughput <= 0:
        raise UsageError(f"--throughput {throughput} must be a positive rate such as 200MB/s")
    slabs = [slab.z for slab in z_slabs(Box((0, 0, z0), (1, 1, z1)))]  # the z range on the cuboid grid
    njobs, notes = job_count(len(slabs), workers, jobs)
    cut = []
    for index, (a, b) in enumerate(split_evenly(len(slabs), njobs)):
        zr = (slabs[a][0], slabs[b - 1][1])
        nbytes = (zr[1] - zr[0]) * footprint.bytes_per_slice
        cut.append(Job(index, zr, nbytes, (b - a) * footprint.requests_per_slab, footprint.memory,
                       None if throughput is None else nbytes / throughput, footprint.process_memory))
    return Partition(tuple(cut), min(workers or njobs, njobs), footprint, throughput, tuple(notes), tuple(measured))


# --- footprints, taken from the transfer engines ------------------------------------------------


def pull_footprint(spec: PullSpec, options: TransferOptions, info: ChannelInfo, box: Box) -> Footprint:
    """What one pull job of `box` holds, from the pull engine's own layout (`pull_plan.layout`).

    `options` carry the memory of one job (`TransferOptions.with_memory_cap`): the engine shrinks its
    blocks in flight to fit, exactly as computed here; a cap too small for one slab is refused here.
    """
    slab = z_slabs(box)[0]  # every slab of the box has its XY tiling, so the first has every slab's footprint
    # a pyramid pulls its levels one after the other: the first holds the most, all of them add bytes and requests
    ones = pyramid.level_specs(replace(spec, box=slab), info) if pyramid.is_pyramid(spec) else [replace(spec, box=slab)]
    plans = [pull_plan.layout(one, options, info, one.box) for one in ones]  # type: ignore[arg-type]  # boxes given
    plan = plans[0]
    return Footprint(plan.slab_bytes, 1 if plan.slab_bytes else 0, pull_plan.COPIES_PER_BLOCK * plan.block_bytes,
                     plan.inflight, sum(p.nblocks for p in plans), sum(p.nbytes for p in plans) // slab.shape[2],
                     plan.memory_estimate)


def push_footprint(spec: PushSpec, options: TransferOptions, xy: Box, itemsize: int,
                   chunk_bytes: int = 0) -> Footprint:
    """What one push job with BOSS x/y extent `xy` holds, from the push engine's own memory fitting.

    Only the channel's itemsize is needed, not the channel: a plan is made before the resources exist.
    A cap too small for one slab is refused here.
    """
    slab = xy.with_z(0, SLAB_DEPTH)  # one whole slab: a push sizes its slab buffers for 16 slices whatever the range
    cut = push_plan.layout(spec, options, slab, itemsize, chunk_bytes)
    return Footprint(cut.slab_bytes, cut.slabs_in_flight, block_copies(options) * cut.block_bytes, cut.inflight,
                     cut.nblocks, cut.nbytes // SLAB_DEPTH, cut.process_estimate)


# --- jobs as specs ---------------------------------------------------------------------------------


def per_job_name(filename: str, slug: str) -> str:
    """'vol.ome.tif' -> 'vol_z0000000-0000016.ome.tif': one output file per job, never shared."""
    for ext in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if filename.lower().endswith(ext):
            return f"{filename[:-len(ext)]}_{slug}{filename[-len(ext):]}"
    stem, dot, ext = filename.rpartition(".")
    return f"{stem}_{slug}.{ext}" if dot and stem else f"{filename}_{slug}"


def pull_job(spec: PullSpec, job: Job) -> PullSpec:
    """The pull of one job: its z range, its own output file when the pull writes one, and z padded as
    one pull of the whole range would pad it."""
    one = spec.for_z_range(*job.z)
    digits = spec.z_digits or stop_digits(spec.box.z[1])  # type: ignore[union-attr]  # for_z_range needs a box
    name = per_job_name(spec.stack_filename, job.slug) if spec.stack_filename else None
    return replace(one, stack_filename=name, z_digits=digits)


def push_job(spec: PushSpec, job: Job) -> PushSpec:
    """The push of one job: its z range (BOSS coordinates, on the cuboid grid)."""
    return spec.for_z_range(*job.z)
