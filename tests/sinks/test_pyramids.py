"""Pyramid outputs without a server: OME-Zarr (v3 / NGFF 0.5 and v2 / NGFF 0.4) and precomputed, several
levels fed as the engine feeds them, read back by their ecosystems' readers, resumed, refused."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import jsonschema
import numpy as np
import pytest
import tensorstore as ts
import tifffile
import zarr
from ngff_schemas import validate
from sink_harness import feed, make_spec, read_zarr, volume

from ndex.errors import SinkError, UsageError
from ndex.geometry import Box, z_slabs
from ndex.sinks import open_sink
from ndex.sinks.factory import open_pyramid
from ndex.sinks.metadata import public_url
from ndex.testing.sinks import FileSinkTests

SOURCE = {"url": "http://127.0.0.1:8080", "collection": "col", "experiment": "exp", "channel": "chan",
          "channel_type": "image", "iso": False}
BASE = Box((500, 1000, 14), (530, 1022, 37))  # level 0 of an anisotropic hierarchy: x, y halve per level


def level_specs(tmp_path, dtype="uint16", levels=3, **extra):
    """Level specs as the pull engine makes them: boxes and voxel sizes of an anisotropic 4x4x40 nm hierarchy."""
    specs = []
    for res in range(levels):
        f = 2**res
        box = Box((BASE.start[0] // f, BASE.start[1] // f, BASE.start[2]),
                  (-(-BASE.stop[0] // f), -(-BASE.stop[1] // f), BASE.stop[2]))
        specs.append(make_spec(tmp_path, dtype, box=box, voxel_size=(4.0 * f, 4.0 * f, 40.0), resolution=res,
                               stack_filename="vol", extra={"source": SOURCE, **extra}))
    return specs


def fill(pyramid, specs, seed=0):
    vols = [volume(spec, seed + i) for i, spec in enumerate(specs)]
    for level, spec, vol in zip(pyramid.levels, specs, vols):
        feed(level, spec, vol)
        assert level.finish() == []
    return vols


def test_zarr_v3_pyramid_is_ngff_05_and_every_reader_sees_each_level(tmp_path):
    specs = level_specs(tmp_path / "out")
    pyramid = open_pyramid("zarr", specs)
    vols = fill(pyramid, specs)
    (path,) = pyramid.finish()
    assert path.name == "vol.ome.zarr" and not list(path.parent.glob("*.json")) and not list(path.parent.glob("*.partial"))
    group = json.loads((path / "zarr.json").read_text())
    assert group["zarr_format"] == 3 and group["node_type"] == "group"
    validate(group["attributes"], "0.5")
    (ms,) = group["attributes"]["ome"]["multiscales"]
    for i, ds in enumerate(ms["datasets"]):
        scale, shift = ds["coordinateTransformations"]
        f = 2**i
        assert ds["path"] == str(i) and scale["scale"] == [40.0, 4.0 * f, 4.0 * f]
        # voxel i of a level at i x its voxel size, as the server's /zarr/ places its levels
        assert shift["translation"] == [14 * 40.0, specs[i].box.y[0] * 4.0 * f, specs[i].box.x[0] * 4.0 * f]
    assert group["attributes"]["ndex"]["source"]["url"] == "http://127.0.0.1:8080"
    assert [lv["resolution"] for lv in group["attributes"]["ndex"]["levels"]] == [0, 1, 2]
    tensorstore_levels = [read_zarr(path, str(i)) for i in range(3)]
    zarr_group = zarr.open_group(str(path), mode="r")
    assert zarr_group.metadata.zarr_format == 3
    for i, vol in enumerate(vols):
        np.testing.assert_array_equal(tensorstore_levels[i], vol)
        np.testing.assert_array_equal(zarr_group[str(i)][...], vol)
        assert zarr_group[str(i)].metadata.dimension_names == ("z", "y", "x")
    assert [np.asarray(level) for level in ome_zarr_levels(path)][1].shape == vols[1].shape
    for got, vol in zip(ome_zarr_levels(path), vols):
        np.testing.assert_array_equal(np.asarray(got), vol)


def ome_zarr_levels(path):
    """The levels the `ome-zarr` package's reader finds in the image at `path` (dask arrays)."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    (image,) = [node for node in Reader(parse_url(str(path)))() if node.load is not None or node.data]
    return image.data


def test_zarr_v2_pyramid_is_ngff_04_with_a_time_axis(tmp_path):
    specs = [replace(s, time_points=(2, 3)) for s in level_specs(tmp_path, "uint8", 2, zarr_version=2)]
    pyramid = open_pyramid("zarr", specs)
    vols = fill(pyramid, specs)
    (path,) = pyramid.finish()
    attrs = json.loads((path / ".zattrs").read_text())
    validate(attrs, "0.4")
    assert json.loads((path / ".zgroup").read_text()) == {"zarr_format": 2}
    (ms,) = attrs["multiscales"]
    assert ms["version"] == "0.4" and [a["name"] for a in ms["axes"]] == ["t", "z", "y", "x"]
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 40.0, 8.0, 8.0]
    for i, vol in enumerate(vols):
        np.testing.assert_array_equal(read_zarr(path, str(i)), vol)
        np.testing.assert_array_equal(zarr.open_array(str(path / str(i)), mode="r")[...], vol)
    for got, vol in zip(ome_zarr_levels(path), vols):
        np.testing.assert_array_equal(np.asarray(got), vol)


