"""Local slice files: ndex 1.x templates, z_step, formats, and one-line errors that name the file."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ndex.errors import SourceError, UsageError
from ndex.sources import SourceSpec, open_source
from ndex.sources.templates import fill_template

from .conftest import encode, make_volume, write_slices

SMALL = (4, 30, 40)  # z, y, x


def spec(directory: Path, **kw) -> SourceSpec:
    fields = dict(base_path=str(directory), base_filename="img_<p:4>", extension="tif", z_range=(0, SMALL[0]),
                  x_extent=(0, SMALL[2]), y_extent=(0, SMALL[1]), datatype="uint8")
    fields.update(kw)
    return SourceSpec(**fields)


def read_all(source_spec: SourceSpec) -> np.ndarray:
    source = open_source(source_spec)
    try:
        return source.read_slab(*source.z_range)
    finally:
        source.close()


@pytest.fixture
def small8() -> np.ndarray:
    return make_volume(np.uint8, SMALL, seed=3)


def test_template_placeholders_fill_like_ndex_1():
    assert fill_template("img_<p:4>", 7, "em") == "img_0007"
    assert fill_template("img_<>", 7, "em") == "img_7"
    assert fill_template("<ch>/z<p:2>_<ch>", 123, "em") == "em/z123_em"


def test_unpadded_template(tmp_path, small8):
    write_slices(tmp_path, small8, template="slice{}")
    np.testing.assert_array_equal(read_all(spec(tmp_path, base_filename="slice<>")), small8)


def test_channel_placeholder_in_path_and_name(tmp_path, small8):
    write_slices(tmp_path / "Synapsin", small8, template="Synapsin_{:05d}")
    source_spec = spec(tmp_path / "<ch>", base_filename="<ch>_<p:5>", channel="Synapsin")
    np.testing.assert_array_equal(read_all(source_spec), small8)


def test_z_step_reads_file_number_z_times_step(tmp_path, small8):
    # ndex 1.x: z 10..13 with z_step 5 read files 0050, 0055, 0060, 0065
    write_slices(tmp_path, small8, z0=10, z_step=5)
    (tmp_path / "img_0051.tif").write_bytes(encode(np.ones(SMALL[1:], np.uint8), "tif"))  # never read
    source = open_source(spec(tmp_path, z_range=(10, 14), z_step=5))
    try:
        assert source.z_range == (10, 14)
        np.testing.assert_array_equal(source.read_slab(10, 14), small8)
        np.testing.assert_array_equal(source.read_slab(12, 13), small8[2:3])
        assert "img_0050.tif" in source.describe()
    finally:
        source.close()


def test_png_16bit(tmp_path):
    volume = make_volume(np.uint16, SMALL, seed=5)
    write_slices(tmp_path, volume, fmt="png")
    np.testing.assert_array_equal(read_all(spec(tmp_path, extension="png", datatype="uint16")), volume)


def test_ome_tif_single_page(tmp_path, small8):
    for z, image in enumerate(small8):
        tifffile.imwrite(tmp_path / f"img_{z:04d}.ome.tif", image, ome=True)
    np.testing.assert_array_equal(read_all(spec(tmp_path, extension="ome.tif")), small8)


def test_extension_with_a_leading_dot_is_accepted(tmp_path, small8):
    write_slices(tmp_path, small8)
    np.testing.assert_array_equal(read_all(spec(tmp_path, extension=".tif")), small8)


def write_rgb(directory: Path, rgb: np.ndarray, fmt: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for z, image in enumerate(rgb):
        (directory / f"img_{z:04d}.{fmt}").write_bytes(encode(image, fmt))


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_rgb_is_refused_with_the_fix_named(tmp_path, fmt):
    rgb = np.random.default_rng(1).integers(0, 256, size=(*SMALL, 3), dtype=np.uint8)
    write_rgb(tmp_path, rgb, fmt)
    with pytest.raises(SourceError, match=rf"^slice z=0 \(.*img_0000\.{fmt}\) is a 3-channel.*--rgb_channel r\|g\|b"):
        open_source(spec(tmp_path, extension=fmt)).validate()


@pytest.mark.parametrize(("choice", "index"), [("r", 0), ("g", 1), ("blue", 2), (1, 1)])
def test_rgb_channel_split(tmp_path, choice, index):
    rgb = np.random.default_rng(2).integers(0, 256, size=(*SMALL, 3), dtype=np.uint8)
    write_rgb(tmp_path, rgb, "png")
    np.testing.assert_array_equal(read_all(spec(tmp_path, extension="png", rgb_channel=choice)), rgb[..., index])


def test_rgba_alpha_channel_can_be_picked(tmp_path):
    rgba = np.random.default_rng(4).integers(0, 256, size=(*SMALL, 4), dtype=np.uint8)
    write_rgb(tmp_path, rgba, "png")
    np.testing.assert_array_equal(read_all(spec(tmp_path, extension="png", rgb_channel="a")), rgba[..., 3])


def test_bad_rgb_channel_name_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="rgb channel 'purple'"):
        spec(tmp_path, rgb_channel="purple")


def test_size_mismatch_names_file_found_and_expected(tmp_path, small8):
    write_slices(tmp_path, small8)
    (tmp_path / "img_0002.tif").write_bytes(encode(np.zeros((31, 40), np.uint8), "tif"))
    source = open_source(spec(tmp_path))
    with pytest.raises(SourceError) as info:
        source.read_slab(0, 4)
    source.close()
    message = str(info.value)
    assert "slice z=2 (" in message and "img_0002.tif) is 40x31 (x by y) but the x/y extents say 40x30" in message
    assert "\n" not in message


def test_dtype_mismatch_names_file_found_and_expected(tmp_path, small8):
    write_slices(tmp_path, small8)
    (tmp_path / "img_0003.tif").write_bytes(encode(np.zeros(SMALL[1:], np.uint16), "tif"))
    with pytest.raises(SourceError, match=r"^slice z=3 \(.*img_0003\.tif\) holds uint16 voxels but the datatype is uint8: fix --datatype"):
        read_all(spec(tmp_path))


def test_label_images_widen_into_uint64(tmp_path):
    labels = np.random.default_rng(9).integers(0, 2**32, size=SMALL, dtype=np.uint32)
    write_slices(tmp_path, labels)
    result = read_all(spec(tmp_path, datatype="uint64"))
    assert result.dtype == np.uint64
    np.testing.assert_array_equal(result, labels)


def test_missing_file_is_an_error_naming_it(tmp_path, small8):
    write_slices(tmp_path, small8)
    (tmp_path / "img_0002.tif").unlink()
    with pytest.raises(SourceError, match=r"slice z=2: .*img_0002\.tif does not exist.*--warn_missing_files"):
        read_all(spec(tmp_path))


def test_missing_file_with_warn_missing_files_is_a_zero_slice(tmp_path, small8, caplog):
    write_slices(tmp_path, small8)
    (tmp_path / "img_0002.tif").unlink()
    source = open_source(spec(tmp_path, warn_missing_files=True))
    with caplog.at_level(logging.WARNING, logger="ndex.sources"):
        slab = source.read_slab(0, 4)
    source.close()
    np.testing.assert_array_equal(slab[[0, 1, 3]], small8[[0, 1, 3]])
    assert not slab[2].any()
    assert source.missing == [2]
    assert any("img_0002.tif" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_truncated_file_is_an_error_even_with_warn_missing_files(tmp_path, small8):
    write_slices(tmp_path, small8, fmt="png")
    path = tmp_path / "img_0001.png"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SourceError, match=r"^slice z=1 \(.*img_0001\.png\) is not a readable image \(image file is truncated\)"):
        read_all(spec(tmp_path, extension="png", warn_missing_files=True))


def test_truncated_tiff_is_an_error_naming_it(tmp_path, small8):
    write_slices(tmp_path, small8)
    path = tmp_path / "img_0003.tif"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(SourceError, match=r"^slice z=3 \(.*img_0003\.tif\) is not a readable image \(failed to read"):
        read_all(spec(tmp_path))


def test_validate_finds_a_bad_last_file_before_anything_is_read(tmp_path, small8):
    write_slices(tmp_path, small8)
    (tmp_path / "img_0003.tif").write_bytes(b"not an image at all")
    source = open_source(spec(tmp_path))
    with pytest.raises(SourceError, match=r"img_0003\.tif"):
        source.validate(sample=0)
    source.close()


def test_multipage_file_as_a_slice_points_to_the_stack_datasource(tmp_path, small8):
    write_slices(tmp_path, small8)
    tifffile.imwrite(tmp_path / "img_0001.tif", small8[:2])
    with pytest.raises(SourceError, match="has 2 pages.*--datasource stack"):
        read_all(spec(tmp_path))


def test_extents_and_datatype_are_learnt_from_the_first_file(tmp_path, small8):
    write_slices(tmp_path, small8)
    source = open_source(SourceSpec(base_path=str(tmp_path), base_filename="img_<p:4>", z_range=(0, 4)))
    try:
        assert (source.shape_xy, source.dtype, source.origin_xy) == ((40, 30), np.uint8, (0, 0))
    finally:
        source.close()


def test_origin_is_the_extent_start(tmp_path, small8):
    write_slices(tmp_path, small8)
    source = open_source(spec(tmp_path, x_extent=(1000, 1040), y_extent=(-30, 0)))
    try:
        assert source.origin_xy == (1000, -30) and source.shape_xy == (40, 30)
    finally:
        source.close()


@pytest.mark.parametrize(("kw", "message"), [
    ({"base_filename": "img_<z>"}, r"unknown placeholder <z>"),
    ({"base_filename": "img"}, r"no z placeholder"),
    ({"base_filename": "<ch>_<p:4>"}, r"uses <ch> but no channel"),
    ({"z_range": None}, r"no z range"),
    ({"base_filename": ""}, r"no --base_filename"),
])
def test_impossible_specs_are_usage_errors(tmp_path, kw, message):
    with pytest.raises(UsageError, match=message):
        open_source(spec(tmp_path, **kw))


def test_a_directory_where_a_file_should_be_is_a_source_error(tmp_path, small8):
    write_slices(tmp_path, small8)
    (tmp_path / "img_0001.tif").unlink()
    (tmp_path / "img_0001.tif").mkdir()
    with pytest.raises(SourceError, match=r"cannot read .*img_0001\.tif"):
        read_all(spec(tmp_path))


def test_palette_png_is_read_as_its_colours(tmp_path):
    grey = np.arange(SMALL[1] * SMALL[2], dtype=np.uint32).reshape(SMALL[1:]) % 7 * 30
    image = Image.fromarray(grey.astype(np.uint8)).convert("P")
    image.save(tmp_path / "img_0000.png")
    source = open_source(spec(tmp_path, extension="png", z_range=(0, 1), rgb_channel="r"))
    try:
        np.testing.assert_array_equal(source.read_slab(0, 1)[0], grey.astype(np.uint8))
    finally:
        source.close()
