"""What the metadata of an OME-Zarr, N5 or neuroglancer precomputed volume says: which array holds the
requested level (and, for BigDataViewer, channel and time point), its axes, voxel size, unit and offset.

    OME-Zarr   zarr.json (v3, NGFF 0.5: attributes.ome.multiscales) or .zattrs (v2, NGFF 0.4: multiscales);
               a plain zarr array (zarr.json node_type array, or .zarray) is read as one level
    N5         attributes.json: a dataset (dimensions), a multiscale group (s0, s1, ...), or BigDataViewer's
               setup<c>/timepoint<t>/s<level>; resolution from transform (COSEM), pixelResolution or
               resolution/units, times downsamplingFactors
    precomputed  info: scales[level] (resolution in nm, voxel_offset, encoding)

Offsets are voxels of the chosen level (NGFF's physical translation divided by the level's scale);
arrays are read from 0, whatever origin tensorstore gives them. Nothing here reads voxels.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ndex.errors import BadInput, OutOfBounds, UsageError
from ndex.sources.ts_store import child, read_bytes, read_json, where

XYZ = ("x", "y", "z")
# tensorstore reads these; cloud-volume's own encodings (fpzip, zfpc, kempressed) it does not
PRECOMPUTED_ENCODINGS = ("raw", "jpeg", "png", "compressed_segmentation")
DEFAULT_AXES = {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}  # zarr arrays without names, C order
METERS = {"angstrom": 1e-10, "picometer": 1e-12, "nanometer": 1e-9, "micrometer": 1e-6, "millimeter": 1e-3,
          "centimeter": 1e-2, "decimeter": 1e-1, "meter": 1.0}
UNIT_ALIASES = {"a": "angstrom", "å": "angstrom", "pm": "picometer", "nm": "nanometer", "um": "micrometer",
                "µm": "micrometer", "μm": "micrometer", "micron": "micrometer", "mm": "millimeter",
                "cm": "centimeter", "dm": "decimeter", "m": "meter"}
BOSS_UNITS = {"nanometer": "nanometers", "micrometer": "micrometers", "millimeter": "millimeters",
              "centimeter": "centimeters"}


@dataclass(frozen=True)
class Located:
    """One array of a volume, with what its metadata says about it."""

    spec: dict[str, Any]  # tensorstore spec of the array
    name: str  # where it is, for messages: URL and path
    kind: str  # "OME-Zarr 0.5", "N5 (BigDataViewer)", "precomputed jpeg", ...
    axes: tuple[str, ...]  # per array dimension: x, y, z, t (time), c (channel) or "" (other)
    levels: int
    voxel_size: tuple[float, float, float] | None = None  # x, y, z in `unit`
    unit: str | None = None  # a BOSS voxel unit
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # x, y, z in voxels of this level
    channel_labels: tuple[str, ...] = ()
    channels: int | None = None  # BigDataViewer: setups (None: the c axis tells)
    time_points: int | None = None  # BigDataViewer: time point groups (None: the t axis tells)


Size = tuple[float, float, float]


def boss_unit(unit: str | None, sizes: Size | None) -> tuple[str | None, Size | None]:
    """A BOSS unit and the sizes in it: NGFF / N5 unit names and abbreviations, others converted."""
    if not unit or sizes is None:
        return None, sizes  # a unit without sizes says nothing the push can use
    name = UNIT_ALIASES.get(unit.strip().lower(), unit.strip().lower()).removesuffix("s")
    if name in BOSS_UNITS:
        return BOSS_UNITS[name], sizes
    if name not in METERS:
        raise BadInput(f"unknown length unit {unit!r} in the volume's metadata: give --voxel_size and --voxel_unit")
    target = "nanometer" if METERS[name] < 1e-9 else "centimeter"
    factor = METERS[name] / METERS[target]
    return BOSS_UNITS[target], (sizes[0] * factor, sizes[1] * factor, sizes[2] * factor)


# the file that marks each format's volume, so a volume given under the wrong --datasource is named
MARKERS = (("zarr", ("zarr.json", ".zattrs", ".zarray")), ("n5", ("attributes.json",)), ("precomputed", ("info",)))


def not_found(store: dict[str, Any], datasource: str, text: str) -> BadInput:
    """BadInput for a --source without `datasource`'s metadata: `text`, unless the directory does not exist
    (a path, or a URL whose scheme was left out) or holds another format's volume (the --datasource to use)."""
    path = store["path"].rstrip("/")
    if store["driver"] == "file" and os.path.isfile(path):
        xml = " (a BigDataViewer dataset.xml is read with --datasource n5)" if path.lower().endswith(".xml") else ""
        return BadInput(f"{path} is a file: --source must name the volume's directory{xml}")
    if store["driver"] == "file" and not os.path.isdir(path):
        return BadInput(f"{where(store)} does not exist: fix --source (a URL needs its scheme: s3://, gs://, "
                        "http(s)://)")
    for other, names in MARKERS:
        found = next((n for n in names if other != datasource and read_bytes(store, n) is not None), None)
        if found:
            return BadInput(f"{where(store)} is not a volume of --datasource {datasource} but looks like {other} "
                            f"(it has {found}): use --datasource {other}")
    return BadInput(text)