def test_the_schema_check_would_catch_a_broken_multiscales(tmp_path):
    specs = level_specs(tmp_path, levels=1)
    pyramid = open_pyramid("zarr", specs)
    fill(pyramid, specs)
    attrs = json.loads((pyramid.finish()[0] / "zarr.json").read_text())["attributes"]
    del attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    with pytest.raises(jsonschema.ValidationError):
        validate(attrs, "0.5")


@pytest.mark.parametrize("kind", ["zarr", "precomputed"])
def test_an_interrupted_pyramid_resumes_level_by_level(tmp_path, kind):
    specs = level_specs(tmp_path, "uint16", 2)
    vols = [volume(s, i) for i, s in enumerate(specs)]
    first = open_pyramid(kind, specs)
    feed(first.levels[0], specs[0], vols[0])
    feed(first.levels[1], specs[1], vols[1], z_slabs(specs[1].box)[:1])
    first.abort()  # the interrupt
    with pytest.raises(SinkError, match="run the pull again"):
        first.finish()
    assert not (tmp_path / first.path.name).exists()
    again = open_pyramid(kind, specs)
    assert again.levels[0].completed(z_slabs(specs[0].box)) == set(z_slabs(specs[0].box))
    assert again.levels[1].completed(z_slabs(specs[1].box)) == {z_slabs(specs[1].box)[0]}
    feed(again.levels[1], specs[1], vols[1], z_slabs(specs[1].box)[1:])
    (path,) = again.finish()
    for i, vol in enumerate(vols):
        np.testing.assert_array_equal(read_level(kind, path, specs[i], i), vol)


def test_a_different_pull_under_the_same_name_starts_over(tmp_path):
    specs = level_specs(tmp_path, "uint16", 2)
    first = open_pyramid("zarr", specs)
    feed(first.levels[0], specs[0], volume(specs[0]))
    other = [replace(s, dtype=np.dtype("uint8")) for s in specs]
    assert open_pyramid("zarr", other).levels[0].completed(z_slabs(specs[0].box)) == set()


def read_level(kind, path, spec, index):
    if kind == "zarr":
        return read_zarr(path, str(index))
    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(path)},
                     "scale_index": index}).result()
    (x0, x1), (y0, y1), (z0, z1) = spec.box.x, spec.box.y, spec.box.z
    return store[x0:x1, y0:y1, z0:z1, 0].read().result().transpose(2, 1, 0)


@pytest.mark.parametrize("dtype,encoding", [("uint16", "raw"), ("uint64", "compressed_segmentation"),
                                            ("uint32", "compressed_segmentation"), ("uint8", "raw")])
def test_precomputed_pyramid_opens_in_cloudvolume_voxel_exact(tmp_path, dtype, encoding):
    from cloudvolume import CloudVolume

    extra = {"encoding": encoding} if dtype == "uint32" else {}
    specs = level_specs(tmp_path, dtype, 3, **extra)
    pyramid = open_pyramid("precomputed", specs)
    vols = fill(pyramid, specs)
    (path,) = pyramid.finish()
    info = json.loads((path / "info").read_text())
    assert info["data_type"] == dtype and info["type"] == ("image" if encoding == "raw" else "segmentation")
    assert [s["key"] for s in info["scales"]] == ["4_4_40", "8_8_40", "16_16_40"]
    assert [s["encoding"] for s in info["scales"]] == [encoding] * 3
    assert info["scales"][1]["voxel_offset"] == list(specs[1].box.start)
    assert info["ndex"]["source"]["channel"] == "chan"
    for mip, (spec, vol) in enumerate(zip(specs, vols)):
        cv = CloudVolume(f"file://{path}", mip=mip, progress=False, fill_missing=False)
        (x0, x1), (y0, y1), (z0, z1) = spec.box.x, spec.box.y, spec.box.z
        got = np.asarray(cv[x0:x1, y0:y1, z0:z1])[..., 0].transpose(2, 1, 0)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, vol)
        np.testing.assert_array_equal(read_level("precomputed", path, spec, mip), vol)


def test_precomputed_jpeg_is_lossy_but_close(tmp_path):
    specs = level_specs(tmp_path, "uint8", 1, encoding="jpeg")
    pyramid = open_pyramid("precomputed", specs)
    smooth = np.broadcast_to(np.arange(specs[0].box.shape[0], dtype=np.uint8) * 4, specs[0].box.shape_zyx).copy()
    feed(pyramid.levels[0], specs[0], smooth)
    (path,) = pyramid.finish()
    got = read_level("precomputed", path, specs[0], 0).astype(int)
    assert np.abs(got - smooth).max() <= 8


