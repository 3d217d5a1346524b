"""BOSS resources as frozen values, parsed once from the server's JSON (boss-api.md section 2).

`ChannelRef` names a channel; `ChannelInfo` bundles a channel with its experiment and coordinate
frame and answers the questions a transfer asks before moving a voxel: which dtype, which extent and
voxel size at a resolution level, and whether a level, box or time range can be served at all.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ndex.codecs import dtype_of
from ndex.errors import OutOfBounds, RemoteError, UsageError
from ndex.geometry import Box, box_at_res, clamp_to_start, downsample_blocker, iso_level, voxel_size_at_res

NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # BOSS's model regex; also keeps names URL-safe
DOWNSAMPLED = "DOWNSAMPLED"
BUILDING = ("QUEUED", "IN_PROGRESS")  # BOSS's statuses of a downsample not finished yet
PYRAMID_KEY = "ndex_pyramid_built"  # channel metadata ndex sets when a downsample it waited for finished
MAX_RESOLUTION = 9  # BOSS routes take a single-digit resolution


def check_name(kind: str, name: Any) -> str:
    """`name` if BOSS accepts it as a resource name; a UsageError saying what is allowed otherwise."""
    if not isinstance(name, str) or not NAME.match(name):
        raise UsageError(f"{kind} name {name!r} is not valid: use 1 to 255 letters, digits, '_' or '-'")
    return name


def _from_json(cls: type, kind: str, data: Any, coerce: Mapping[str, Callable[[Any], Any]]) -> Any:
    """Build dataclass `cls` from a JSON object: required fields must be present, lists become tuples."""
    if not isinstance(data, Mapping):
        raise RemoteError(f"the server described a {kind} with {type(data).__name__}, not a JSON object")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data or data[f.name] is None and f.name in coerce:
            if f.default is dataclasses.MISSING:
                raise RemoteError(f"the server's {kind} description lacks the field {f.name!r}")
            continue
        value = data[f.name]
        try:
            values[f.name] = coerce[f.name](value) if f.name in coerce else value
        except (TypeError, ValueError):
            raise RemoteError(f"the server's {kind} field {f.name!r} has an unusable value {value!r}") from None
    return cls(**values)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


TEXT = {"description": str, "creator": str}  # BOSS may send null for these; null keeps the default


@dataclass(frozen=True)
class Collection:
    name: str
    description: str = ""
    public: bool = False
    experiments: tuple[str, ...] = ()
    creator: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Collection:
        return _from_json(cls, "collection", data, {"public": bool, "experiments": _names, **TEXT})


@dataclass(frozen=True)
class CoordFrame:
    name: str
    x_start: int
    x_stop: int
    y_start: int
    y_stop: int
    z_start: int
    z_stop: int
    x_voxel_size: float = 1.0
    y_voxel_size: float = 1.0
    z_voxel_size: float = 1.0
    voxel_unit: str = "nanometers"
    description: str = ""

    @classmethod
    def from_json(cls, data: Any) -> CoordFrame:
        ints = {f"{a}_{e}": int for a in "xyz" for e in ("start", "stop")}
        floats = {f"{a}_voxel_size": float for a in "xyz"}
        return _from_json(cls, "coordinate frame", data, {**ints, **floats, **TEXT})

    @property
    def box(self) -> Box:
        """The frame's extent at resolution 0."""
        return Box((self.x_start, self.y_start, self.z_start), (self.x_stop, self.y_stop, self.z_stop))

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return self.x_voxel_size, self.y_voxel_size, self.z_voxel_size


@dataclass(frozen=True)
class Experiment:
    name: str
    coord_frame: str
    collection: str = ""
    description: str = ""
    public: bool = False
    num_hierarchy_levels: int = 1
    hierarchy_method: str = "anisotropic"
    num_time_samples: int = 1
    time_step: int | None = None
    time_step_unit: str | None = None
    channels: tuple[str, ...] = ()
    creator: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Experiment:
        return _from_json(cls, "experiment", data, {
            "public": bool, "num_hierarchy_levels": int, "num_time_samples": int, "channels": _names,
            "coord_frame": str, "collection": str, **TEXT})


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    datatype: str
    experiment: str = ""
    description: str = ""
    public: bool = False
    base_resolution: int = 0
    default_time_sample: int = 0
    sources: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    downsample_status: str = "NOT_DOWNSAMPLED"
    creator: str = ""
    storage_type: str = "spdb"  # BOSS: "spdb", or "cloudvol" for a channel served from a CloudVolume
    bucket: str | None = None  # null: BOSS's default cuboid bucket
    cv_path: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Channel:
        return _from_json(cls, "channel", data, {
            "public": bool, "base_resolution": int, "default_time_sample": int,
            "sources": _names, "related": _names, "experiment": str, "downsample_status": str,
            "storage_type": str, **TEXT})


