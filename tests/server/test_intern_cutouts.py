"""Cutouts, to_black, ids, reserve, bounding boxes and metadata through intern's BossRemote."""
from __future__ import annotations

import numpy as np
import pytest
from fixtures_server import make_channel
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import ChannelResource, CollectionResource, ExperimentResource
from intern.service.boss.httperrorlist import HTTPErrorList
from requests import HTTPError

EXTENT = (1100, 1100, 40)


@pytest.fixture(scope="module")
def rmt(server_app):
    return BossRemote(server_app.intern_config())


@pytest.fixture(scope="module", params=["uint8", "uint16", "uint64"])
def chan(request, server_app, rmt):
    kind = "annotation" if request.param == "uint64" else "image"
    tc = make_channel(server_app, datatype=request.param, kind=kind, extent=EXTENT, time_samples=4)
    return rmt.get_channel(tc.channel, tc.collection, tc.experiment)


RNG = np.random.default_rng(7)


def random(dtype, shape):
    rng = RNG
    top = 1000 if dtype == "uint64" else np.iinfo(dtype).max
    return rng.integers(1, top, size=shape, endpoint=True).astype(dtype)


def test_3d_round_trip_and_sub_box(rmt, chan):
    data = random(chan.datatype, (5, 4, 8))
    rmt.create_cutout(chan, 0, [0, 8], [0, 4], [0, 5], data)
    assert np.array_equal(rmt.get_cutout(chan, 0, [0, 8], [0, 4], [0, 5]), data)
    assert np.array_equal(rmt.get_cutout(chan, 0, [2, 5], [1, 3], [1, 4]), data[1:4, 1:3, 2:5])


def test_never_written_region_reads_zero(rmt, chan):
    out = rmt.get_cutout(chan, 0, [1000, 1004], [1000, 1004], [30, 38])
    assert out.shape == (8, 4, 4) and not out.any()


def test_4d_round_trip_with_time(rmt, chan):
    data = random(chan.datatype, (3, 2, 4, 6))
    rmt.create_cutout(chan, 0, [600, 606], [600, 604], [20, 22], data, time_range=[1, 4])
    assert np.array_equal(rmt.get_cutout(chan, 0, [600, 606], [600, 604], [20, 22], time_range=[1, 4]), data)
    # the 3D form reads default_time_sample 0, which was never written there
    assert not rmt.get_cutout(chan, 0, [600, 606], [600, 604], [20, 22]).any()


def test_write_up_to_the_edge_passes_and_past_it_fails(rmt, chan):
    x, y, z = EXTENT
    data = random(chan.datatype, (2, 3, 4))
    rmt.create_cutout(chan, 0, [x - 4, x], [y - 3, y], [z - 2, z], data)
    assert np.array_equal(rmt.get_cutout(chan, 0, [x - 4, x], [y - 3, y], [z - 2, z]), data)
    for xr, yr, zr in (([x - 3, x + 1], [0, 3], [0, 2]), ([0, 4], [y - 2, y + 1], [0, 2]),
                       ([0, 4], [0, 3], [z - 1, z + 1])):
        with pytest.raises(HTTPError) as err:
            rmt.create_cutout(chan, 0, xr, yr, zr, data)
        assert err.value.response.status_code == 400 and err.value.response.json()["code"] == 1001


def test_zeros_merge_and_non_zero_overwrites(rmt, chan):
    first = random(chan.datatype, (2, 4, 4))
    rmt.create_cutout(chan, 0, [100, 104], [100, 104], [2, 4], first)
    second = np.zeros_like(first)
    second[0, 0, 0] = 9
    rmt.create_cutout(chan, 0, [100, 104], [100, 104], [2, 4], second)
    expected = first.copy()
    expected[0, 0, 0] = 9
    assert np.array_equal(rmt.get_cutout(chan, 0, [100, 104], [100, 104], [2, 4]), expected)


def test_write_across_cuboid_borders(rmt, chan):
    data = random(chan.datatype, (18, 8, 20))
    rmt.create_cutout(chan, 0, [500, 520], [508, 516], [10, 28], data)
    assert np.array_equal(rmt.get_cutout(chan, 0, [500, 520], [508, 516], [10, 28]), data)