def check_level(level: int, count: int, name: str) -> None:
    if not 0 <= level < count:
        raise OutOfBounds(f"--source_level {level} does not exist: {name} has levels 0 to {count - 1}")


# --- OME-Zarr / zarr ------------------------------------------------------------------------------


def locate_zarr(store: dict[str, Any], level: int) -> Located:
    v3 = read_json(store, "zarr.json")
    if v3 is not None:
        if v3.get("node_type") == "array":
            return _plain_array(store, level, "zarr3", tuple(v3.get("dimension_names") or ()), "zarr v3 array")
        ome = (v3.get("attributes") or {}).get("ome") or {}
        if _series_root(ome):
            return locate_zarr(child(store, "0"), level)
        return _ome(store, level, ome, "zarr3", f"OME-Zarr {ome.get('version', '0.5')}")
    if read_json(store, ".zarray") is not None:
        return _plain_array(store, level, "zarr", (), "zarr v2 array")
    attrs = read_json(store, ".zattrs")
    if attrs is None:
        raise not_found(store, "zarr", f"{where(store)} has no zarr.json, .zattrs or .zarray: --source must name an "
                        "OME-Zarr image (the group with the multiscales metadata) or a zarr array")
    if _series_root(attrs):
        return locate_zarr(child(store, "0"), level)
    version = (attrs.get("multiscales") or [{}])[0].get("version", "0.4")
    return _ome(store, level, attrs, "zarr", f"OME-Zarr {version}")


def _series_root(attrs: dict[str, Any]) -> bool:
    """bioformats2raw's root (images in 0/, 1/, ...): its first image is read, as OME-Zarr viewers open it."""
    return "bioformats2raw.layout" in attrs and not attrs.get("multiscales")


def _plain_array(store: dict[str, Any], level: int, driver: str, names: tuple, kind: str) -> Located:
    check_level(level, 1, f"the {kind} {where(store)}")
    spec = {"driver": driver, "kvstore": store}
    return Located(spec, where(store), kind, tuple(str(n or "").lower() for n in names), 1)


def _ome(store: dict[str, Any], level: int, attrs: dict[str, Any], driver: str, kind: str) -> Located:
    multiscales = attrs.get("multiscales")
    if not multiscales:
        raise BadInput(f"{where(store)} is a zarr group without OME-Zarr multiscales metadata: point --source at "
                       "the image group (the one whose metadata lists the levels) or at one array")
    ms = multiscales[0]
    datasets = ms.get("datasets") or []
    check_level(level, len(datasets), f"the OME-Zarr image {where(store)}")
    axes = tuple(_axis_name(a) for a in ms.get("axes") or "tczyx"[5 - len(ms.get("axes") or "tczyx"):])
    scale, translation = _ngff_transform(datasets[level].get("coordinateTransformations") or [], len(axes))
    outer_scale, outer_translation = _ngff_transform(ms.get("coordinateTransformations") or [], len(axes))
    scale = [a * b for a, b in zip(scale, outer_scale)]
    translation = [t * s + o for t, s, o in zip(translation, outer_scale, outer_translation)]
    size = _xyz([scale[axes.index(a)] if a in axes else 1.0 for a in XYZ])
    offset = _xyz([translation[axes.index(a)] / scale[axes.index(a)] if a in axes else 0.0 for a in XYZ])
    units = {str(a["unit"]) for a in ms.get("axes") or [] if isinstance(a, dict) and a.get("unit")
             and _axis_name(a) in XYZ}
    if len(units) > 1:
        raise BadInput(f"{where(store)} has x, y and z in different units ({', '.join(sorted(units))}): give "
                       "--voxel_size and --voxel_unit")
    unit, converted = boss_unit(units.pop() if units else None, size)
    labels = tuple(str(c.get("label", "")) for c in (attrs.get("omero") or {}).get("channels") or [])
    path = datasets[level]["path"]
    return Located({"driver": driver, "kvstore": child(store, path)}, f"{where(store)} level {level} ('{path}')",
                   kind, axes, len(datasets), converted, unit, offset, labels)


