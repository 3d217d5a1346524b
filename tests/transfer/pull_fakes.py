"""An in-memory stand-in for BossClient, for fast engine tests (the e2e tests use a real ndex serve)."""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from ndex.client import Channel, ChannelInfo, ChannelRef, ClientStats, CoordFrame, Experiment
from ndex.errors import ServerError
from ndex.geometry import Box


class FakeClient:
    """Serves `volume` ((t,) z, y, x) like a BOSS channel; records every request box."""

    def __init__(self, volume: np.ndarray, *, channel_type: str = "image", fail: set[Box] | None = None,
                 voxel_size=(4.0, 4.0, 40.0)) -> None:
        self.volume = volume if volume.ndim == 4 else volume[np.newaxis]
        nt, nz, ny, nx = self.volume.shape
        self.ref = ChannelRef("coll", "exp", "chan")
        datatype = self.volume.dtype.name
        self.info = ChannelInfo(
            self.ref, Channel("chan", channel_type, datatype),
            Experiment("exp", "frame", num_time_samples=nt),
            CoordFrame("frame", 0, nx, 0, ny, 0, nz, *voxel_size, "nanometers"))
        self.fail = set(fail or ())
        self.requests: list[Box] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    @property
    def stats(self) -> ClientStats:
        return ClientStats(requests=len(self.requests))

    def channel_info(self, ref: ChannelRef) -> ChannelInfo:
        return self.info

    def get_cutout(self, ref, res, box: Box, dtype, *, time_range=None, iso=False, filter_ids=None):
        with self.lock:
            self.requests.append(box)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if box in self.fail:
                raise ServerError("simulated failure", status=500)
            t0, t1 = time_range or (0, 1)
            (x0, x1), (y0, y1), (z0, z1) = box.x, box.y, box.z
            data = self.volume[t0:t1, z0:z1, y0:y1, x0:x1].copy()
            return data if time_range else data[0]
        finally:
            with self.lock:
                self.active -= 1

    @contextlib.contextmanager
    def retry_listener(self, listener):
        """The real client tells `listener` about its own retries; this one makes none."""
        yield

    def close(self) -> None:
        pass