def test_to_black_clears_only_the_box(rmt, chan):
    data = random(chan.datatype, (4, 8, 8))
    rmt.create_cutout(chan, 0, [200, 208], [200, 208], [4, 8], data)
    rmt.create_cutout_to_black(chan, 0, [200, 204], [200, 208], [5, 6])
    expected = data.copy()
    expected[1, :, :4] = 0
    assert np.array_equal(rmt.get_cutout(chan, 0, [200, 208], [200, 208], [4, 8]), expected)


def test_to_black_with_time_range(rmt, chan):
    data = random(chan.datatype, (3, 1, 2, 2))
    rmt.create_cutout(chan, 0, [300, 302], [300, 302], [0, 1], data, time_range=[0, 3])
    rmt.create_cutout_to_black(chan, 0, [300, 302], [300, 302], [0, 1], time_range=[0, 3])
    assert not rmt.get_cutout(chan, 0, [300, 302], [300, 302], [0, 1], time_range=[0, 3]).any()


@pytest.fixture(scope="module")
def ann(server_app, rmt):
    tc = make_channel(server_app, datatype="uint64", kind="annotation", extent=EXTENT)
    return rmt.get_channel(tc.channel, tc.collection, tc.experiment)


def test_filter_keeps_only_listed_ids(rmt, ann):
    data = np.zeros((16, 4, 514), dtype=np.uint64)
    data[:, :, :200] = 123
    data[:, :, 200:400] = 321
    data[:, :, 400:] = 55555
    rmt.create_cutout(ann, 0, [511, 1025], [512, 516], [16, 32], data)
    args = (ann, 0, [511, 1025], [512, 516], [16, 32])
    assert np.array_equal(rmt.get_cutout(*args, id_list=[123, 321, 55555]), data)
    assert np.array_equal(rmt.get_cutout(*args, id_list=[123]), np.where(data == 123, data, 0))
    assert np.array_equal(rmt.get_cutout(*args, id_list=[321, 55555]), np.where(data != 123, data, 0))
    assert rmt.get_ids_in_region(ann, 0, [500, 1030], [500, 520], [10, 40]) == [123, 321, 55555]


def test_bounding_boxes_loose_and_tight(rmt, ann):
    data = np.full((2, 3, 4), 777, dtype=np.uint64)
    rmt.create_cutout(ann, 0, [510, 514], [10, 13], [14, 16], data)
    loose = rmt.get_bounding_box(ann, 0, 777, "loose")
    assert loose == {"x_range": [0, 1024], "y_range": [0, 512], "z_range": [0, 16], "t_range": [0, 1]}
    tight = rmt.get_bounding_box(ann, 0, 777, "tight")
    assert (tight["x_range"], tight["y_range"], tight["z_range"]) == ([510, 514], [10, 13], [14, 16])
    with pytest.raises(HTTPError) as err:
        rmt.get_bounding_box(ann, 0, 424242, "loose")
    assert err.value.response.status_code == 404 and err.value.response.json()["code"] == 4004


def test_reserve_ids_counts_up_from_one(rmt, ann):
    first = rmt.reserve_ids(ann, 20)
    second = rmt.reserve_ids(ann, 5)
    assert first >= 1 and second == first + 20


def test_ids_on_empty_region(rmt, ann):
    assert rmt.get_ids_in_region(ann, 0, [1000, 1010], [1000, 1010], [30, 31]) == []


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_metadata_life_cycle(rmt, server_app, depth):
    tc = make_channel(server_app)
    res = [CollectionResource(tc.collection), ExperimentResource(tc.experiment, tc.collection),
           ChannelResource(tc.channel, tc.collection, tc.experiment)][depth - 1]
    assert rmt.list_metadata(res) == []
    rmt.create_metadata(res, {"red": "green", "two": 2, "inside": "with space"})
    assert rmt.get_metadata(res, ["red", "two", "inside"]) == {"red": "green", "two": "2", "inside": "with space"}
    with pytest.raises(HTTPErrorList):
        rmt.create_metadata(res, {"red": "again"})
    rmt.update_metadata(res, {"red": "blue"})
    assert rmt.get_metadata(res, ["red"]) == {"red": "blue"}
    with pytest.raises(HTTPErrorList):
        rmt.update_metadata(res, {"foo": "bar"})
    assert sorted(rmt.list_metadata(res)) == ["inside", "red", "two"]
    rmt.delete_metadata(res, ["red", "two", "inside"])
    with pytest.raises(HTTPErrorList):
        rmt.get_metadata(res, ["foo"])
    assert rmt.list_metadata(res) == []
