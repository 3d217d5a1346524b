"""An in-memory stand-in for BossClient: BOSS's merge rule, to_black, resources, metadata, downsample.

It answers the calls a push makes with the same models and exceptions as the real client, counts
requests, and can be told to throttle or to store damaged data, so the engine's reactions can be
tested without a server. End-to-end tests use the real client against `ndex serve`.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from ndex.client import Channel, ChannelInfo, ChannelRef, Collection, CoordFrame, Experiment
from ndex.client._http import ClientStats
from ndex.client.models import PYRAMID_KEY
from ndex.config import Remote
from ndex.errors import BadRequest, Conflict, ResourceNotFound, Throttled
from ndex.geometry import Box


@dataclass
class Calls:
    posts: int = 0
    gets: int = 0
    to_black: int = 0


class FakeBoss:
    def __init__(self, url: str = "http://fake.test") -> None:
        self.remote = Remote("http", url.split("://")[-1], "secret-token-123")
        self.collections: dict[str, Collection] = {}
        self.frames: dict[str, CoordFrame] = {}
        self.experiments: dict[tuple[str, str], Experiment] = {}
        self.channels: dict[ChannelRef, Channel] = {}
        self.volumes: dict[ChannelRef, np.ndarray] = {}
        self.metadata: dict[tuple[str, ...], dict[str, str]] = {}
        self.calls = Calls()
        self.posted: list[Box] = []
        self.throttle_posts: int = 0  # the next N posts answer 429
        self.corrupt: set[Box] = set()  # posts of these boxes store the data with one voxel changed (once)
        self.fail_boxes: dict[Box, Exception] = {}
        self.downsample_polls = 0
        self._lock = threading.Lock()

    # --- bookkeeping like the real client ---------------------------------------------------------

    @property
    def stats(self) -> ClientStats:
        c = self.calls
        return ClientStats(requests=c.posts + c.gets + c.to_black)

    def close(self) -> None:
        pass

    @contextmanager
    def retry_listener(self, listener):
        yield  # the fake answers every request at once: there are no retries of its own to hear

    # --- resources ---------------------------------------------------------------------------------

    def get_collection(self, name: str) -> Collection:
        if name not in self.collections:
            raise ResourceNotFound(f"collection {name} not found", status=404, code=4000)
        return self.collections[name]

    def create_collection(self, name: str, description: str = "", public: bool = False) -> Collection:
        self.collections[name] = Collection(name, description)
        return self.collections[name]

    def get_coord_frame(self, name: str) -> CoordFrame:
        if name not in self.frames:
            raise ResourceNotFound(f"frame {name} not found", status=404, code=4000)
        return self.frames[name]

    def create_coord_frame(self, name, x, y, z, voxel_size=(1.0, 1.0, 1.0), voxel_unit="nanometers",
                           description=""):
        self.frames[name] = CoordFrame(name, x[0], x[1], y[0], y[1], z[0], z[1], *map(float, voxel_size),
                                       voxel_unit=voxel_unit)
        return self.frames[name]

    def get_experiment(self, coll: str, name: str) -> Experiment:
        if (coll, name) not in self.experiments:
            raise ResourceNotFound(f"experiment {name} not found", status=404, code=4000)
        return self.experiments[coll, name]

    def create_experiment(self, coll, name, coord_frame, *, num_hierarchy_levels=1,
                          hierarchy_method="anisotropic", **_):
        self.get_collection(coll)
        self.get_coord_frame(coord_frame)
        self.experiments[coll, name] = Experiment(name, coord_frame, coll, num_hierarchy_levels=num_hierarchy_levels,
                                                  hierarchy_method=hierarchy_method)
        return self.experiments[coll, name]

    def get_channel(self, ref: ChannelRef) -> Channel:
        if ref not in self.channels:
            raise ResourceNotFound(f"channel {ref} not found", status=404, code=4000)
        return self.channels[ref]

    def create_channel(self, ref, type, datatype, sources=(), related=(), description="", base_resolution=0,
                       default_time_sample=0):
        self.get_experiment(ref.collection, ref.experiment)
        self.channels[ref] = Channel(ref.channel, type, datatype, ref.experiment, base_resolution=base_resolution,
                                     sources=tuple(sources))
        return self.channels[ref]

    def channel_info(self, ref: ChannelRef) -> ChannelInfo:
        channel = self.get_channel(ref)
        experiment = self.get_experiment(ref.collection, ref.experiment)
        return ChannelInfo(ref, channel, experiment, self.get_coord_frame(experiment.coord_frame))

    def make_channel(self, ref: ChannelRef, datatype: str = "uint8", extent=(1024, 1024, 64)) -> ChannelInfo:
        """Shortcut for tests: collection, frame 0..extent, experiment and channel."""
        self.create_collection(ref.collection)
        frame = f"{ref.collection}_{ref.experiment}"
        self.create_coord_frame(frame, (0, extent[0]), (0, extent[1]), (0, extent[2]))
        self.create_experiment(ref.collection, ref.experiment, frame)
        kind = "annotation" if datatype == "uint64" else "image"
        self.create_channel(ref, kind, datatype)
        return self.channel_info(ref)

    def list_metadata(self, *path) -> list[str]:
        return list(self.metadata.get(tuple(path), {}))

    def set_metadata(self, *path, values) -> None:
        if len(path) == 1 and isinstance(path[0], ChannelRef):
            ref = path[0]
            path = (ref.collection, ref.experiment, ref.channel)
        self.metadata.setdefault(tuple(path), {}).update({k: str(v) for k, v in values.items()})

    def record_pyramid(self, ref: ChannelRef) -> None:
        self.set_metadata(ref, values={PYRAMID_KEY: "now"})

    def pyramid_recorded(self, ref: ChannelRef) -> bool:
        return PYRAMID_KEY in self.list_metadata(ref.collection, ref.experiment, ref.channel)

    def start_downsample(self, ref: ChannelRef) -> None:
        channel = self.get_channel(ref)
        if channel.downsample_status in ("QUEUED", "IN_PROGRESS"):
            raise Conflict("downsample already running", status=409, code=2006)
        self.channels[ref] = replace(channel, downsample_status="IN_PROGRESS")

    def downsample_status(self, ref: ChannelRef, iso: bool = False) -> dict:
        self.downsample_polls += 1
        channel = self.get_channel(ref)
        if channel.downsample_status == "IN_PROGRESS" and self.downsample_polls >= 3:
            self.channels[ref] = channel = replace(channel, downsample_status="DOWNSAMPLED")
        return {"status": channel.downsample_status, "num_hierarchy_levels": 1}

    # --- cutouts -------------------------------------------------------------------------------------

    def volume(self, ref: ChannelRef) -> np.ndarray:
        """The whole stored channel as (z, y, x), frame origin at index 0."""
        if ref not in self.volumes:
            info = self.channel_info(ref)
            self.volumes[ref] = np.zeros(info.frame.box.shape_zyx, info.dtype)
        return self.volumes[ref]

    def _slices(self, ref: ChannelRef, box: Box):
        info = self.channel_info(ref)
        info.check_box(box, 0)
        return box.slices_in(info.frame.box)

    def post_cutout(self, ref, res, box, data, *, time_range=None, iso=False) -> None:
        with self._lock:
            self.calls.posts += 1
            if self.throttle_posts > 0:
                self.throttle_posts -= 1
                raise Throttled("slow down", retry_after=0.01, status=429)  # a gateway's: with Retry-After
            if box in self.fail_boxes:
                raise self.fail_boxes[box]
            if data.dtype != self.channel_info(ref).dtype:
                raise BadRequest("datatype does not match", status=400, code=2001)
            data = np.array(data)
            if box in self.corrupt:
                self.corrupt.discard(box)
                data.flat[0] = data.flat[0] + 1
            target = self.volume(ref)[self._slices(ref, box)]
            np.copyto(target, data, where=data != 0)  # BOSS's merge: zeros keep what is stored
            self.posted.append(box)

    def get_cutout(self, ref, res, box, dtype, *, time_range=None, iso=False, filter_ids=None) -> np.ndarray:
        with self._lock:
            self.calls.gets += 1
            return self.volume(ref)[self._slices(ref, box)].copy()

    def cutout_to_black(self, ref, res, box, time_range=None, *, iso=False) -> None:
        with self._lock:
            self.calls.to_black += 1
            self.volume(ref)[self._slices(ref, box)] = 0
