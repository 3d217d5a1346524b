"""zarr / n5 / precomputed sources: the conformance suite over each format (written by its own writers),
the metadata each one reads (voxel size, unit, offset, levels, channels, time points) and one clear line
for each kind of bad source."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
import zarr
from volume_files import (
    write_bdv_n5,
    write_bdv_xml,
    write_n5_dataset,
    write_n5_multiscale,
    write_ome_zarr,
    write_precomputed,
)

from ndex.client import ChannelRef
from ndex.errors import BadInput, OutOfBounds, UsageError
from ndex.geometry import Box
from ndex.sources import SourceSpec, open_source
from ndex.sources.ts_store import kvstore
from ndex.testing.sources import SourceTests
from ndex.transfer.options import TransferOptions
from ndex.transfer.push_plan import PushSpec, layout

from .conftest import make_volume, s3_client


def ome_zarr_v3(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    write_ome_zarr(tmp_path / "img.ome.zarr", volume, version=3, levels=2)
    return SourceSpec(datasource="zarr", source_url=str(tmp_path / "img.ome.zarr")), volume, 0


def ome_zarr_v2_level1(request, tmp_path):
    volume = request.getfixturevalue("volume16")
    write_ome_zarr(tmp_path / "img.ome.zarr", volume, version=2, levels=2)
    spec = SourceSpec(datasource="zarr", source_url=f"file://{tmp_path}/img.ome.zarr/", source_level=1)
    return spec, np.ascontiguousarray(volume[:, ::2, ::2]), 0


def ome_zarr_5d_channel_and_time(request, tmp_path):
    volume = make_volume(np.uint16, (3, 2, 20, 60, 90), seed=5)  # t, c, z, y, x
    write_ome_zarr(tmp_path / "img.ome.zarr", volume, axes="tczyx", labels=["dapi", "gfp"])
    spec = SourceSpec(datasource="zarr", source_url=str(tmp_path / "img.ome.zarr"), channel="gfp", time_index=2,
                      z_range=(4, 20))
    return spec, volume[2, 1, 4:], 4


def n5_multiscale(request, tmp_path):
    volume = request.getfixturevalue("volume8")
    write_n5_multiscale(tmp_path / "vol.n5", volume, [4, 4, 40], "nm")
    return SourceSpec(datasource="n5", source_url=f"n5://{tmp_path}/vol.n5"), volume, 0


def n5_bdv_setup1_time1(request, tmp_path):
    volumes = [[make_volume(np.uint16, (12, 70, 90), seed=10 * c + t) for t in range(2)] for c in range(2)]
    write_bdv_n5(tmp_path / "dataset.n5", volumes)
    spec = SourceSpec(datasource="n5", source_url=str(tmp_path / "dataset.n5"), channel_index=1, time_index=1)
    return spec, volumes[1][1], 0


def precomputed_raw_offset(request, tmp_path):
    volume = request.getfixturevalue("volume16")
    write_precomputed(tmp_path / "pc", volume, voxel_offset=(100, 200, 7))
    return SourceSpec(datasource="precomputed", source_url=f"precomputed://file://{tmp_path}/pc"), volume, 0


def precomputed_segmentation(request, tmp_path):
    volume = make_volume(np.uint16, seed=3).astype(np.uint64) * 1000003  # ids well past 32 bits
    write_precomputed(tmp_path / "seg", volume, encoding="compressed_segmentation")
    return SourceSpec(datasource="precomputed", source_url=str(tmp_path / "seg")), volume, 0


def precomputed_jpeg(request, tmp_path):
    written = write_precomputed(tmp_path / "jpg", request.getfixturevalue("volume8"), encoding="jpeg")
    return SourceSpec(datasource="precomputed", source_url=str(tmp_path / "jpg")), written, 0


def precomputed_sharded(request, tmp_path):
    volume = request.getfixturevalue("volume16")
    write_precomputed(tmp_path / "sharded", volume, sharded=True)
    return SourceSpec(datasource="precomputed", source_url=str(tmp_path / "sharded")), volume, 0


class TestPrecomputedSharded(SourceTests):
    case = staticmethod(precomputed_sharded)


class TestOmeZarrV3(SourceTests):
    case = staticmethod(ome_zarr_v3)


class TestOmeZarrV2Level1(SourceTests):
    case = staticmethod(ome_zarr_v2_level1)


class TestOmeZarr5D(SourceTests):
    case = staticmethod(ome_zarr_5d_channel_and_time)


class TestN5Multiscale(SourceTests):
    case = staticmethod(n5_multiscale)


class TestN5BigDataViewer(SourceTests):
    case = staticmethod(n5_bdv_setup1_time1)


class TestPrecomputedRaw(SourceTests):
    case = staticmethod(precomputed_raw_offset)


class TestPrecomputedCompressedSegmentation(SourceTests):
    case = staticmethod(precomputed_segmentation)


class TestPrecomputedJpeg(SourceTests):
    case = staticmethod(precomputed_jpeg)


# --- what the metadata says -------------------------------------------------------------------------


def opened(**fields):
    return open_source(SourceSpec(**fields))


@pytest.mark.parametrize("version", [2, 3])
def test_ome_zarr_voxel_size_unit_and_translation_per_level(tmp_path, version):
    volume = make_volume(np.uint8, (8, 64, 96))
    write_ome_zarr(tmp_path / "i.ome.zarr", volume, version=version, scale=(2.0, 0.5, 0.25), unit="micrometer",
                   translation=(10.0, 8.0, 4.0), levels=2)
    level0 = opened(datasource="zarr", source_url=str(tmp_path / "i.ome.zarr"))
    assert (level0.voxel_size, level0.voxel_unit, level0.voxel_offset) == ((0.25, 0.5, 2.0), "micrometers", (16, 16, 5))
    level1 = opened(datasource="zarr", source_url=str(tmp_path / "i.ome.zarr"), source_level=1)
    assert (level1.voxel_size, level1.voxel_offset, level1.shape_xy) == ((0.5, 1.0, 2.0), (8, 8, 5), (48, 32))


def test_units_boss_lacks_are_converted(tmp_path):
    write_ome_zarr(tmp_path / "a.ome.zarr", make_volume(np.uint8, (4, 16, 16)), scale=(5.0, 2.0, 2.0), unit="angstrom")
    source = opened(datasource="zarr", source_url=str(tmp_path / "a.ome.zarr"))
    assert source.voxel_unit == "nanometers" and source.voxel_size == pytest.approx((0.2, 0.2, 0.5))


def test_n5_levels_scale_the_pixel_resolution(tmp_path):
    write_n5_multiscale(tmp_path / "v.n5", make_volume(np.uint8, (8, 64, 64)), [4, 4, 40], "nm")
    source = opened(datasource="n5", source_url=str(tmp_path / "v.n5"), source_level=1)
    assert (source.voxel_size, source.voxel_unit, source.shape_xy) == ((8.0, 8.0, 40.0), "nanometers", (32, 32))


def test_bigdataviewer_counts_setups_and_time_points(tmp_path):
    volumes = [[make_volume(np.uint8, (4, 32, 32), seed=t) for t in range(3)] for _ in range(2)]
    write_bdv_n5(tmp_path / "d.n5", volumes)
    source = opened(datasource="n5", source_url=str(tmp_path / "d.n5"), channel_index=0, time_index=2, source_level=1)
    assert (source.channel_count, source.time_points, source.voxel_size) == (2, 3, (2.0, 2.0, 1.0))
    np.testing.assert_array_equal(source.read_slab(0, 4), volumes[0][2][:, ::2, ::2])


def test_precomputed_resolution_offset_and_encoding(tmp_path):
    write_precomputed(tmp_path / "pc", make_volume(np.uint8, (8, 32, 32)), resolution=(8, 8, 30),
                      voxel_offset=(64, 32, 3))
    source = opened(datasource="precomputed", source_url=str(tmp_path / "pc"))
    assert (source.voxel_size, source.voxel_unit, source.voxel_offset) == ((8.0, 8.0, 30.0), "nanometers", (64, 32, 3))
    assert "precomputed raw" in source.describe()


def test_a_channel_is_picked_by_label_or_index(tmp_path):
    volume = make_volume(np.uint8, (2, 4, 16, 16), seed=9)  # c, z, y, x
    write_ome_zarr(tmp_path / "c.ome.zarr", volume, axes="czyx", labels=["a", "b"])
    url = str(tmp_path / "c.ome.zarr")
    np.testing.assert_array_equal(opened(datasource="zarr", source_url=url, channel="b").read_slab(0, 4), volume[1])
    np.testing.assert_array_equal(opened(datasource="zarr", source_url=url, channel="x", channel_index=0)
                                  .read_slab(0, 4), volume[0])
    with pytest.raises(UsageError, match=r"has 2 channels \(a, b\): name one with --channel"):
        opened(datasource="zarr", source_url=url, channel="x")


def test_signed_volumes_need_a_datatype_and_values_that_fit(tmp_path):
    volume = make_volume(np.uint8, (4, 16, 16)).astype(np.int16)
    write_ome_zarr(tmp_path / "s.ome.zarr", volume)
    url = str(tmp_path / "s.ome.zarr")
    with pytest.raises(BadInput, match="holds int16 voxels, which no BOSS channel holds: pass --datatype"):
        opened(datasource="zarr", source_url=url)
    converted = opened(datasource="zarr", source_url=url, datatype="uint8")
    np.testing.assert_array_equal(converted.read_slab(0, 4), volume.astype(np.uint8))
    volume[2, 3, 4] = -1
    write_ome_zarr(tmp_path / "s.ome.zarr", volume)
    with pytest.raises(BadInput, match=r"has values -1\.\.\d+ in .*, which uint8 cannot hold"):
        opened(datasource="zarr", source_url=url, datatype="uint8").read_slab(0, 4)


def test_float_volumes_are_refused_even_with_a_datatype(tmp_path):
    write_ome_zarr(tmp_path / "f.ome.zarr", np.zeros((2, 8, 8), np.float32))
    with pytest.raises(BadInput, match="holds float32 voxels.*convert the volume"):
        opened(datasource="zarr", source_url=str(tmp_path / "f.ome.zarr"), datatype="uint16")


# --- bad sources: one clear line each ----------------------------------------------------------------


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_missing_metadata_files_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    for datasource, expected in (("zarr", "has no zarr.json, .zattrs or .zarray"),
                                 ("n5", "has no attributes.json"), ("precomputed", "has no info file")):
        with pytest.raises(BadInput) as caught:
            opened(datasource=datasource, source_url=str(tmp_path / "empty"))
        assert expected in one_line(caught) and str(tmp_path / "empty") in one_line(caught)


def test_a_level_that_does_not_exist(tmp_path):
    write_ome_zarr(tmp_path / "l.ome.zarr", make_volume(np.uint8, (4, 32, 32)), levels=2)
    with pytest.raises(OutOfBounds) as caught:
        opened(datasource="zarr", source_url=str(tmp_path / "l.ome.zarr"), source_level=5)
    assert "--source_level 5 does not exist" in one_line(caught) and "levels 0 to 1" in one_line(caught)


def test_an_unsupported_precomputed_encoding(tmp_path):
    write_precomputed(tmp_path / "pc", make_volume(np.uint8, (8, 16, 16)))
    info = json.loads((tmp_path / "pc" / "info").read_text())
    info["scales"][0]["encoding"] = "fpzip"
    (tmp_path / "pc" / "info").write_text(json.dumps(info))
    with pytest.raises(BadInput) as caught:
        opened(datasource="precomputed", source_url=str(tmp_path / "pc"))
    assert "is fpzip-encoded, which tensorstore cannot read" in one_line(caught)


def test_urls_tensorstore_cannot_open(tmp_path):
    with pytest.raises(BadInput) as caught:
        opened(datasource="zarr", source_url="ftp://127.0.0.1/volume.zarr")
    assert "cannot read ftp:// URLs" in one_line(caught)
    with pytest.raises(BadInput) as caught:  # nothing listens on port 9 (discard) of this machine
        opened(datasource="zarr", source_url="http://127.0.0.1:9/volume.zarr")
    assert one_line(caught).startswith("cannot read http://127.0.0.1:9/volume.zarr/zarr.json")


def test_a_damaged_chunk_fails_its_read_with_the_box(tmp_path):
    volume = make_volume(np.uint8, (8, 32, 32))
    write_ome_zarr(tmp_path / "d.ome.zarr", volume, version=2)
    chunk = next(p for p in (tmp_path / "d.ome.zarr" / "0").rglob("*") if p.is_file() and not p.name.startswith("."))
    chunk.write_bytes(b"not a chunk")
    source = opened(datasource="zarr", source_url=str(tmp_path / "d.ome.zarr"))
    with pytest.raises(Exception, match="cannot read .* of .*d.ome.zarr") as caught:
        source.read(Box((0, 0, 0), (32, 32, 8)))
    assert "a damaged chunk of the volume: re-write it there; re-running reads the same bytes" in one_line(caught)


def test_a_truncated_precomputed_chunk_is_named_as_damaged(tmp_path):
    """A truncated chunk is the volume's fault: the failed block's line says a re-run reads the same bytes."""
    write_precomputed(tmp_path / "pc", make_volume(np.uint16, (8, 16, 16)))
    chunk = next(p for p in (tmp_path / "pc").rglob("*-*_*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(Exception) as caught:
        opened(datasource="precomputed", source_url=str(tmp_path / "pc")).read(Box((0, 0, 0), (16, 16, 8)))
    assert "damaged chunk" in one_line(caught)


def test_missing_source_url_says_which_flag(tmp_path):
    with pytest.raises(BadInput, match="--datasource n5 needs --source URL"):
        opened(datasource="n5")


def test_n5_dataset_with_a_cosem_transform(tmp_path):
    volume = make_volume(np.uint8, (6, 20, 30))
    write_n5_dataset(tmp_path / "em.n5", volume, {"transform": {"axes": ["z", "y", "x"], "scale": [8.0, 4.0, 2.0],
                                                                "translate": [80.0, 40.0, 20.0],
                                                                "units": ["nm", "nm", "nm"]}})
    source = opened(datasource="n5", source_url=str(tmp_path / "em.n5"))
    assert (source.voxel_size, source.voxel_unit, source.voxel_offset) == ((2.0, 4.0, 8.0), "nanometers", (10, 10, 10))
    np.testing.assert_array_equal(source.read_slab(0, 6), volume)


def ome_zarr_on_s3(request, tmp_path):
    """An OME-Zarr uploaded to moto's S3 and read through tensorstore's s3 driver (AWS_ENDPOINT_URL)."""
    endpoint = request.getfixturevalue("s3_env")
    volume = request.getfixturevalue("volume16")
    write_ome_zarr(tmp_path / "img.ome.zarr", volume, version=3, chunks=128)  # few objects: quick to upload
    client = s3_client(endpoint)
    bucket = f"zarr-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    for path in (tmp_path / "img.ome.zarr").rglob("*"):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=f"lab/{path.relative_to(tmp_path).as_posix()}", Body=path.read_bytes())
    return SourceSpec(datasource="zarr", source_url=f"s3://{bucket}/lab/img.ome.zarr"), volume, 0


class TestOmeZarrOnS3(SourceTests):
    case = staticmethod(ome_zarr_on_s3)


def test_bigdataviewer_xml_names_setups_and_gives_their_voxel_size(tmp_path):
    volumes = [[make_volume(np.uint8, (4, 32, 48), seed=c)] for c in range(2)]
    write_bdv_n5(tmp_path / "dataset.n5", volumes)
    write_bdv_xml(tmp_path / "dataset.xml", "dataset.n5", [("dapi", "µm", (0.5, 0.5, 2.0)), ("gfp", "µm", (0.5, 0.5, 2.0))])
    source = opened(datasource="n5", source_url=str(tmp_path / "dataset.xml"), channel="gfp", source_level=1)
    assert (source.voxel_size, source.voxel_unit, source.channel_labels) == ((1.0, 1.0, 2.0), "micrometers",
                                                                            ("dapi", "gfp"))
    np.testing.assert_array_equal(source.read_slab(0, 4), volumes[1][0][:, ::2, ::2])
    with pytest.raises(UsageError, match=r"has 2 channels \(dapi, gfp\)"):
        opened(datasource="n5", source_url=str(tmp_path / "dataset.xml"), channel="em")
    (tmp_path / "h5.xml").write_text('<SpimData><SequenceDescription><ImageLoader format="bdv.hdf5">'
                                     '<hdf5 type="relative">d.h5</hdf5></ImageLoader></SequenceDescription></SpimData>')
    with pytest.raises(BadInput, match="keeps its images as bdv.hdf5, not bdv.n5"):
        opened(datasource="n5", source_url=str(tmp_path / "h5.xml"))


def test_a_box_reads_only_the_chunks_under_it(tmp_path):
    """A damaged chunk outside the box does not matter: only the chunks a block needs are fetched."""
    volume = make_volume(np.uint8, (32, 64, 64))
    write_ome_zarr(tmp_path / "p.ome.zarr", volume, version=2, chunks=32)  # chunks of 32x32x32, v2 keys z.y.x
    (tmp_path / "p.ome.zarr" / "0" / "0.1.1").write_bytes(b"damaged")
    source = opened(datasource="zarr", source_url=str(tmp_path / "p.ome.zarr"))
    np.testing.assert_array_equal(source.read(Box((0, 0, 0), (32, 64, 16))), volume[:16, :, :32])
    with pytest.raises(Exception, match="cannot read"):
        source.read(Box((32, 32, 0), (33, 33, 1)))


@pytest.mark.parametrize("datasource", ["zarr", "n5", "precomputed"])
def test_without_tensorstore_the_datasource_names_the_install(monkeypatch, datasource):
    monkeypatch.setitem(sys.modules, "tensorstore", None)  # makes `import tensorstore` fail as if not installed
    for module in ("ndex.sources.volume", "ndex.sources.volume_formats", "ndex.sources.ts_store"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(UsageError, match=rf"the {datasource} datasource needs tensorstore.*pip install 'ndex\[zarr\]'"):
        opened(datasource=datasource, source_url="/nowhere")


def test_importing_sources_does_not_import_tensorstore():
    code = "import sys, ndex.sources, ndex.cli.push; print('tensorstore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == [
        "False"]


@pytest.mark.parametrize("version", [2, 3])
def test_a_bioformats2raw_root_reads_its_first_image(tmp_path, version):
    volume = make_volume(np.uint16, (4, 24, 40))
    write_ome_zarr(tmp_path / "b.ome.zarr" / "0", volume, version=version)
    root = zarr.open_group(str(tmp_path / "b.ome.zarr"), mode="a", zarr_format=version)
    if version == 3:
        root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
    else:
        root.attrs["bioformats2raw.layout"] = 3
    source = opened(datasource="zarr", source_url=str(tmp_path / "b.ome.zarr"))
    np.testing.assert_array_equal(source.read_slab(0, 4), volume)


def test_urls_become_tensorstore_stores(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert kvstore("precomputed://gs://lab-data/em/seg/") == {"driver": "gcs", "bucket": "lab-data", "path": "em/seg/"}
    assert kvstore("s3://lab/brain.ome.zarr", aws_profile="lab") == {
        "driver": "s3", "bucket": "lab", "path": "brain.ome.zarr/", "aws_credentials": {"type": "profile", "profile": "lab"}}
    assert kvstore("zarr://http://127.0.0.1:8000/a/img.zarr/") == {
        "driver": "http", "base_url": "http://127.0.0.1:8000", "path": "/a/img.zarr/"}
    assert kvstore("file:///data/v.n5")["path"] == "/data/v.n5/"


def test_a_volume_under_the_wrong_datasource_names_the_right_one(tmp_path):
    """A CloudVolume user who types --datasource zarr for a precomputed volume is told which one to use."""
    volume = make_volume(np.uint8, (4, 32, 32))
    write_ome_zarr(tmp_path / "v.ome.zarr", volume, version=2)
    write_n5_multiscale(tmp_path / "v.n5", volume, [4, 4, 40], "nm")
    write_precomputed(tmp_path / "v.precomputed", volume)
    for path, given, right, marker in (("v.ome.zarr", "n5", "zarr", ".zattrs"), ("v.n5", "zarr", "n5", "attributes.json"),
                                       ("v.precomputed", "zarr", "precomputed", "info"),
                                       ("v.ome.zarr", "precomputed", "zarr", ".zattrs")):
        with pytest.raises(BadInput) as caught:
            opened(datasource=given, source_url=str(tmp_path / path))
        assert f"looks like {right} (it has {marker}): use --datasource {right}" in one_line(caught)


def test_a_path_that_does_not_exist_or_is_a_file(tmp_path):
    with pytest.raises(BadInput) as caught:  # a URL without its scheme reads as a relative path
        opened(datasource="zarr", source_url="bucket.example/brain.ome.zarr")
    assert "brain.ome.zarr/ does not exist" in one_line(caught) and "a URL needs its scheme" in one_line(caught)
    (tmp_path / "dataset.xml").write_text("<SpimData/>")
    with pytest.raises(BadInput) as caught:
        opened(datasource="zarr", source_url=str(tmp_path / "dataset.xml"))
    assert "dataset.xml is a file" in one_line(caught) and "read with --datasource n5" in one_line(caught)


def test_a_volume_in_huge_chunks_is_named_with_the_memory_it_costs(tmp_path, caplog):
    """Each read decodes whole chunks: a volume stored as one 80 MB chunk needs that beside the slab; the
    user is told (once) and how to avoid it, and the push's estimate and memory fitting count two chunks."""
    zarr.open_array(str(tmp_path / "big.zarr"), mode="w", shape=(20, 2048, 2048), chunks=(20, 2048, 2048),
                    dtype="uint8", zarr_format=2)
    zarr.open_array(str(tmp_path / "fine.zarr"), mode="w", shape=(20, 2048, 2048), chunks=(16, 512, 512),
                    dtype="uint8", zarr_format=2)
    with caplog.at_level("WARNING", logger="ndex.sources.volume"):
        for _ in range(2):
            assert opened(datasource="zarr", source_url=str(tmp_path / "big.zarr")).chunk_bytes == 20 * 2048 * 2048
        assert opened(datasource="zarr", source_url=str(tmp_path / "fine.zarr")).chunk_bytes == 16 * 512 * 512
    warned = [r.getMessage() for r in caplog.records if "chunks of" in r.getMessage()]
    assert len(warned) == 1 and "big.zarr" in warned[0] and "chunks of 84 MB" in warned[0] and "re-chunk" in warned[0]
    big = opened(datasource="zarr", source_url=str(tmp_path / "big.zarr"))
    spec = PushSpec(ChannelRef("c", "e", "ch"), big.spec, offsets=(0, 0, 0))
    box = Box((0, 0, 0), (2048, 2048, 20))
    fine, coarse = layout(spec, TransferOptions(), box, 1), layout(spec, TransferOptions(), box, 1, big.chunk_bytes)
    assert coarse.process_estimate - fine.process_estimate == 2 * big.chunk_bytes
    capped = layout(spec, TransferOptions(max_memory=fine.process_estimate), box, 1, big.chunk_bytes)
    assert capped.process_estimate <= fine.process_estimate and capped.slab_bytes < fine.slab_bytes  # smaller bands
    with pytest.raises(UsageError, match="max_memory"):  # the chunks alone do not fit
        layout(spec, TransferOptions(max_memory=2 * big.chunk_bytes), box, 1, big.chunk_bytes)


