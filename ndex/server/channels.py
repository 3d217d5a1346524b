"""A channel resolved with its experiment and frame: what the data routes need, as one frozen value.

It knows the channel's resolution levels, its extent per level and the `ChannelLayout` the volume
store takes. Names never reach the store: data lives under the channel's `store_key`, drawn at random
when the channel is created and never handed out again, so a channel created after a DELETE (under any
name, in any collection, even in a database recreated beside the old store) reads zeros.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ndex.geometry import Box, iso_level
from ndex.server.layout import ChannelLayout
from ndex.server.volumes import VolumeStore


def new_store_key() -> str:
    """A fresh key for a new channel: 128 random bits (the column is UNIQUE as well)."""
    return "ch-" + secrets.token_hex(16)


def store_key(channel: dict[str, Any], iso: bool = False) -> str:
    """Where a channel's arrays live in the volume store: under its own key, never its name or id; the
    isotropic pyramid of an anisotropic experiment beside them."""
    return channel["store_key"] + ("-iso" if iso else "")


def drop_data(store: VolumeStore, channel: dict[str, Any]) -> None:
    """Delete every array a channel may have written (both pyramids) from the volume store."""
    for key in (store_key(channel), store_key(channel, iso=True)):
        store.delete(key)


@dataclass(frozen=True)
class ChannelInfo:
    collection: dict[str, Any]
    experiment: dict[str, Any]
    frame: dict[str, Any]
    channel: dict[str, Any]

    @property
    def id(self) -> int:
        return self.channel["id"]

    @property
    def key(self) -> str:
        return store_key(self.channel)

    @property
    def annotation(self) -> bool:
        return self.channel["type"] == "annotation"

    @property
    def datatype(self) -> str:
        return self.channel["datatype"]

    @property
    def base(self) -> int:
        return self.channel["base_resolution"]

    @property
    def num_levels(self) -> int:
        """Store levels 0 .. base + num_hierarchy_levels - 1 (BOSS addresses base .. base + n - 1)."""
        return self.base + self.experiment["num_hierarchy_levels"]

    @property
    def isotropic(self) -> bool:
        return self.experiment["hierarchy_method"] == "isotropic"

    @property
    def iso_level(self) -> int:
        return 0 if self.isotropic else iso_level(self.frame["x_voxel_size"], self.frame["z_voxel_size"])

    def uses_iso(self, res: int, iso: bool) -> bool:
        """`iso=true` matters only for anisotropic experiments above the iso level."""
        return iso and not self.isotropic and res > self.iso_level

    def z_scaled(self, iso: bool = False) -> tuple[bool, ...]:
        if self.isotropic:
            return (True,) * (self.num_levels - 1)
        if iso:
            return tuple(r > self.iso_level for r in range(1, self.num_levels))
        return (False,) * (self.num_levels - 1)

    @property
    def top_built(self) -> int:
        """Highest level a downsample builds: num_hierarchy_levels - 1, as BOSS's step function does
        (levels base+1 .. n-1 from base; levels n .. base+n-1 are addressable but hold no pyramid)."""
        return self.experiment["num_hierarchy_levels"] - 1

    def store_levels(self, iso: bool = False) -> int:
        """The store's `levels`: how many levels a downsample from base (or from the iso level) builds,
        up to `top_built`; none beyond the first when base >= n - 1."""
        return max(1, self.top_built + 1 - (self.iso_level if iso else self.base))

    def layout(self, iso: bool = False) -> ChannelLayout:
        f = self.frame
        return ChannelLayout(
            key=store_key(self.channel, iso), dtype=self.datatype,
            extent=(f["x_stop"], f["y_stop"], f["z_stop"]),
            time_samples=self.experiment["num_time_samples"], levels=self.store_levels(iso),
            z_scaled=self.z_scaled(iso), voxel_size=(f["x_voxel_size"], f["y_voxel_size"], f["z_voxel_size"]),
            voxel_unit=f["voxel_unit"], annotation=self.annotation,
            names=(self.collection["name"], self.experiment["name"], self.channel["name"]))

    def extent_at(self, res: int, iso: bool = False) -> tuple[int, int, int]:
        """(x, y, z) size of level `res` (< num_levels): ceil halving from the frame's stop values."""
        return self.layout(iso).level_shape(res)

    def voxel_size_at(self, res: int, iso: bool = False) -> tuple[float, float, float]:
        f = self.frame
        return tuple(f[f"{a}_voxel_size"] * k for a, k in zip("xyz", self.layout(iso).factors(res)))  # type: ignore[return-value]

    @property
    def frame_box(self) -> Box:
        """The addressable region of every level: the level-0 frame, unscaled. BOSS checks a cutout at
        any resolution against it (bosscore/request.py, marked there as a known bug); what a coarser
        level's box covers beyond that level's data reads as zeros."""
        f = self.frame
        return Box(tuple(max(0, f[f"{a}_start"]) for a in "xyz"), tuple(f[f"{a}_stop"] for a in "xyz"))  # type: ignore[arg-type]

    def data_box(self, res: int, iso: bool = False) -> Box:
        """Where level `res` can hold voxels: from 0 to its extent (ceil halving of the frame's stop)."""
        return Box((0, 0, 0), self.extent_at(res, iso))

    @property
    def xy_voxels_differ(self) -> bool:
        """BOSS cannot find the isotropic level of an anisotropic experiment whose x and y voxel sizes
        differ (spdb get_isotropic_level raises): it can neither downsample it nor report its pyramid."""
        return not self.isotropic and self.frame["x_voxel_size"] != self.frame["y_voxel_size"]
