"""TIFF specifics: ndex 1.x names, plain slices, codecs, OME metadata, the BigTIFF switch."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from sink_harness import feed, make_spec, volume

from ndex.errors import UsageError
from ndex.geometry import Box
from ndex.sinks import TiffStack, needs_bigtiff, open_sink, slice_name, tiff_compression
from ndex.sinks.tiff_options import CLASSIC_TIFF_LIMIT, codec_available


@pytest.mark.parametrize("z,stop,expected", [
    (0, 100, "col_exp_chan_x0-512_y10-20_z000.tif"),  # 1.x pads to the digits of the exclusive stop
    (99, 100, "col_exp_chan_x0-512_y10-20_z099.tif"),
    (5, 99, "col_exp_chan_x0-512_y10-20_z05.tif"),
    (7, 8, "col_exp_chan_x0-512_y10-20_z7.tif"),
    (1000, 1001, "col_exp_chan_x0-512_y10-20_z1000.tif"),
])
def test_slice_names_are_ndex_1x_names(tmp_path, z, stop, expected):
    spec = make_spec(tmp_path, box=Box((0, 10, 0), (512, 20, stop)))
    assert slice_name(spec, z) == expected


def test_time_series_names_put_t_before_z(tmp_path):
    spec = make_spec(tmp_path, box=Box((0, 0, 0), (4, 4, 20)), times=(8, 9, 10))
    assert slice_name(spec, 3, 9) == "col_exp_chan_x0-4_y0-4_t09_z03.tif"


def test_slices_are_plain_single_page_grayscale(tmp_path):
    spec = make_spec(tmp_path, "uint16")
    sink = open_sink("tif", spec)
    feed(sink, spec, volume(spec))
    with tifffile.TiffFile(sink.finish()[0]) as tf:
        assert len(tf.pages) == 1 and not tf.is_imagej and not tf.is_shaped and not tf.is_bigtiff
        page = tf.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and page.samplesperpixel == 1
        assert page.compression == tifffile.COMPRESSION.NONE
        assert page.tags["DocumentName"].value == sink.finish()[0].name


@pytest.mark.parametrize("kind", ["tif", "stack"])
def test_zlib_level_1_round_trips_uint64(tmp_path, kind):
    spec = make_spec(tmp_path, "uint64", compression="zlib", compression_level=1)
    vol = volume(spec)
    sink = open_sink(kind, spec)
    feed(sink, spec, vol)
    paths = sink.finish()
    with tifffile.TiffFile(paths[0]) as tf:
        assert tf.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    back = tifffile.imread(paths[0]) if kind == "stack" else np.stack([tifffile.imread(p) for p in paths])
    np.testing.assert_array_equal(back, vol)


@pytest.mark.parametrize("codec", ["zstd", "lzw"])
def test_codecs_needing_imagecodecs(tmp_path, codec):
    if codec_available(codec):
        spec = make_spec(tmp_path, "uint8", compression=codec)
        sink = open_sink("tif", spec)
        feed(sink, spec, vol := volume(spec))
        np.testing.assert_array_equal(tifffile.imread(sink.finish()[0]), vol[0])
    else:
        with pytest.raises(UsageError, match="pip install imagecodecs"):
            open_sink("tif", make_spec(tmp_path, compression=codec))


@pytest.mark.parametrize("name,level,message", [
    ("gzip", None, "unknown compression 'gzip'"),
    ("zlib", 12, "zlib level 12 is out of range: use 0 to 9"),
    ("none", 3, "compression none takes no level"),
])
def test_bad_compression_is_a_usage_error(name, level, message):
    with pytest.raises(UsageError, match=message):
        tiff_compression(name, level)


def test_ome_tiff_carries_physical_sizes_units_and_order(tmp_path):
    spec = make_spec(tmp_path, "uint16", times=(0, 1), voxel_size=(0.5, 0.5, 2.0), voxel_unit="micrometers",
                     stack_filename="cells.ome.tiff")
    sink = open_sink("stack", spec)  # the name alone picks OME
    feed(sink, spec, volume(spec))
    (path,) = sink.finish()
    assert path.name == "cells.ome.tiff"
    with tifffile.TiffFile(path) as tf:
        assert tf.is_ome and tf.series[0].axes == "TZYX" and tf.series[0].shape == (2, 23, 22, 30)
        xml = tf.ome_metadata
    for attr in ('PhysicalSizeX="0.5"', 'PhysicalSizeY="0.5"', 'PhysicalSizeZ="2.0"', 'PhysicalSizeXUnit="µm"',
                 'PhysicalSizeZUnit="µm"', 'SizeT="2"', 'SizeZ="23"'):
        assert attr in xml
    assert 'Name="cells"' in xml


@pytest.mark.parametrize("unit,symbol", [("nanometers", "nm"), ("millimeters", "mm"), ("centimeters", "cm")])
def test_ome_units_map_from_boss_units(tmp_path, unit, symbol):
    spec = make_spec(tmp_path, "uint8", voxel_unit=unit)
    sink = open_sink("ome-tiff", spec)
    feed(sink, spec, volume(spec))
    (path,) = sink.finish()
    assert path.name.endswith(".ome.tif")
    with tifffile.TiffFile(path) as tf:
        assert f'PhysicalSizeXUnit="{symbol}"' in tf.ome_metadata and tf.series[0].axes == "ZYX"


def test_ome_tiff_refuses_uint64_and_unknown_units(tmp_path):
    with pytest.raises(UsageError, match="OME-TIFF has no uint64 pixel type"):
        open_sink("ome-tiff", make_spec(tmp_path, "uint64"))
    with pytest.raises(UsageError, match="unknown voxel unit 'parsecs'"):
        open_sink("ome-tiff", make_spec(tmp_path, voxel_unit="parsecs"))


def test_bigtiff_decision():
    assert not needs_bigtiff(2**31, pages=1000, rows=2048)
    assert needs_bigtiff(2**32, pages=1000, rows=2048)
    assert needs_bigtiff(CLASSIC_TIFF_LIMIT - 1000, pages=1, rows=1)  # IFDs push it over
    assert needs_bigtiff(500, pages=1, rows=10, limit=1000) and not needs_bigtiff(500, pages=0, rows=10, limit=1000)


@pytest.mark.parametrize("limit,bigtiff", [(None, False), (1000, True)])
def test_stack_switches_to_bigtiff_past_the_limit(tmp_path, limit, bigtiff):
    extra = {} if limit is None else {"bigtiff_limit": limit}
    spec = make_spec(tmp_path, "uint8", extra=extra)
    sink = TiffStack(spec)
    assert sink.bigtiff is bigtiff
    feed(sink, spec, vol := volume(spec))
    (path,) = sink.finish()
    with tifffile.TiffFile(path) as tf:
        assert tf.is_bigtiff is bigtiff
        np.testing.assert_array_equal(tf.asarray(), vol)


def test_stack_name_defaults_to_the_region(tmp_path):
    spec = make_spec(tmp_path)
    assert TiffStack(spec).path.name == "col_exp_chan_x500-530_y1000-1022_z14-37.tif"
    assert TiffStack(spec, ome=True).path.name == "col_exp_chan_x500-530_y1000-1022_z14-37.ome.tif"


def test_a_finished_stack_is_replaced_by_a_new_pull(tmp_path):
    for seed in (1, 2):
        spec = make_spec(tmp_path, "uint8", stack_filename="s.tif")
        sink = open_sink("stack", spec)
        feed(sink, spec, vol := volume(spec, seed))
        (path,) = sink.finish()
    np.testing.assert_array_equal(tifffile.imread(path), vol)


def test_resume_ignores_parts_of_a_different_pull(tmp_path):
    spec = make_spec(tmp_path, "uint8", stack_filename="s.tif")
    feed(open_sink("stack", spec), spec, volume(spec))
    other = make_spec(tmp_path, "uint16", stack_filename="s.tif")
    sink = open_sink("stack", other)
    assert sink.completed([Box((500, 1000, 14), (530, 1022, 16))]) == set()
    feed(sink, other, vol := volume(other))
    np.testing.assert_array_equal(tifffile.imread(sink.finish()[0]), vol)