@pytest.mark.parametrize("dtype,extra,message", [
    ("uint16", {"encoding": "compressed_segmentation"},
     "precomputed encoding compressed_segmentation cannot hold uint16 voxels (it takes uint32, uint64): use encoding raw"),
    ("uint16", {"encoding": "jpeg"}, "precomputed encoding jpeg cannot hold uint16 voxels"),
    ("uint8", {"encoding": "png"}, "unknown precomputed encoding 'png'"),
])
def test_precomputed_refuses_an_encoding_the_dtype_cannot_take(tmp_path, dtype, extra, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        open_pyramid("precomputed", level_specs(tmp_path, dtype, 1, **extra))
    assert not list(tmp_path.iterdir())


def test_precomputed_refuses_time_series_and_compression(tmp_path):
    spec = level_specs(tmp_path, "uint8", 1)[0]
    with pytest.raises(UsageError, match="a precomputed volume has no time axis"):
        open_sink("precomputed", replace(spec, time_points=(0, 1)))
    with pytest.raises(UsageError, match="drop compression zlib"):
        open_sink("precomputed", replace(spec, compression="zlib"))
    one = open_sink("precomputed", replace(spec, time_points=(4,)))  # one time point is a 3D volume
    feed(one, one.spec, vol := volume(one.spec))
    (path,) = one.finish()
    np.testing.assert_array_equal(read_level("precomputed", path, spec, 0), vol[0])


def test_only_pyramid_kinds_hold_several_levels(tmp_path):
    with pytest.raises(UsageError, match="output stack holds one resolution level: pull several levels into zarr or "
                                         "precomputed, or one level"):
        open_pyramid("stack", level_specs(tmp_path))


def test_a_recorded_url_never_carries_a_secret():
    with_secrets = "https://" + "user:s3cret@127.0.0.1:8443/base?token=abc#x"  # user info: not a host to scan
    assert public_url(with_secrets) == "https://127.0.0.1:8443/base"
    assert public_url(None) is None
    assert public_url("http://" + "user:pw@[::1]:8080/v1?x=1") == "http://[::1]:8080/v1"  # still a URL


def test_ome_tiff_records_origin_resolution_and_the_pull(tmp_path):
    spec = replace(level_specs(tmp_path, "uint16", 2)[1], stack_filename="vol.ome.tif")
    sink = open_sink("ome-tiff", spec)
    feed(sink, spec, volume(spec))
    (path,) = sink.finish()
    with tifffile.TiffFile(path) as tif:
        ome = tif.ome_metadata
        page = tif.pages[0]
        assert page.tags["ResolutionUnit"].value == 3  # centimetre
        x_per_cm = page.tags["XResolution"].value[0] / page.tags["XResolution"].value[1]
    assert x_per_cm == pytest.approx(1e7 / 8.0)  # 8 nm voxels at level 1
    assert f'PositionX="{spec.box.x[0] * 8.0}"' in ome and f'PositionZ="{15 * 40.0}"' in ome  # second plane: z 15
    assert "127.0.0.1:8080" in ome and '"channel": "chan"' in ome.replace("&quot;", '"')


def test_plain_stack_and_slices_keep_the_record_in_their_description(tmp_path):
    spec = replace(level_specs(tmp_path, "uint8", 1)[0], stack_filename="vol.tif")
    sink = open_sink("stack", spec)
    feed(sink, spec, volume(spec))
    with tifffile.TiffFile(sink.finish()[0]) as tif:
        record = json.loads(tif.pages[0].description)["ndex"]
    assert record["region"] == {"x": [500, 530], "y": [1000, 1022], "z": [14, 37]} and record["resolution"] == 0
    slices = open_sink("tif", replace(spec, stack_filename=None, outdir=tmp_path / "slices"))
    feed(slices, spec, volume(spec))
    first = slices.finish()[0]
    with tifffile.TiffFile(first) as tif:
        one = json.loads(tif.pages[0].description)["ndex"]
        assert tif.pages[0].tags["ResolutionUnit"].value == 3
    assert one["z"] == 14 and one["position"] == [2000.0, 4000.0, 560.0] and one["source"]["url"] == SOURCE["url"]


class TestPrecomputedConformance(FileSinkTests):
    """The suite every file sink passes, for a single-level precomputed volume (3D only: no time axis)."""

    final_suffixes = (".precomputed",)
    resume_keeps_files = False  # the suite compares TIFF / npy files only

    def make(self, spec):
        return open_sink("precomputed", spec)

    def read_back(self, sink, spec, paths):
        (path,) = paths
        return read_level("precomputed", path, spec, 0)

    def test_time_series_round_trip(self, tmp_path):
        with pytest.raises(UsageError, match="a precomputed volume has no time axis"):
            self.make(make_spec(tmp_path, "uint8", times=(3, 4, 5)))

    @pytest.mark.parametrize("times", [None])
    def test_resume_continues_without_rewriting(self, tmp_path, times):
        super().test_resume_continues_without_rewriting(tmp_path, times)