def test_bigdataviewer_setup_ids_with_a_gap(tmp_path):
    """BigStitcher keeps the ids of removed views: setups 0 and 2, no setup1. The XML's second setup is read."""
    volumes = [[make_volume(np.uint16, (4, 32, 48), seed=c)] for c in range(2)]
    write_bdv_n5(tmp_path / "dataset.n5", volumes, levels=1)
    (tmp_path / "dataset.n5" / "setup1").rename(tmp_path / "dataset.n5" / "setup2")
    xml = write_bdv_xml(tmp_path / "dataset.xml", "dataset.n5", [("dapi", "nm", (4, 4, 40)), ("gfp", "nm", (4, 4, 40))])
    xml.write_text(xml.read_text().replace("<id>1</id>", "<id>2</id>"))
    for pick in ({"channel": "gfp"}, {"channel_index": 1}):
        source = opened(datasource="n5", source_url=str(xml), **pick)
        np.testing.assert_array_equal(source.read_slab(0, 4), volumes[1][0])
    assert source.channel_count == 2


@pytest.mark.parametrize("datasource, name, text, expected", [
    ("precomputed", "info", "[1, 2]", "info is not a JSON object"),
    ("zarr", "zarr.json", '"zarr"', "zarr.json is not a JSON object"),
    ("n5", "attributes.json", "not json", "attributes.json is not a JSON object"),
    ("precomputed", "info", '{"scales": [{"key": "a", "resolution": "8 8 8"}]}', "is malformed (ValueError"),
    ("zarr", ".zattrs", '{"multiscales": [{"datasets": ["0"]}]}', "is malformed (AttributeError"),
    ("n5", "attributes.json", '{"dimensions": 5}', "is malformed (TypeError"),
])
def test_malformed_metadata_is_one_line_not_a_traceback(tmp_path, datasource, name, text, expected):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / name).write_text(text)
    with pytest.raises(BadInput) as caught:
        opened(datasource=datasource, source_url=str(tmp_path / "v"))
    assert expected in one_line(caught)


