"""Sources read XY bands: TIFF slices in strips or tiles (local, BigTIFF, S3 by ranged reads) and stacks
read only the band; PNG and one-strip compressed TIFFs are decoded once per slice and the slab's
bands read from the spill. Every band equals the same part of the whole slices."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ndex.geometry import Box, z_slabs
from ndex.sources import SourceSpec, open_source
from ndex.sources.base import read_box
from ndex.transfer.options import cut_bands

from .conftest import make_volume, s3_client

SHAPE = (18, 1100, 1300)  # z, y, x: not multiples of 512
LAYOUTS = {  # name -> (tifffile.imwrite keywords, or "png"), and whether a band is read alone
    "strips-zlib": ({"rowsperstrip": 64, "compression": "zlib"}, True),
    "tiles-zstd": ({"tile": (256, 256), "compression": "zstd"}, True),
    "raw-one-strip": ({"rowsperstrip": SHAPE[1]}, True),
    "bigtiff-strips": ({"bigtiff": True, "rowsperstrip": 16}, True),
    "zlib-one-strip": ({"rowsperstrip": SHAPE[1], "compression": "zlib"}, False),
    "png": ("png", False),
}


def write(directory: Path, volume: np.ndarray, how) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    extension = "png" if how == "png" else "tif"
    for z, plane in enumerate(volume):
        path = directory / f"img_{z:04d}.{extension}"
        if how == "png":
            Image.fromarray(plane).save(path)
        else:
            tifffile.imwrite(path, plane, **how)
    return extension


def bands(source, offset=(0, 0)) -> list[Box]:
    (x0, y0), (sx, sy) = source.origin_xy, source.shape_xy
    whole = Box((x0, y0, source.z_range[0]), (x0 + sx, y0 + sy, source.z_range[1]))
    return [b for slab in z_slabs(whole) for b in cut_bands(slab, (512, 512))]


def check_bands(source, volume: np.ndarray) -> None:
    (x0, y0) = source.origin_xy
    for band in bands(source):
        expected = volume[band.z[0]:band.z[1], band.y[0] - y0:band.y[1] - y0, band.x[0] - x0:band.x[1] - x0]
        np.testing.assert_array_equal(read_box(source, band), expected)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_slice_files_are_read_band_by_band(tmp_path, layout):
    how, partial = LAYOUTS[layout]
    volume = make_volume(np.uint16 if how != "png" else np.uint8, SHAPE, seed=3)
    extension = write(tmp_path, volume, how)
    source = open_source(SourceSpec(base_path=str(tmp_path), base_filename="img_<p:4>", extension=extension,
                                    z_range=(0, SHAPE[0]), x_extent=(700, 700 + SHAPE[2]),
                                    y_extent=(300, 300 + SHAPE[1])))  # x/y start off the cuboid grid
    try:
        check_bands(source, volume)
        assert (source._spill._dir is None) == partial  # decoded whole (and spilled) only where it must be
    finally:
        source.close()


@pytest.mark.parametrize("how", [{}, {"rowsperstrip": 100, "compression": "zlib"},
                                 {"tile": (128, 128), "compression": "zlib"}, {"compression": "zlib"}])
def test_stacks_are_read_band_by_band(tmp_path, how):
    volume = make_volume(np.uint8, SHAPE, seed=5)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, volume, **how)
    source = open_source(SourceSpec(datasource="stack", base_path=str(path)))
    try:
        check_bands(source, volume)
    finally:
        source.close()


def test_s3_tiff_slices_are_read_by_ranges(s3_env):
    volume = make_volume(np.uint16, (3, 700, 600), seed=9)
    client = s3_client(s3_env)
    client.create_bucket(Bucket="bands")
    for z, plane in enumerate(volume):
        body = io.BytesIO()
        tifffile.imwrite(body, plane, rowsperstrip=32, compression="zlib")
        client.put_object(Bucket="bands", Key=f"em/img_{z:04d}.tif", Body=body.getvalue())
    client.close()
    source = open_source(SourceSpec(datasource="s3", s3_bucket="bands", base_path="em", base_filename="img_<p:4>",
                                    extension="tif", z_range=(0, 3)))
    ranges: list[int] = []
    real = source.store.read_range
    source.store.read_range = lambda key, a, b: ranges.append(b - a) or real(key, a, b)
    try:
        band = Box((0, 512, 0), (600, 700, 3))
        np.testing.assert_array_equal(read_box(source, band), volume[:, 512:700])
        assert ranges and sum(ranges) < volume.nbytes * 0.6  # a band's strips, not the whole files
        assert source._spill._dir is None
    finally:
        source.close()
