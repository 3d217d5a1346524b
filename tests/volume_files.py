"""Volumes written in the formats the field uses, by those formats' own writers (zarr-python for OME-Zarr,
tensorstore for N5 and neuroglancer precomputed), for the zarr / n5 / precomputed source tests.

Arrays passed in are (z, y, x), or (t, z, y, x) / (c, z, y, x) / (t, c, z, y, x) with `axes` saying so.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorstore as ts
import zarr

NGFF_TYPES = {"t": "time", "c": "channel"}


def ome_axes(axes: str, unit: str | None) -> list[dict]:
    return [{"name": a, "type": NGFF_TYPES.get(a, "space"), **({"unit": unit} if unit and a in "zyx" else {})}
            for a in axes]


def write_ome_zarr(path: Path, volume: np.ndarray, *, version: int = 3, axes: str = "zyx",
                   scale: tuple[float, float, float] = (1.0, 1.0, 1.0), unit: str | None = "nanometer",
                   translation: tuple[float, float, float] | None = None, levels: int = 1,
                   labels: list[str] | None = None, chunks: int = 16) -> Path:
    """An OME-Zarr image: NGFF 0.5 on zarr v3 (`version` 3) or 0.4 on zarr v2; level i halves x and y.

    `scale` and `translation` are (z, y, x) of level 0, in `unit`."""
    group = zarr.open_group(str(path), mode="w", zarr_format=version)
    datasets = []
    for level in range(levels):
        step = 2 ** level
        data = volume[..., ::step, ::step]
        array = group.create_array(str(level), shape=data.shape, dtype=data.dtype,
                                   chunks=tuple(min(chunks, n) for n in data.shape))
        array[...] = data
        zyx = [scale[0], scale[1] * step, scale[2] * step]
        full = [1.0] * (len(axes) - 3) + zyx
        transforms = [{"type": "scale", "scale": full}]
        if translation is not None:
            transforms.append({"type": "translation", "translation": [0.0] * (len(axes) - 3) + list(translation)})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    multiscales = [{"name": "test", "axes": ome_axes(axes, unit), "datasets": datasets}]
    omero = {"channels": [{"label": label} for label in labels]} if labels else None
    if version == 3:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales, **({"omero": omero} if omero else {})}
    else:
        multiscales[0]["version"] = "0.4"
        group.attrs.update({"multiscales": multiscales, **({"omero": omero} if omero else {})})
    return path


def write_n5_dataset(path: Path, volume: np.ndarray, attributes: dict | None = None) -> Path:
    """One N5 dataset of a (z, y, x) volume (N5 lists x first), with extra attributes."""
    store = ts.open({"driver": "n5", "kvstore": {"driver": "file", "path": str(path)}, "create": True,
                     "metadata": {"dimensions": list(volume.shape[::-1]), "blockSize": [64, 64, 8],
                                  "dataType": volume.dtype.name, "compression": {"type": "gzip"}}}).result()
    store[...] = volume.T
    if attributes:
        merge_attributes(path, attributes)
    return path


def merge_attributes(path: Path, attributes: dict) -> None:
    file = Path(path) / "attributes.json"
    current = json.loads(file.read_text()) if file.exists() else {}
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({**current, **attributes}))


def write_n5_multiscale(path: Path, volume: np.ndarray, resolution: list[float], unit: str, levels: int = 2) -> Path:
    """s0, s1, ... (x and y halved per level) under a group whose pixelResolution is level 0's."""
    for level in range(levels):
        step = 2 ** level
        write_n5_dataset(path / f"s{level}", volume[:, ::step, ::step], {"downsamplingFactors": [step, step, 1]})
    merge_attributes(path, {"n5": "2.0.0", "pixelResolution": {"dimensions": resolution, "unit": unit}})
    return path


def write_bdv_n5(path: Path, volumes: list[list[np.ndarray]], levels: int = 2) -> Path:
    """BigDataViewer's layout: setup<c>/timepoint<t>/s<level>; volumes[c][t] is (z, y, x)."""
    factors = [[2 ** level, 2 ** level, 1] for level in range(levels)]
    merge_attributes(path, {"n5": "2.0.0"})
    for c, series in enumerate(volumes):
        merge_attributes(path / f"setup{c}", {"downsamplingFactors": factors, "dataType": series[0].dtype.name})
        for t, volume in enumerate(series):
            for level, (fx, fy, _) in enumerate(factors):
                write_n5_dataset(path / f"setup{c}" / f"timepoint{t}" / f"s{level}", volume[:, ::fy, ::fx])
    return path


def write_precomputed(path: Path, volume: np.ndarray, *, encoding: str = "raw",
                      resolution: tuple[float, float, float] = (4, 4, 40),
                      voxel_offset: tuple[int, int, int] = (0, 0, 0), sharded: bool = False) -> np.ndarray:
    """A one-scale precomputed volume of a (z, y, x) volume; returns what tensorstore reads back (jpeg is lossy)."""
    kind = "segmentation" if encoding == "compressed_segmentation" else "image"
    z, y, x = volume.shape
    spec = {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(path) + "/"},
            "create": True,
            "multiscale_metadata": {"type": kind, "data_type": volume.dtype.name, "num_channels": 1},
            "scale_metadata": {"size": [x, y, z], "resolution": list(resolution), "encoding": encoding,
                               "chunk_size": [64, 64, 8], "voxel_offset": list(voxel_offset)}}
    if sharded:  # igneous' and CloudVolume's layout for large volumes: chunks packed into shard files
        spec["scale_metadata"]["sharding"] = {
            "@type": "neuroglancer_uint64_sharded_v1", "preshift_bits": 0, "hash": "identity", "minishard_bits": 2,
            "shard_bits": 1, "minishard_index_encoding": "gzip", "data_encoding": "gzip"}
    store = ts.open(spec).result()
    store[...] = volume.T[..., np.newaxis]
    written = ts.open({"driver": "neuroglancer_precomputed", "kvstore": spec["kvstore"]}).result()
    return np.ascontiguousarray(written.read().result()[..., 0].T)


def write_bdv_xml(path: Path, n5_name: str, setups: list[tuple[str, str, tuple[float, float, float]]]) -> Path:
    """BigDataViewer's dataset.xml naming the N5 beside it; setups: (name, unit, voxel size x y z)."""
    views = "".join(f"<ViewSetup><id>{i}</id><name>{name}</name><voxelSize><unit>{unit}</unit>"
                    f"<size>{' '.join(str(v) for v in size)}</size></voxelSize></ViewSetup>"
                    for i, (name, unit, size) in enumerate(setups))
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><SpimData version="0.2"><BasePath type="relative">.'
                    f'</BasePath><SequenceDescription><ImageLoader format="bdv.n5" version="1.0"><n5 type="relative">'
                    f'{n5_name}</n5></ImageLoader><ViewSetups>{views}</ViewSetups></SequenceDescription></SpimData>',
                    encoding="utf-8")
    return path