@pytest.mark.parametrize("declared", ['<Timepoints type="range"><first>5</first><last>6</last></Timepoints>',
                                      '<Timepoints type="pattern"><integerpattern>5-6</integerpattern></Timepoints>',
                                      '<Timepoints type="list"><integerpattern>5, 6</integerpattern></Timepoints>'])
def test_bigdataviewer_time_points_that_do_not_start_at_0(tmp_path, declared):
    """A time series saved from time point 5 on: the XML's ids are its time points 0, 1, ... in order."""
    series = [make_volume(np.uint8, (4, 16, 16), seed=t) for t in range(2)]
    write_bdv_n5(tmp_path / "dataset.n5", [series], levels=1)
    for t in (1, 0):  # timepoint0 -> timepoint5, timepoint1 -> timepoint6
        (tmp_path / "dataset.n5" / "setup0" / f"timepoint{t}").rename(tmp_path / "dataset.n5" / "setup0" / f"timepoint{t + 5}")
    xml = write_bdv_xml(tmp_path / "dataset.xml", "dataset.n5", [("gfp", "nm", (4, 4, 40))])
    xml.write_text(xml.read_text().replace("</ViewSetups>", "</ViewSetups>" + declared))
    source = opened(datasource="n5", source_url=str(xml), time_index=1)
    assert source.time_points == 2
    np.testing.assert_array_equal(source.read_slab(0, 4), series[1])
