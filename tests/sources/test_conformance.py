"""One suite that every source passes: read a small synthetic volume back exactly, slab by slab."""
from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest
import tifffile

from ndex.errors import OutOfBounds
from ndex.sources import Source, SourceSpec, open_source

from .conftest import encode, upload_slices


def local_tif(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    spec = SourceSpec(base_path=str(request.getfixturevalue("tif8_dir")), base_filename="img_<p:4>",
                      extension="tif", z_range=(0, 20), x_extent=(0, 300), y_extent=(0, 200), datatype="uint8")
    return spec, volume, 0


def local_png16_inferred(request, tmp_path):
    # no extents and no datatype: both are learnt from the first slice
    spec = SourceSpec(base_path=str(request.getfixturevalue("png16_dir")), base_filename="img_<p:4>",
                      extension="png", z_range=(0, 20), read_threads=2)
    return spec, request.getfixturevalue("volume16"), 0


def stack_memmap(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    return SourceSpec(datasource="stack", base_path=str(tmp_path / "stack.tif")), volume, 0


def stack_compressed_pages(request, tmp_path):
    volume = request.getfixturevalue("volume16")
    tifffile.imwrite(tmp_path / "stack.tif", volume, compression="zlib")
    spec = SourceSpec(datasource="stack", base_path=str(tmp_path), base_filename="stack", extension="tif",
                      datatype="uint16")
    return spec, volume, 0


def s3_tif(request, tmp_path):
    endpoint = request.getfixturevalue("s3_env")
    volume = request.getfixturevalue("volume8")
    upload_slices(endpoint, "conformance", "data/em", volume)
    spec = SourceSpec(datasource="s3", s3_bucket="conformance", base_path="data/em", base_filename="img_<p:4>",
                      z_range=(0, 20), x_extent=(0, 300), y_extent=(0, 200), datatype="uint8")
    return spec, volume, 0


def tiles_png(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    size = 128
    for z, image in enumerate(volume):
        for row in range(2):
            for col in range(3):
                tile = np.full((size, size), 255, dtype=np.uint8)  # CATMAID pads edge tiles to full size
                part = image[row * size:(row + 1) * size, col * size:(col + 1) * size]
                tile[:part.shape[0], :part.shape[1]] = part
                (tmp_path / str(z)).mkdir(exist_ok=True)
                (tmp_path / str(z) / f"{row}_{col}.png").write_bytes(encode(tile, "png"))
    spec = SourceSpec(datasource="tiles", base_path=str(tmp_path), tile_pattern="{z}/{row}_{col}.png",
                      tile_size=size, x_extent=(0, 300), y_extent=(0, 200), z_range=(0, 20))
    return spec, volume, 0


def render_uint16(request, tmp_path):
    server = request.getfixturevalue("render_server")
    spec = SourceSpec(datasource="render", render_base_url=server.base_url, render_owner=server.owner,
                      render_project=server.project, render_stack=server.stack, datatype="uint16",
                      render_tile_size=64)
    return spec, server.volume, server.origin[2]


CASES = [local_tif, local_png16_inferred, stack_memmap, stack_compressed_pages, s3_tif, tiles_png, render_uint16]


@pytest.fixture(params=CASES, ids=[case.__name__ for case in CASES])
def opened(request, tmp_path):
    spec, truth, z0 = request.param(request, tmp_path)
    source = open_source(spec)
    yield source, truth, z0
    source.close()


def test_attributes_describe_the_volume(opened):
    source, truth, z0 = opened
    assert isinstance(source, Source)
    assert source.dtype == truth.dtype
    assert source.shape_xy == (truth.shape[2], truth.shape[1])
    assert source.z_range == (z0, z0 + truth.shape[0])


def test_whole_volume_reads_back_exactly(opened):
    source, truth, z0 = opened
    slab = source.read_slab(*source.z_range)
    assert slab.flags.c_contiguous and slab.dtype == truth.dtype
    np.testing.assert_array_equal(slab, truth)
    assert source.missing == []


def test_a_slab_in_the_middle_is_those_slices(opened):
    source, truth, z0 = opened
    np.testing.assert_array_equal(source.read_slab(z0 + 2, z0 + 5), truth[2:5])
    np.testing.assert_array_equal(source.read_slab(z0 + 1, z0 + 2), truth[1:2])


def test_slabs_outside_the_range_are_refused(opened):
    source, truth, z0 = opened
    with pytest.raises(OutOfBounds, match="not inside the source's z range"):
        source.read_slab(z0, z0 + truth.shape[0] + 1)
    with pytest.raises(OutOfBounds):
        source.read_slab(z0 - 1, z0 + 1)


def test_validate_passes_and_describe_is_one_line(opened):
    source, _, _ = opened
    source.validate(sample=2)
    text = source.describe()
    assert text and "\n" not in text


def test_close_is_idempotent(request, tmp_path):
    spec, _, _ = local_tif(request, tmp_path)
    with closing(open_source(spec)) as source:
        source.close()
