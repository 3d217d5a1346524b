"""Downsample jobs: pyramid builds in a background thread pool, status kept in the channel row.

QUEUED -> IN_PROGRESS -> DOWNSAMPLED | FAILED; DELETE sets NOT_DOWNSAMPLED and the running build
stops at its next cancellation check. Nothing survives a restart: `recover()` marks jobs that were
QUEUED or IN_PROGRESS when the server stopped as FAILED (their pyramid may be half built), and the
user POSTs again. A build also stops when another server process cancels it, because the cancelled
check re-reads the status from the database every few seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import update

from ndex.geometry import Box, plan_blocks
from ndex.server.auth import Identity
from ndex.server.catalog import Catalog
from ndex.server.channels import ChannelInfo, drop_data
from ndex.server.db import Database
from ndex.server.http_errors import BAD_REQUEST, BOSS_SYSTEM_ERROR, INVALID_STATE, BossError
from ndex.server.schema import channels
from ndex.server.volumes import DownsampleCancelled, VolumeStore

log = logging.getLogger(__name__)
ACTIVE = ("QUEUED", "IN_PROGRESS")
DB_CHECK_SECONDS = 2.0
COPY_BLOCK_BYTES = 64 * 2**20


@dataclass
class Job:
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    checked: float = 0.0
    finished: threading.Event = field(default_factory=threading.Event)


def recover_interrupted(db: Database) -> int:
    """Mark jobs a stopped server left QUEUED or IN_PROGRESS as FAILED; returns how many."""
    with db.begin() as conn:
        n = conn.execute(update(channels).where(channels.c.downsample_status.in_(ACTIVE))
                         .values(downsample_status="FAILED")).rowcount
    if n:
        log.warning("%d downsample job(s) were interrupted by a restart and are now FAILED: POST them again", n)
    return n


# BOSS's own messages (bossspatialdb/downsample.py and views.py): clients tell the 409s apart by them
RUNNING = "Channel is currently being downsampled. Invalid Request."
WAITING = "Channel is already waiting to be downsampled. Invalid Request."
ALREADY_DONE = "Channel is already downsampled. Invalid Request."
TOO_LARGE = "Large downsamples require admin permissions to trigger. Invalid Request."
START_RACE = "Downsample already queued or in progress"
CANCEL_REFUSED = "You can only cancel a queued or in-progress downsample operation."
XY_DIFFER = "X voxel size != Y voxel size. Currently unable to determine isotropic level"  # spdb's words


def refuse_start(ident: Identity, info: ChannelInfo, status: str, max_voxels: int) -> None:
    """BOSS's checks before a downsample is queued, in BOSS's order; a BossError if one fails."""
    if status in ACTIVE:
        raise BossError(INVALID_STATE, RUNNING if status == "IN_PROGRESS" else WAITING)
    if status == "DOWNSAMPLED" and not ident.admin:
        raise BossError(INVALID_STATE, ALREADY_DONE)
    if info.xy_voxels_differ:  # BOSS fails here with a 500; ndex says why instead
        raise BossError(BOSS_SYSTEM_ERROR, f"{XY_DIFFER}: an anisotropic experiment can be downsampled only "
                                           "with equal x and y voxel sizes (or use an isotropic hierarchy)")
    if max_voxels and not ident.admin and info.frame_box.nvoxels > max_voxels:
        raise BossError(INVALID_STATE, TOO_LARGE)


class DownsampleJobs:
    def __init__(self, catalog: Catalog, store: VolumeStore, workers: int = 1, max_voxels: int = 0) -> None:
        self.catalog = catalog
        self.max_voxels = max_voxels
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ndex-downsample")
        self.jobs: dict[int, Job] = {}
        self.lock = threading.Lock()

    def recover(self) -> int:
        return recover_interrupted(self.catalog.db)

    def start(self, ident: Identity, info: ChannelInfo) -> None:
        status = self.catalog.status(info.id)
        refuse_start(ident, info, status, self.max_voxels)
        if not self.catalog.set_status(info.id, "QUEUED", only_if=(status,)):
            raise BossError(BAD_REQUEST, START_RACE)
        job = Job()
        with self.lock:
            self.jobs[info.id] = job
        self.pool.submit(self._run, info, job)

    def cancel(self, info: ChannelInfo) -> None:
        if not self.catalog.set_status(info.id, "NOT_DOWNSAMPLED", only_if=ACTIVE):
            raise BossError(INVALID_STATE, CANCEL_REFUSED)
        with self.lock:
            job = self.jobs.get(info.id)
        if job is not None:
            job.cancel.set()

    def abandon(self, chan_id: int) -> None:
        """Stop any build of a channel that is being deleted, and wait until it has stopped."""
        with self.lock:
            job = self.jobs.get(chan_id)
        if job is not None:
            job.cancel.set()
            job.finished.wait(timeout=60)

    def progress(self, chan_id: int) -> tuple[int, int] | None:
        with self.lock:
            job = self.jobs.get(chan_id)
        return None if job is None else (job.done, job.total)

    def _cancelled(self, chan_id: int, job: Job) -> bool:
        if job.cancel.is_set():
            return True
        now = time.monotonic()
        if now - job.checked >= DB_CHECK_SECONDS:
            job.checked = now
            if self.catalog.status(chan_id) != "IN_PROGRESS":
                job.cancel.set()
        return job.cancel.is_set()

    def _run(self, info: ChannelInfo, job: Job) -> None:
        try:
            if job.cancel.is_set() or not self.catalog.set_status(info.id, "IN_PROGRESS", only_if=("QUEUED",)):
                return
            job.checked = time.monotonic()
            self._build(info, job)
            self.catalog.set_status(info.id, "DOWNSAMPLED", only_if=("IN_PROGRESS",))
        except DownsampleCancelled:
            log.info("downsample of channel %s cancelled", info.key)
        except Exception:
            log.exception("downsample of channel %s failed", info.key)
            self.catalog.set_status(info.id, "FAILED", only_if=("IN_PROGRESS",))
        finally:
            self._drop_if_deleted(info)
            with self.lock:
                if self.jobs.get(info.id) is job:
                    del self.jobs[info.id]
            job.finished.set()

    def _drop_if_deleted(self, info: ChannelInfo) -> None:
        """A channel deleted by another server process while this build ran: the levels it wrote after
        that process cleared the store would stay behind under the dead key; clear them."""
        try:
            if not self.catalog.live(info.channel):
                drop_data(self.store, info.channel)
        except Exception:  # noqa: BLE001 - leftovers under a dead key are unreachable: log, never fail
            log.exception("clearing the arrays of deleted channel %s failed", info.key)

    def _build(self, info: ChannelInfo, job: Job) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        def cancelled() -> bool:
            return self._cancelled(info.id, job)

        self.store.downsample(info.layout(), base_res=info.base, progress=progress, cancelled=cancelled)
        if not info.isotropic and info.base <= info.iso_level < info.top_built:
            self._copy_level(info, info.iso_level, cancelled)
            self.store.downsample(info.layout(iso=True), base_res=info.iso_level, progress=progress,
                                  cancelled=cancelled)

    def _copy_level(self, info: ChannelInfo, res: int, cancelled) -> None:
        """Seed the isotropic pyramid with the level where both pyramids still agree.

        The destination is cleared first: store.write keeps stored voxels wherever the copy is zero,
        so without it data an earlier build copied there would outlive its source.
        """
        src, dst = info.layout(), info.layout(iso=True)
        extent = self.store.level_shape(src, res)
        whole = Box((0, 0, 0), extent)
        itemsize = np.dtype(info.datatype).itemsize
        t_range = (0, info.experiment["num_time_samples"] + 1)  # BOSS lets t run to num_time_samples
        self.store.to_black(dst, res, whole, t_range)
        for block in plan_blocks(whole, itemsize, COPY_BLOCK_BYTES, time_samples=t_range[1]):
            if cancelled():
                raise DownsampleCancelled(f"downsample of {info.key} cancelled")
            self.store.write(dst, res, block, 0, self.store.read(src, res, block, t_range))

    def close(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


