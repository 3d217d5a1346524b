"""What every output records about the pull that made it, and the physical placement of its voxels.

A file found on a disk a year later should say where it came from: the server (its URL, never a
token), the channel, the region and level, the time range and the ndex that wrote it. Each format
keeps that record in its own metadata: OME-Zarr in the group's attributes (`ndex`), precomputed in
its `info` (`ndex`), a TIFF stack in its ImageDescription (JSON, or OME-XML's Description and a
MapAnnotation), a TIFF slice in its own ImageDescription.

Placement: voxel i of a level lies at i x the level's voxel size, in every output: OME-Zarr's
translation, precomputed's voxel_offset and TIFF's plane positions. It is the rule the server's own
/zarr/ uses (translation 0, array index = BOSS coordinate at that level) and neuroglancer's, so a
pulled region and a level of the server's pyramid line up wherever they are opened together.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ndex import __version__
from ndex.geometry import Box
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import units

# BOSS voxel unit -> nanometres per unit (precomputed's resolution is always in nm)
NANOMETERS = {"nanometers": 1.0, "micrometers": 1e3, "millimeters": 1e6, "centimeters": 1e7}
TIFF_UNIT_PER_CM = {"nanometers": 1e7, "micrometers": 1e4, "millimeters": 10.0, "centimeters": 1.0}


def public_url(url: str | None) -> str | None:
    """The server URL without user info, query or fragment: nothing secret is ever written to a file."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def source_record(url: str | None, ref: Any, *, iso: bool = False, channel_type: str | None = None) -> dict:
    """The pull's source as `OutputSpec.extra["source"]` carries it: server, channel, its type, iso."""
    return {"url": public_url(url), "collection": ref.collection, "experiment": ref.experiment,
            "channel": ref.channel, "channel_type": channel_type, "iso": bool(iso)}


def box_record(box: Box) -> dict:
    return {axis: [lo, hi] for axis, lo, hi in zip("xyz", box.start, box.stop)}


def pull_record(spec: OutputSpec) -> dict:
    """Everything about the pull of `spec` that its output keeps (JSON-able)."""
    source: Mapping[str, Any] = spec.extra.get("source") or {}
    times = None if spec.time_points is None else [min(spec.times), max(spec.times) + 1]  # type: ignore[type-var, operator]  # time_points given: ints
    return {"written_by": f"ndex {__version__}", "source": dict(source), "resolution": spec.resolution,
            "region": box_record(spec.box), "time_range": times, "voxel_size": [float(v) for v in spec.voxel_size],
            "voxel_unit": spec.voxel_unit, "dtype": str(spec.dtype)}


def unit_key(spec: OutputSpec) -> str:
    """The spec's BOSS unit in its canonical plural form ('nanometer' -> 'nanometers'); checked."""
    units(spec)
    key = spec.voxel_unit.strip().lower()
    return key if key.endswith("s") else key + "s"


def corner_origin(spec: OutputSpec) -> tuple[float, float, float]:
    """Physical position (x, y, z) of the region's first voxel: its index times the level's voxel size."""
    return tuple(lo * float(v) for lo, v in zip(spec.box.start, spec.voxel_size))  # type: ignore[return-value]


def resolution_nm(spec: OutputSpec) -> list[float]:
    """The level's voxel size (x, y, z) in nanometres."""
    per = NANOMETERS[unit_key(spec)]
    return [float(v) * per for v in spec.voxel_size]


# --- TIFF ------------------------------------------------------------------------------------------


def tiff_resolution(spec: OutputSpec) -> dict:
    """tifffile write() arguments for XResolution / YResolution: pixels per centimetre of this level."""
    per_cm = TIFF_UNIT_PER_CM[unit_key(spec)]
    vx, vy, _ = (float(v) for v in spec.voxel_size)
    return {"resolution": (per_cm / vx, per_cm / vy), "resolutionunit": "CENTIMETER"}


def tiff_stack_metadata(spec: OutputSpec, metadata: dict, *, ome: bool) -> dict:
    """`metadata` (what the stack writer chose) plus the pull's record and, for OME, every plane's position."""
    record = pull_record(spec)
    if not ome:  # tifffile writes these keys into the stack's JSON ImageDescription
        return {**metadata, "ndex": record}
    symbol, _ = units(spec)
    x0, y0, z0 = corner_origin(spec)
    vz = float(spec.voxel_size[2])
    depths = [z0 + z * vz for _ in spec.times for z in range(spec.box.shape[2])]  # OME planes in (t, z) order
    n = len(depths)
    plane = {"PositionX": [x0] * n, "PositionXUnit": [symbol] * n, "PositionY": [y0] * n,
             "PositionYUnit": [symbol] * n, "PositionZ": depths, "PositionZUnit": [symbol] * n}
    flat = {f"ndex.{k}": _text(v) for k, v in record.items()}
    return {**metadata, "Plane": plane, "Description": f"pulled by ndex: {_text(record)}",
            "MapAnnotation": {"Namespace": "ndex/pull", **flat}}


def tiff_slice_tags(spec: OutputSpec, z: int, t: int | None) -> dict:
    """tifffile imwrite() arguments for one slice: resolution tags and a JSON description naming its place."""
    x0, y0, _ = corner_origin(spec)
    record = {**pull_record(spec), "z": z, "t": t, "position": [x0, y0, z * float(spec.voxel_size[2])]}
    return {"description": json.dumps({"ndex": record}, sort_keys=True), **tiff_resolution(spec)}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
