"""OME-Zarr metadata and layout, the numpy sink's own array, and open_sink's errors."""
from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
from sink_harness import feed, make_spec, read_zarr, volume

from ndex.errors import InvalidBox, SinkError, UsageError
from ndex.geometry import Box
from ndex.sinks import OmeZarr, open_sink


def test_zarr_is_ngff_04_with_units_scale_and_origin(tmp_path):
    spec = make_spec(tmp_path, "uint16", times=(2, 3), voxel_unit="micrometers", stack_filename="vol.zarr",
                     compression="zstd", compression_level=3, extra={"zarr_version": 2})
    sink = open_sink("zarr", spec)
    feed(sink, spec, vol := volume(spec))
    (path,) = sink.finish()
    assert path.name == "vol.ome.zarr" and not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.json"))
    assert json.loads((path / ".zgroup").read_text()) == {"zarr_format": 2}
    (ms,) = json.loads((path / ".zattrs").read_text())["multiscales"]
    assert ms["version"] == "0.4"
    assert ms["axes"] == [{"name": "t", "type": "time"}] + [
        {"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    scale, shift = ms["datasets"][0]["coordinateTransformations"]
    assert ms["datasets"][0]["path"] == "0"
    assert scale == {"type": "scale", "scale": [1.0, 40.0, 4.0, 4.0]}
    assert shift == {"type": "translation", "translation": [2.0, 14 * 40.0, 1000 * 4.0, 500 * 4.0]}
    zarray = json.loads((path / "0" / ".zarray").read_text())
    assert zarray["chunks"] == [1, 16, 512, 512] and zarray["dimension_separator"] == "/"
    assert zarray["compressor"]["cname"] == "zstd" and zarray["dtype"] == "<u2"
    np.testing.assert_array_equal(read_zarr(path), vol)


def test_zarr_lives_as_partial_until_finish(tmp_path):
    spec = make_spec(tmp_path, "uint64")
    sink = OmeZarr(spec)
    feed(sink, spec, volume(spec))
    assert sink.path.name == "col_exp_chan_x500-530_y1000-1022_z14-37.ome.zarr"
    assert not sink.path.exists() and (tmp_path / (sink.path.name + ".partial")).is_dir()
    progress = json.loads((tmp_path / (sink.path.name + ".progress.json")).read_text())
    assert progress["done"] == [[14, 37]]  # three slabs, merged into one run
    array = json.loads((tmp_path / (sink.path.name + ".partial") / "0" / "zarr.json").read_text())
    assert array["chunk_grid"]["configuration"]["chunk_shape"] == [16, 512, 512]
    sink.finish()
    assert sink.path.is_dir()


def test_zarr_refuses_lzw(tmp_path):
    with pytest.raises(UsageError, match="OME-Zarr cannot use compression lzw"):
        open_sink("zarr", make_spec(tmp_path, compression="lzw"))


def test_numpy_sink_fills_a_given_array(tmp_path):
    out = np.ones((23, 22, 30), np.uint16)
    spec = make_spec(tmp_path, extra={"out": out})
    sink = open_sink("numpy", spec)
    feed(sink, spec, vol := volume(spec))
    assert sink.array is out and sink.finish() == []
    np.testing.assert_array_equal(out, vol)
    with pytest.raises(UsageError, match="the pull needs"):
        open_sink("numpy", make_spec(tmp_path, extra={"out": np.ones((2, 2, 2), np.uint16)}))


def test_factory_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown output format 'hdf5': use one of tif, stack, ome-tiff, zarr, numpy"):
        open_sink("hdf5", make_spec(tmp_path))
    with pytest.raises(UsageError, match="cannot write float32 voxels"):
        open_sink("tif", make_spec(tmp_path, "float32"))


def test_block_outside_region_is_refused(tmp_path):
    sink = open_sink("numpy", make_spec(tmp_path))
    with pytest.raises(InvalidBox, match="outside the pulled region"):
        sink.write(Box((0, 0, 0), (2, 2, 2)), np.zeros((2, 2, 2), np.uint16), None)
    with pytest.raises(InvalidBox, match="time point 3 given for a pull without a time range"):
        sink.write(Box((500, 1000, 14), (502, 1002, 16)), np.zeros((2, 2, 2), np.uint16), 3)


def test_npy_file_reserves_its_space_up_front(tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(SinkError, match=r"cannot write .*vol\.npy\.partial: No space left on device"):
        open_sink("numpy", make_spec(tmp_path, stack_filename="vol.npy"))
    assert not (tmp_path / "vol.npy").exists()


def test_npy_file_is_a_plain_npy_after_finish(tmp_path):
    spec = make_spec(tmp_path, "uint64", times=(0, 1), stack_filename="vol.npy")
    sink = open_sink("numpy", spec)
    feed(sink, spec, vol := volume(spec))
    assert sink.finish() == [tmp_path / "vol.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "vol.npy"), vol)


def test_zarr_checks_compression_levels(tmp_path):
    with pytest.raises(UsageError, match="zlib level 10 is out of range"):
        open_sink("zarr", make_spec(tmp_path, compression="zlib", compression_level=10))


@pytest.mark.parametrize("output, name, kind", [
    (None, None, "tif"), (None, "v.ome.zarr", "zarr"), (None, "v.zarr", "zarr"), (None, "v.npy", "numpy"),
    (None, "v.ome.tif", "ome-tiff"), (None, "V.OME.TIFF", "ome-tiff"), (None, "v.tif", "stack"),
    ("ome-tiff", "v.tif", "ome-tiff"), ("numpy", None, "numpy"), ("zarr", None, "zarr"), ("stack", "v.tiff", "stack"),
])
def test_the_output_kind_follows_the_file_name(output, name, kind):
    from ndex.sinks import output_kind

    assert output_kind(output, name) == kind


@pytest.mark.parametrize("output, name, words", [
    ("numpy", "v.tif", "output numpy does not write 'v.tif' (a stack name): name it .npy or use output stack"),
    ("stack", "v.ome.zarr", "output stack does not write 'v.ome.zarr' (a zarr name)"),
    (None, "v.png", "stack_filename 'v.png' has no known output suffix: use one of .ome.zarr, .zarr, .npy"),
    ("tif", "v.tif", "output tif writes one file per slice: drop stack_filename 'v.tif'"),
    ("stack", None, "output stack writes one file: give its name with stack_filename"),
    ("webm", None, "unknown output 'webm'"),
])
def test_a_kind_and_a_name_that_disagree_are_one_line_naming_the_field(output, name, words):
    from ndex.errors import FieldError
    from ndex.sinks import output_kind

    with pytest.raises(FieldError) as info:
        output_kind(output, name)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert words.replace("stack_filename", "--stack_filename") in str(info.value.renamed(
        {"stack_filename": "--stack_filename"})) or info.value.field != "stack_filename"