def _xyz(values: list[float]) -> Size:
    return values[0], values[1], values[2]


def _axis_name(axis: Any) -> str:
    """NGFF 0.4+ axes are objects (name, type), 0.3's plain names: time and channel axes become t and c."""
    if isinstance(axis, dict):
        kind = axis.get("type")
        if kind in ("time", "channel"):
            return kind[0]
        axis = axis.get("name", "")
    return str(axis).lower()


def _ngff_transform(transforms: list[dict[str, Any]], ndim: int) -> tuple[list[float], list[float]]:
    scale, translation = [1.0] * ndim, [0.0] * ndim
    for t in transforms:
        if t.get("type") == "scale" and "scale" in t:
            scale = [float(v) for v in t["scale"]]
        elif t.get("type") == "translation" and "translation" in t:
            translation = [float(v) for v in t["translation"]]
    return scale, translation


# --- N5 ---------------------------------------------------------------------------------------------


def locate_n5(store: dict[str, Any], level: int, channel: int | None, time: int | None,
              time_ids: tuple[int, ...] | None = None) -> Located:
    """`time_ids`: a BigDataViewer dataset's time point ids (its XML's), which need not start at 0; time
    index i reads timepoint<time_ids[i]>. Without them, timepoint0, 1, ... are counted."""
    attrs = read_json(store, "attributes.json")
    if attrs is None:
        raise not_found(store, "n5", f"{where(store)} has no attributes.json: --source must name an N5 dataset, a "
                        "multiscale group (s0, s1, ...) or a BigDataViewer N5 root")
    if "dimensions" in attrs:
        check_level(level, 1, f"the N5 dataset {where(store)}")
        return _n5_dataset(store, [attrs], "N5 dataset", 1, [])
    if any(read_json(store, f"setup{c}/attributes.json") is not None for c in {0, channel or 0}):
        return _bdv(store, attrs, level, channel, time, time_ids)
    count = _count(store, "s{}/attributes.json")
    if not count:
        raise BadInput(f"{where(store)} is an N5 group without datasets: point --source at a dataset, a "
                       "multiscale group (s0, s1, ...) or a BigDataViewer N5 root (setup0/timepoint0/s0)")
    check_level(level, count, f"the N5 multiscale group {where(store)}")
    sub = child(store, f"s{level}")
    return _n5_dataset(sub, [read_json(sub, "attributes.json") or {}, attrs], "N5 multiscale", count, [])


def _bdv(store: dict[str, Any], root: dict[str, Any], level: int, channel: int | None, time: int | None,
         time_ids: tuple[int, ...] | None) -> Located:
    setups = _count(store, "setup{}/attributes.json")
    if channel is not None and read_json(store, f"setup{channel}/attributes.json") is not None:
        c = channel  # setup ids need not run from 0 without a gap: BigStitcher keeps the ids of removed views
    else:
        c = pick(channel, setups, None, (), "channel", f"the BigDataViewer N5 {where(store)} (setups)")
    ids = time_ids or tuple(range(_count(store, f"setup{c}/timepoint{{}}/s0/attributes.json")))
    points = len(ids)
    t = ids[pick(time, points, None, (), "time point", f"the BigDataViewer N5 {where(store)}")]
    setup = read_json(store, f"setup{c}/attributes.json") or {}
    factors = setup.get("downsamplingFactors") or [[1, 1, 1]]
    check_level(level, len(factors), f"the BigDataViewer N5 {where(store)} setup{c}")
    sub = child(store, f"setup{c}/timepoint{t}/s{level}")
    chain = [read_json(sub, "attributes.json") or {}, setup, root]
    located = _n5_dataset(sub, chain, "N5 (BigDataViewer)", len(factors), factors[level])
    return Located(**{**vars(located), "channels": setups, "time_points": points})


def _count(store: dict[str, Any], pattern: str) -> int:
    count = 0
    while read_json(store, pattern.format(count)) is not None:
        count += 1
    return count


def _n5_dataset(store: dict[str, Any], chain: list[dict[str, Any]], kind: str, levels: int,
                factors: list[float]) -> Located:
    """`chain`: the dataset's attributes, then its parents' (nearest first)."""
    ndim = len(chain[0].get("dimensions") or [0, 0, 0])
    axes = tuple(str(a).lower() for a in chain[0].get("axes") or "xyzct"[:ndim])  # N5 lists x first
    size, unit, offset = _n5_resolution(chain, axes, factors or chain[0].get("downsamplingFactors") or [])
    unit, converted = boss_unit(unit, size)
    return Located({"driver": "n5", "kvstore": store}, where(store), kind, axes, levels, converted, unit, offset)


