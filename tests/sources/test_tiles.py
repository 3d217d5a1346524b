"""CATMAID-style tiles: stitched in parallel, missing tiles are zeros and counted."""
from __future__ import annotations

import numpy as np
import pytest

from ndex.errors import SourceError, UsageError
from ndex.sources import SourceSpec, open_source

from .conftest import encode, make_volume

TILE = 16
VOLUME_SHAPE = (3, 40, 50)  # 3 rows x 4 cols of 16-pixel tiles; the last row and col are partial


def write_tiles(root, volume, pattern="{z}/{row}_{col}_0.png", pad=False):
    for z, image in enumerate(volume):
        for row in range(-(-image.shape[0] // TILE)):
            for col in range(-(-image.shape[1] // TILE)):
                tile = image[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE]
                if pad:
                    tile = np.pad(tile, ((0, TILE - tile.shape[0]), (0, TILE - tile.shape[1])))
                path = root / pattern.format(z=z, row=row, col=col)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(encode(np.ascontiguousarray(tile), "png"))


def spec(root, **kw):
    fields = dict(datasource="tiles", base_path=str(root), tile_pattern="{z}/{row}_{col}_0.png", tile_size=TILE,
                  x_extent=(0, VOLUME_SHAPE[2]), y_extent=(0, VOLUME_SHAPE[1]), z_range=(0, VOLUME_SHAPE[0]),
                  read_threads=3)
    fields.update(kw)
    return SourceSpec(**fields)


def test_short_edge_tiles_are_accepted(tmp_path):
    volume = make_volume(np.uint16, VOLUME_SHAPE, seed=8)
    write_tiles(tmp_path, volume)
    source = open_source(spec(tmp_path))
    try:
        assert source.dtype == np.uint16 and source.grid == (4, 3)
        np.testing.assert_array_equal(source.read_slab(0, 3), volume)
        assert source.missing_tiles == 0
    finally:
        source.close()


def test_missing_tiles_are_zeros_and_counted(tmp_path):
    volume = make_volume(np.uint8, VOLUME_SHAPE, seed=9)
    write_tiles(tmp_path, volume, pad=True)
    (tmp_path / "1" / "2_3_0.png").unlink()
    (tmp_path / "2" / "0_0_0.png").unlink()
    source = open_source(spec(tmp_path, datatype="uint8"))
    try:
        source.validate()
        slab = source.read_slab(0, 3)
    finally:
        source.close()
    expected = volume.copy()
    expected[1, 32:40, 48:50] = 0
    expected[2, 0:16, 0:16] = 0
    np.testing.assert_array_equal(slab, expected)
    assert source.missing_tiles == 2
    assert source.missing == []  # no slice lost every tile


def test_a_slice_without_any_tile_is_listed_as_missing(tmp_path):
    volume = make_volume(np.uint8, VOLUME_SHAPE, seed=10)
    write_tiles(tmp_path, volume)
    for path in (tmp_path / "1").iterdir():
        path.unlink()
    source = open_source(spec(tmp_path))
    try:
        assert not source.read_slab(0, 3)[1].any()
        assert source.missing == [1] and source.missing_tiles == 12
    finally:
        source.close()


def test_format_specs_and_the_channel_work_in_the_pattern(tmp_path):
    volume = make_volume(np.uint8, VOLUME_SHAPE, seed=11)
    write_tiles(tmp_path, volume, pattern="em/{z:03d}/{row}/{col}.png")
    source = open_source(spec(tmp_path, tile_pattern="{ch}/{z:03d}/{row}/{col}.png", channel="em"))
    try:
        np.testing.assert_array_equal(source.read_slab(1, 2), volume[1:2])
    finally:
        source.close()


def test_an_oversized_tile_names_itself(tmp_path):
    volume = make_volume(np.uint8, VOLUME_SHAPE, seed=12)
    write_tiles(tmp_path, volume)
    (tmp_path / "0" / "1_1_0.png").write_bytes(encode(np.zeros((TILE + 1, TILE), np.uint8), "png"))
    source = open_source(spec(tmp_path))
    try:
        with pytest.raises(SourceError, match=r"tile .*0/1_1_0\.png is 16x17 \(x by y\) but tiles are 16x16"):
            source.read_slab(0, 1)
    finally:
        source.close()


@pytest.mark.parametrize(("kw", "message"), [
    ({"tile_pattern": "{z}/{col}.png"}, r"lacks \{row\}"),
    ({"tile_pattern": "{z}/{row}_{col}_{level}.png"}, "not a format string"),
    ({"x_extent": None}, "need --x_extent"),
])
def test_bad_tile_specs_are_usage_errors(tmp_path, kw, message):
    with pytest.raises(UsageError, match=message):
        open_source(spec(tmp_path, **kw))


def test_a_band_reads_only_its_tiles_and_counts_a_missing_one_once(tmp_path):
    from ndex.geometry import Box

    volume = make_volume(np.uint8, VOLUME_SHAPE, seed=4)
    write_tiles(tmp_path, volume)
    (tmp_path / "1/1_2_0.png").unlink()  # rows 16:32, columns 32:48 of z 1
    volume[1, 16:32, 32:48] = 0
    source = open_source(spec(tmp_path))
    reads = []
    real = source.store.read
    source.store.read = lambda location: reads.append(location) or real(location)
    try:
        for y0, y1 in ((0, 20), (20, 40)):  # the second tile row is read by both bands
            band = Box((30, y0, 0), (50, y1, 3))
            np.testing.assert_array_equal(source.read(band), volume[:, y0:y1, 30:50])
        assert len(reads) == 2 * (3 * 2 * 3)  # per band: 3 z x 2 tile rows x 3 tile columns (of 3 x 4 per slice)
        assert source.missing_tiles == 1 and source.missing == []
    finally:
        source.close()
