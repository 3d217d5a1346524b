"""Downsample jobs: pyramid builds in a background thread pool, status kept in the channel row.

QUEUED -> IN_PROGRESS -> DOWNSAMPLED | FAILED; DELETE sets NOT_DOWNSAMPLED and the running build
stops at its next cancellation check (the check re-reads the status every few seconds, so a DELETE
through any server process stops a build running in any other).

Several server processes (and hosts) share one database: a job runs in exactly one of them, the one
holding its lease (ndex.server.leases). A keeper thread in every process renews the leases of its own
jobs and takes over jobs whose lease expired because their process died, hung or was restarted; a
taken-over job builds its pyramid again from the first tile. A restart therefore resumes interrupted
jobs instead of failing them.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from ndex.geometry import Box, plan_blocks
from ndex.server.auth import Identity
from ndex.server.catalog import Catalog
from ndex.server.channels import ChannelInfo, drop_data
from ndex.server.http_errors import BAD_REQUEST, BOSS_SYSTEM_ERROR, INVALID_STATE, BossError
from ndex.server.leases import ACTIVE, JobLeases
from ndex.server.pyramid import DownsampleCancelled
from ndex.server.schema import channels, collections, experiments
from ndex.server.volumes import VolumeStore

log = logging.getLogger(__name__)
DB_CHECK_SECONDS = 2.0
COPY_BLOCK_BYTES = 64 * 2**20
LEASE_SECONDS = 30.0


@dataclass
class Job:
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    checked: float = 0.0
    renewed: float = field(default_factory=time.monotonic)
    finished: threading.Event = field(default_factory=threading.Event)


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
    def __init__(self, catalog: Catalog, store: VolumeStore, workers: int = 1, max_voxels: int = 0,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self.catalog = catalog
        self.max_voxels = max_voxels
        self.store = store
        self.leases = JobLeases(catalog.db, lease_seconds)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ndex-downsample")
        self.jobs: dict[int, Job] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.keeper: threading.Thread | None = None

    def start_keeper(self) -> None:
        """Renew this process's leases and adopt orphaned jobs, every third of a lease, until close()."""
        self.keeper = threading.Thread(target=self._keep, name="ndex-job-keeper", daemon=True)
        self.keeper.start()

    def start(self, ident: Identity, info: ChannelInfo) -> None:
        status = self.catalog.status(info.id)
        refuse_start(ident, info, status, self.max_voxels)  # type: ignore[arg-type]  # info's row: it has one
        with self.lock:
            stopping = info.id in self.jobs  # a cancelled build here has not reached its next check yet
        if stopping or not self.leases.claim(info.id):
            raise BossError(INVALID_STATE, f"a cancelled downsample of channel {info.channel['name']} is still "
                                           "stopping: retry in a few seconds")
        if not self.catalog.set_status(info.id, "QUEUED", only_if=(status,)):  # type: ignore[arg-type]
            self.leases.release(info.id)
            raise BossError(BAD_REQUEST, START_RACE)
        self._submit(info)

    def _submit(self, info: ChannelInfo) -> None:
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
        if job is not None:
            return job.done, job.total
        if self.catalog.status(chan_id) not in ACTIVE:
            return None
        return self.leases.progress(chan_id)  # running in another process: as of its last renewal

    # --- the keeper ------------------------------------------------------------------------------

    def _keep(self) -> None:
        while True:
            try:
                self._renew_all()
                for chan_id in self.leases.orphans():
                    self._adopt(chan_id)
            except Exception:  # the database may be away for a while: try again next round
                log.exception("renewing or adopting downsample jobs failed")
            if self.stopping.wait(self.leases.seconds / 3):
                return

    def _renew_all(self) -> None:
        with self.lock:
            running = list(self.jobs.items())
        for chan_id, job in running:
            if job.cancel.is_set():
                continue  # stopping, or finished and releasing its lease
            if self.leases.renew(chan_id, job.done, job.total):
                job.renewed = time.monotonic()
            else:
                log.warning("downsample of channel %s: another process took the job over; stopping here", chan_id)
                job.cancel.set()

    def _adopt(self, chan_id: int) -> None:
        info = self._info(chan_id)
        if info is None or not self.leases.claim(chan_id):
            return
        with self.lock:
            if chan_id in self.jobs:
                return
        log.warning("downsample of channel %s was left by a process that stopped: resuming it here", info.key)
        self._submit(info)

    def _info(self, chan_id: int) -> ChannelInfo | None:
        query = (select(collections.c.name, experiments.c.name, channels.c.name)
                 .select_from(channels.join(experiments, experiments.c.id == channels.c.experiment_id)
                              .join(collections, collections.c.id == experiments.c.collection_id))
                 .where(channels.c.id == chan_id))
        with self.catalog.db.begin() as conn:
            names = conn.execute(query).first()
        if names is None:
            return None
        self.catalog.changed()  # the names may be new to this process's cache, or stale in it
        info = self.catalog.channel_info(*names)  # type: ignore[arg-type]  # a Row of three names
        return info if info.id == chan_id else None

    # --- one job ---------------------------------------------------------------------------------

    def _cancelled(self, chan_id: int, job: Job) -> bool:
        if job.cancel.is_set():
            return True
        now = time.monotonic()
        if now - job.renewed > self.leases.seconds * 2 / 3:
            log.warning("downsample of channel %s: its lease was not renewed in time; stopping here", chan_id)
            job.cancel.set()  # the lease may expire before the next renewal: another process may take over
        elif now - job.checked >= DB_CHECK_SECONDS:
            job.checked = now
            if self.catalog.status(chan_id) != "IN_PROGRESS":
                job.cancel.set()
        return job.cancel.is_set()

    def _run(self, info: ChannelInfo, job: Job) -> None:
        try:
            if job.cancel.is_set() or not self.catalog.set_status(info.id, "IN_PROGRESS", only_if=ACTIVE):
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
            job.cancel.set()  # the keeper stops renewing it
            self._drop_if_deleted(info)
            self._release(info.id)  # before leaving self.jobs: start() refuses until both are done
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

    def _release(self, chan_id: int) -> None:
        try:
            self.leases.release(chan_id)
        except Exception:  # an unreleased lease only expires: another process then finds nothing to do
            log.exception("releasing the downsample lease of channel %s failed", chan_id)

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
        self.stopping.set()
        with self.lock:
            for job in self.jobs.values():
                job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