def _n5_resolution(chain: list[dict[str, Any]], axes: tuple[str, ...],
                   factors: list[float]) -> tuple[Size | None, str | None, Size]:
    """(voxel size x y z, unit, offset in voxels) from the first attributes in `chain` that give them."""
    for attrs in chain:
        if isinstance(attrs.get("transform"), dict):  # COSEM: names in C order, the dataset's own scale
            tr = attrs["transform"]
            names = [str(a).lower() for a in tr.get("axes", [])]
            scale = {n: float(s) for n, s in zip(names, tr.get("scale", []))}
            shift = {n: float(s) for n, s in zip(names, tr.get("translate", []))}
            units = {u for n, u in zip(names, tr.get("units", [])) if n in XYZ}
            size = _xyz([scale.get(a, 1.0) for a in XYZ])
            return size, (units.pop() if len(units) == 1 else None), _xyz(
                [shift.get(a, 0.0) / s for a, s in zip(XYZ, size)])
        base, unit = _pixel_resolution(attrs)
        if base is not None:
            mult = [float(f) for f in factors] + [1.0] * 3
            per_axis = {a: b * m for a, b, m in zip(axes, base, mult)}
            return _xyz([per_axis.get(a, 1.0) for a in XYZ]), unit, (0.0, 0.0, 0.0)
    mult = [float(f) for f in factors] + [1.0] * 3
    per_axis = {a: m for a, m in zip(axes, mult)}
    return (_xyz([per_axis.get(a, 1.0) for a in XYZ]) if factors else None), None, (0.0, 0.0, 0.0)


def _pixel_resolution(attrs: dict[str, Any]) -> tuple[list[float] | None, str | None]:
    value = attrs.get("pixelResolution")
    if isinstance(value, dict):
        return [float(v) for v in value.get("dimensions", [])], value.get("unit")
    if isinstance(value, list):
        return [float(v) for v in value], None
    if isinstance(attrs.get("resolution"), list):
        units = attrs.get("units") or [attrs.get("unit")]
        return [float(v) for v in attrs["resolution"]], (units[0] if units else None)
    return None, None


# --- neuroglancer precomputed -----------------------------------------------------------------------


def locate_precomputed(store: dict[str, Any], level: int) -> Located:
    info = read_json(store, "info")
    if info is None:
        raise not_found(store, "precomputed", f"{where(store)} has no info file: --source must name a neuroglancer "
                        "precomputed volume (the directory holding 'info')")
    scales = info.get("scales") or []
    check_level(level, len(scales), f"the precomputed volume {where(store)}")
    scale = scales[level]
    encoding = scale.get("encoding", "raw")
    if encoding not in PRECOMPUTED_ENCODINGS:
        raise BadInput(f"scale {level} ({scale.get('key')}) of {where(store)} is {encoding}-encoded, which "
                       f"tensorstore cannot read (it reads {', '.join(PRECOMPUTED_ENCODINGS)}): re-encode it, "
                       "e.g. with igneous, or pick another --source_level")
    resolution = _xyz([float(v) for v in scale.get("resolution", (1, 1, 1))])
    if not all(math.isfinite(v) and v > 0 for v in resolution):
        raise BadInput(f"scale {level} of {where(store)} has resolution {list(resolution)}: give --voxel_size")
    offset = _xyz([float(v) for v in scale.get("voxel_offset", (0, 0, 0))])
    spec = {"driver": "neuroglancer_precomputed", "kvstore": store, "scale_index": level}
    return Located(spec, f"{where(store)} scale {level} ({scale.get('key')})", f"precomputed {encoding}",
                   ("x", "y", "z", "c"), len(scales), resolution, "nanometers", offset)


def pick(index: int | None, count: int, label: str | None, labels: tuple[str, ...], what: str, name: str) -> int:
    """Which channel (or time point) of `count` to read: the only one, the one labelled `label`, or `index`."""
    if label and label in labels:
        return labels.index(label)
    if index is not None:
        if not 0 <= index < count:
            raise OutOfBounds(f"{name} has {count} {what}s; {what} {index} does not exist")
        return index
    if count == 1:
        return 0
    if what == "channel":
        shown = f" ({', '.join(labels)})" if any(labels) else ""
        raise UsageError(f"{name} has {count} channels{shown}: name one with --channel LABEL, or give "
                         "--channels_list_file with one BOSS channel name per source channel, in order")
    raise UsageError(f"{name} has {count} time points: push them with --time_range T0 T1 (default: all)")
