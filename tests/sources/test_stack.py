"""Multipage TIFF stacks: z = page index, read without loading the whole file."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from ndex.errors import OutOfBounds, SourceError
from ndex.sources import SourceSpec, open_source

from .conftest import make_volume


def test_a_z_range_reads_only_those_pages(tmp_path):
    volume = make_volume(np.uint16, (10, 20, 30), seed=2)
    tifffile.imwrite(tmp_path / "s.tif", volume, compression="zlib")
    source = open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "s.tif"), z_range=(4, 8)))
    try:
        assert source.z_range == (4, 8)
        np.testing.assert_array_equal(source.read_slab(4, 8), volume[4:8])
        assert "page by page" in source.describe()
    finally:
        source.close()


def test_uncompressed_stack_is_memory_mapped(tmp_path):
    volume = make_volume(np.uint8, (5, 20, 30), seed=3)
    tifffile.imwrite(tmp_path / "s.tif", volume, imagej=True)
    source = open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "s.tif")))
    try:
        assert "memory-mapped" in source.describe()
        np.testing.assert_array_equal(source.read_slab(0, 5), volume)
    finally:
        source.close()


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_rgb_stack_needs_a_channel_choice(tmp_path, compression):
    rgb = make_volume(np.uint8, (4, 20, 30 * 3), seed=4).reshape(4, 20, 30, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", compression=compression)
    with pytest.raises(SourceError, match="--rgb_channel"):
        open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "rgb.tif")))
    source = open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "rgb.tif"), rgb_channel="g"))
    try:
        np.testing.assert_array_equal(source.read_slab(0, 4), rgb[..., 1])
    finally:
        source.close()


def test_z_range_past_the_last_page_is_out_of_bounds(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(OutOfBounds, match="which has pages 0:3"):
        open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "s.tif"), z_range=(0, 4)))


def test_missing_and_damaged_stacks_name_the_file(tmp_path):
    with pytest.raises(SourceError, match=r"stack file .*absent\.tif does not exist"):
        open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "absent.tif")))
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(SourceError, match=r"junk\.tif"):
        open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "junk.tif")))


def test_truncated_compressed_stack_fails_on_the_damaged_page(tmp_path):
    volume = make_volume(np.uint16, (6, 40, 40), seed=5)
    tifffile.imwrite(tmp_path / "s.tif", volume, compression="zlib")
    data = (tmp_path / "s.tif").read_bytes()
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        last_offset = tif.pages[5].dataoffsets[0]
    (tmp_path / "s.tif").write_bytes(data[:last_offset + 10] + b"\x00" * (len(data) - last_offset - 10))
    source = open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "s.tif")))
    try:
        np.testing.assert_array_equal(source.read_slab(0, 5), volume[:5])
        with pytest.raises(SourceError, match=r"page z=5 of .*s\.tif is not readable"):
            source.read_slab(5, 6)
    finally:
        source.close()


def test_size_and_dtype_are_checked_against_the_spec(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((2, 8, 9), np.uint8))
    with pytest.raises(SourceError, match=r"slices are 9x8 .* --x_extent is 0:10"):
        open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "s.tif"), x_extent=(0, 10)))
    with pytest.raises(SourceError, match="holds uint8 voxels but the datatype is uint16"):
        open_source(SourceSpec(datasource="stack", base_path=str(tmp_path / "s.tif"), datatype="uint16"))