@dataclass(frozen=True)
class ChannelRef:
    """Which channel: collection, experiment and channel names (validated, so always URL-safe)."""

    collection: str
    experiment: str
    channel: str

    def __post_init__(self) -> None:
        for kind in ("collection", "experiment", "channel"):
            check_name(kind, getattr(self, kind))

    @classmethod
    def parse(cls, text: str) -> ChannelRef:
        """'coll/exp/chan' or 'bossdb://coll/exp/chan'."""
        parts = re.sub(r"^(bossdb|boss)://", "", text.strip()).strip("/").split("/")
        if len(parts) != 3:
            raise UsageError(f"{text!r} does not name a channel: write collection/experiment/channel")
        return cls(*parts)

    @property
    def path(self) -> str:
        """'coll/exp/chan', the form cutout and metadata URLs use."""
        return f"{self.collection}/{self.experiment}/{self.channel}"

    @property
    def prefix(self) -> str:
        """'coll_exp_chan', the prefix of ndex 1.x output file names."""
        return f"{self.collection}_{self.experiment}_{self.channel}"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class ChannelInfo:
    """A channel with its experiment and frame: dtype, per-level geometry and request checks."""

    ref: ChannelRef
    channel: Channel
    experiment: Experiment
    frame: CoordFrame

    @property
    def dtype(self) -> np.dtype:
        try:
            return dtype_of(self.channel.datatype)
        except ValueError as exc:
            raise UsageError(f"channel {self.ref}: {exc}") from None

    @property
    def isotropic(self) -> bool:
        return self.experiment.hierarchy_method == "isotropic"

    @property
    def levels(self) -> range:
        """The resolution levels BOSS accepts requests for: base .. base + num_hierarchy_levels - 1."""
        base = self.channel.base_resolution
        return range(base, base + self.experiment.num_hierarchy_levels)

    @property
    def data_levels(self) -> range:
        """The levels that can hold data: the base, and those a downsample builds, base + 1 .. n - 1
        (boss-tools stops at num_hierarchy_levels, not at base + n). The levels n .. base + n - 1 that
        BOSS accepts for a base resolution > 0 are never written and read as zeros."""
        base = self.channel.base_resolution
        return range(base, max(base + 1, self.experiment.num_hierarchy_levels))

    def downsample_blocker(self) -> str | None:
        """Why BOSS cannot downsample this channel, or None."""
        return downsample_blocker(self.experiment.hierarchy_method, self.frame.voxel_size)

    def iso_level(self) -> int:
        """First level whose x voxel size best matches z (boss-api.md 3.7); 0 for isotropic experiments."""
        vx, _, vz = self.frame.voxel_size
        if self.isotropic or vx <= 0 or vz <= 0:
            return 0
        return iso_level(vx, vz)

    def _stages(self, res: int, iso: bool) -> tuple[tuple[int, bool], ...]:
        """How level `res` is reached from level 0, as (levels, z halves) stages: z halves on every step
        of an isotropic hierarchy and on none of an anisotropic one, except that its `iso` copy halves
        x, y up to the iso level, then x, y and z together."""
        if self.isotropic or not iso or res <= self.iso_level():
            return ((res, self.isotropic),)
        level = self.iso_level()
        return ((level, False), (res - level, True))

    def box_at(self, box: Box, res: int, iso: bool = False) -> Box:
        """A resolution-0 box mapped to level `res` (start floored, stop rounded up)."""
        for levels, z_scaled in self._stages(res, iso):
            box = box_at_res(box, levels, z_scaled)
        return box

    def level_extent(self, res: int, iso: bool = False) -> Box | None:
        """What level `res` serves: the frame scaled to the level, its start clamped to the level-0 start
        (BOSS checks every level against the level-0 frame); None if the level ends before that start."""
        return clamp_to_start(self.box_at(self.frame.box, res, iso), self.frame.box.start)

    def extent_at(self, res: int, iso: bool = False) -> Box:
        """The addressable extent of level `res`; OutOfBounds if the level has none."""
        extent = self.level_extent(res, iso)
        if extent is None:
            scaled = self.box_at(self.frame.box, res, iso)
            raise OutOfBounds(f"resolution {res} of {self.ref} cannot be read: BOSS checks every level against "
                              f"the level-0 frame start {self.frame.box.start}, and at this level the frame ends "
                              f"at {scaled.stop}: use a lower resolution")
        return extent

    def voxel_size_at(self, res: int, iso: bool = False) -> tuple[float, float, float]:
        voxel = self.frame.voxel_size
        for levels, z_scaled in self._stages(res, iso):
            voxel = voxel_size_at_res(voxel, levels, z_scaled)
        return voxel

    def is_built(self, res: int) -> bool:
        """Whether level `res` holds the current data: the base level always, the levels a downsample
        builds while the status is DOWNSAMPLED (any later write resets it on BOSS)."""
        base = self.channel.base_resolution
        return res == base or (res in self.data_levels and self.channel.downsample_status == DOWNSAMPLED)

    def check_res(self, res: int, *, built_before: bool = False) -> None:
        """OutOfBounds unless level `res` exists and holds data. `built_before`: an earlier downsample is
        known to have finished, so a level whose status was since reset is stale, not missing
        (`stale_warning` says so)."""
        levels, status = self.levels, self.channel.downsample_status
        if res not in levels or res > MAX_RESOLUTION:
            raise OutOfBounds(f"resolution {res} is outside channel {self.ref}'s hierarchy: use "
                              f"{levels.start} to {min(levels.stop - 1, MAX_RESOLUTION)}")
        if res not in self.data_levels:
            raise OutOfBounds(f"resolution {res} of channel {self.ref} never holds data: BOSS builds levels "
                              f"{self.data_levels.start} to {self.data_levels.stop - 1} of this hierarchy "
                              f"(base {levels.start}, {self.experiment.num_hierarchy_levels} levels) and reads "
                              "the others as zeros")
        if not self.is_built(res) and not built_before:
            raise OutOfBounds(f"resolution {res} of channel {self.ref} has never been built (downsample status "
                              f"{status}): run a downsample of the channel first (ndpush --downsample), "
                              f"or use resolution {levels.start}")

    def stale_warning(self, res: int) -> str | None:
        """A warning when level `res` was built by an earlier downsample but may miss later writes."""
        status = self.channel.downsample_status
        if self.is_built(res) or res not in self.data_levels:
            return None
        why = ("a downsample is rebuilding it" if status in BUILDING else
               "the last downsample failed" if status == "FAILED" else "data was written after the last downsample")
        return (f"resolution {res} of {self.ref} may be stale: {why} (status {status}); "
                "run a downsample (ndpush --downsample) to bring it up to date")

    def check_box(self, box: Box, res: int, iso: bool = False) -> None:
        """OutOfBounds naming the first axis on which `box` leaves the frame at level `res`."""
        extent = self.extent_at(res, iso)
        for axis, (lo, hi), (elo, ehi) in zip("xyz", (box.x, box.y, box.z), (extent.x, extent.y, extent.z)):
            if lo < elo or hi > ehi:
                raise OutOfBounds(f"{axis} range {lo}:{hi} lies outside the coordinate frame "
                                  f"{self.frame.name!r} of {self.ref} at resolution {res}, whose {axis} range "
                                  f"is {elo}:{ehi}" + (" (BOSS refuses anything below the level-0 start at "
                                                       "every level)" if lo < elo and res else ""))

    def check_time(self, time_range: tuple[int, int]) -> None:
        """OutOfBounds unless time_range lies inside [0, num_time_samples)."""
        t0, t1 = time_range
        n = self.experiment.num_time_samples
        if not 0 <= t0 < t1 <= n:
            raise OutOfBounds(f"time range {t0}:{t1} is outside experiment {self.experiment.name!r}, "
                              f"which has time samples 0:{n}")
