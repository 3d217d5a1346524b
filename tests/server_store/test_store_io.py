"""Conformance suite of the volume store: reads, merge writes, zero fill, to_black, growth, on-disk layout.

Every test runs twice, on a local directory and on S3 (moto), through the `store` fixture.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import tensorstore as ts
from store_helpers import box, kvstore_spec, layout, random_labels, read_json, stored_keys

from ndex.errors import NdexError, OutOfBounds, UsageError
from ndex.geometry import Box
from ndex.server.arrays import StoreError
from ndex.server.volumes import VolumeStore

CROSSING = box((500, 530), (505, 520), (14, 19))  # touches 2 x 2 x 2 chunks


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint64"])
@pytest.mark.parametrize("t_range", [(0, 1), (1, 3)], ids=["3d", "4d"])
def test_round_trip_across_chunk_borders(store, dtype, t_range):
    lay = layout(dtype=dtype, time_samples=2)
    data = random_labels(np.random.default_rng(1), (t_range[1] - t_range[0], *CROSSING.shape_zyx), dtype)
    store.write(lay, 0, CROSSING, t_range[0], data)
    got = store.read(lay, 0, CROSSING, t_range)
    assert got.dtype == np.dtype(dtype) and got.shape == data.shape
    merged_zero_free = np.where(data != 0, data, 0)
    np.testing.assert_array_equal(got, merged_zero_free)


def test_read_of_a_sub_box_and_a_super_box(store):
    lay = layout(dtype="uint16")
    data = random_labels(np.random.default_rng(2), (1, *CROSSING.shape_zyx), "uint16")
    store.write(lay, 0, CROSSING, 0, data)
    sub = box((510, 520), (506, 519), (15, 17))
    np.testing.assert_array_equal(store.read(lay, 0, sub, (0, 1))[0], data[0][sub.slices_in(CROSSING)])
    big = box((490, 540), (500, 525), (10, 20))
    expected = np.zeros(big.shape_zyx, dtype="uint16")
    expected[CROSSING.slices_in(big)] = data[0]
    np.testing.assert_array_equal(store.read(lay, 0, big, (0, 1))[0], expected)


def test_merge_rule_zeros_keep_and_outside_untouched(store):
    lay = layout(dtype="uint64")
    rng = np.random.default_rng(3)
    first = random_labels(rng, (1, *CROSSING.shape_zyx), "uint64", zero_fraction=0.0)
    store.write(lay, 0, CROSSING, 0, first)
    inner = box((505, 525), (508, 518), (15, 18))
    second = random_labels(rng, (1, *inner.shape_zyx), "uint64", zero_fraction=0.5)
    store.write(lay, 0, inner, 0, second)
    expected = first.copy()
    view = expected[(0, *inner.slices_in(CROSSING))]
    view[...] = np.where(second[0] != 0, second[0], view)
    np.testing.assert_array_equal(store.read(lay, 0, CROSSING, (0, 1)), expected)


def test_aligned_whole_chunk_writes(store):
    lay = layout(extent=(1024, 512, 32))
    whole = box((0, 1024), (0, 512), (0, 32))
    rng = np.random.default_rng(4)
    full = random_labels(rng, (1, *whole.shape_zyx), "uint8", zero_fraction=0.0)
    store.write(lay, 0, whole, 0, full)
    sparse = random_labels(rng, (1, *whole.shape_zyx), "uint8", zero_fraction=0.9)
    store.write(lay, 0, whole, 0, sparse)
    np.testing.assert_array_equal(store.read(lay, 0, whole, (0, 1)), np.where(sparse != 0, sparse, full))


def test_unwritten_regions_levels_and_channels_read_zero_and_create_nothing(store, store_url):
    lay = layout(dtype="uint16", levels=3, z_scaled=(True, True))
    assert not store.read(lay, 0, CROSSING, (0, 2)).any()
    assert not store.read(lay, 2, box((0, 10), (0, 10), (0, 5)), (0, 1)).any()
    assert not store.ids(lay, 0, CROSSING, (0, 1)).size
    assert store.bounding_box(lay, 0, 5, tight=True) is None
    store.to_black(lay, 0, CROSSING, (0, 1))
    store.downsample(lay)
    assert stored_keys(store_url) == []
    store.write(lay, 0, CROSSING, 0, np.zeros((1, *CROSSING.shape_zyx), "uint16"))
    assert stored_keys(store_url) == []  # all-zero data changes nothing, so it stores nothing


def test_unwritten_parts_of_a_written_channel_read_zero(store):
    lay = layout(levels=2, z_scaled=(False,))
    store.write(lay, 0, CROSSING, 0, np.full((1, *CROSSING.shape_zyx), 7, "uint8"))
    assert not store.read(lay, 0, box((0, 100), (0, 100), (30, 40)), (0, 2)).any()
    assert not store.read(lay, 0, CROSSING, (1, 2)).any()
    assert not store.read(lay, 1, box((0, 300), (0, 270), (0, 40)), (0, 1)).any()


def test_to_black_clears_only_the_box(store):
    lay = layout(dtype="uint16")
    data = random_labels(np.random.default_rng(5), (2, *CROSSING.shape_zyx), "uint16", zero_fraction=0.0)
    store.write(lay, 0, CROSSING, 0, data)
    inner = box((502, 512), (505, 515), (15, 19))
    store.to_black(lay, 0, inner, (1, 2))
    expected = data.copy()
    expected[(1, *inner.slices_in(CROSSING))] = 0
    np.testing.assert_array_equal(store.read(lay, 0, CROSSING, (0, 2)), expected)


def test_stored_frame_is_the_chunk_on_either_store_and_none_once_cleared(store):
    """stored_frame reads a local chunk file directly and an S3 chunk through the kvstore: same answer."""
    import blosc

    lay = layout(extent=(1024, 512, 32), dtype="uint16")
    cuboid = box((512, 1024), (0, 512), (16, 32))
    data = random_labels(np.random.default_rng(8), (1, 16, 512, 512), "uint16", zero_fraction=0.0)
    store.write(lay, 0, cuboid, 0, data)
    frame = store.stored_frame(lay, 0, cuboid, 0)
    assert np.array_equal(np.frombuffer(blosc.decompress(frame), np.uint16).reshape(data.shape), data)
    assert store.stored_frame(lay, 0, box((0, 512), (0, 512), (16, 32)), 0) is None  # never written
    store.to_black(lay, 0, cuboid, (0, 1))
    assert store.stored_frame(lay, 0, cuboid, 0) is None


def test_to_black_of_whole_chunks_removes_them(store, store_url):
    lay = layout(extent=(512, 512, 16))
    whole = box((0, 512), (0, 512), (0, 16))
    store.write(lay, 0, whole, 0, np.ones((1, 16, 512, 512), "uint8"))
    assert any("/0/c/" in k for k in stored_keys(store_url))
    store.to_black(lay, 0, whole, (0, 1))
    assert not store.read(lay, 0, whole, (0, 1)).any()
    assert not any("/0/c/" in k for k in stored_keys(store_url))


def test_concurrent_overlapping_partial_writes_equal_sequential_merge(store):
    """Threads write overlapping boxes whose non-zero voxels are disjoint, so any order gives the union.

    A lost update (a read-modify-write racing another one on the same chunk) would leave zeros behind.
    """
    lay = layout(dtype="uint16", extent=(600, 600, 40))
    rng = np.random.default_rng(6)
    region = box((480, 560), (490, 540), (10, 24))
    owner = rng.integers(0, 8, size=region.shape_zyx)  # which writer owns each voxel
    jobs = []
    for i in range(8):
        lo = [int(rng.integers(a, b - 8)) for a, b in (region.x, region.y, region.z)]
        hi = [int(rng.integers(s + 4, b + 1)) for s, b in zip(lo, (region.x[1], region.y[1], region.z[1]))]
        sub = Box(tuple(lo), tuple(hi))
        values = np.where(owner[sub.slices_in(region)] == i, i + 1, 0).astype("uint16")
        jobs.append((sub, values))
    expected = np.zeros(region.shape_zyx, "uint16")
    for sub, values in jobs:
        view = expected[sub.slices_in(region)]
        view[...] = np.where(values != 0, values, view)
    barrier = threading.Barrier(len(jobs))
    errors = []

    def run(sub, values):
        barrier.wait()
        for _ in range(3):  # repeat: more chances to interleave
            try:
                store.write(lay, 0, sub, 0, values[None])
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    np.testing.assert_array_equal(store.read(lay, 0, region, (0, 1))[0], expected)


def test_layout_growth_resizes_and_keeps_data(store, store_url):
    small = layout(dtype="uint8", extent=(600, 540, 40), time_samples=1)
    data = random_labels(np.random.default_rng(7), (2, *CROSSING.shape_zyx), "uint8", zero_fraction=0.0)
    store.write(small, 0, CROSSING, 0, data)
    grown = layout(dtype="uint8", extent=(1200, 540, 70), time_samples=4)
    late = box((1100, 1150), (0, 10), (60, 70))
    with pytest.raises(OutOfBounds):
        store.read(small, 0, late, (0, 1))
    assert not store.read(grown, 0, late, (4, 5)).any()  # grown layout, array not grown yet: zeros
    store.write(grown, 0, late, 4, np.full((1, *late.shape_zyx), 9, "uint8"))
    np.testing.assert_array_equal(store.read(grown, 0, CROSSING, (0, 2)), data)
    assert (store.read(grown, 0, late, (4, 5)) == 9).all()
    meta = read_json(store_url, "ch1/0/zarr.json")
    assert meta["shape"] == [5, 70, 540, 1200]
    # a second store (another server worker) sees the grown array too
    other = VolumeStore(store_url)
    assert (other.read(grown, 0, late, (4, 5)) == 9).all()


def test_stale_cached_array_is_reopened_after_another_worker_grows_it(store_url):
    small, grown = layout(time_samples=1), layout(time_samples=3)
    first, second = VolumeStore(store_url), VolumeStore(store_url)
    first.write(small, 0, CROSSING, 0, np.ones((1, *CROSSING.shape_zyx), "uint8"))
    assert second.read(small, 0, CROSSING, (0, 1)).all()  # caches the small array
    first.write(grown, 0, CROSSING, 3, np.full((1, *CROSSING.shape_zyx), 2, "uint8"))
    assert (second.read(grown, 0, CROSSING, (3, 4)) == 2).all()


def test_on_disk_layout_is_ome_zarr_that_tensorstore_opens_fresh(store, store_url):
    lay = layout(key="ch17", dtype="uint16", extent=(600, 540, 40), time_samples=1, levels=3,
                 z_scaled=(False, True), voxel_size=(4.0, 4.0, 40.0), voxel_unit="nanometers",
                 names=("coll", "exp", "chan"))
    data = random_labels(np.random.default_rng(8), (1, *CROSSING.shape_zyx), "uint16")
    store.write(lay, 0, CROSSING, 1, data)
    group = read_json(store_url, "ch17/zarr.json")
    assert group["zarr_format"] == 3 and group["node_type"] == "group"
    ome = group["attributes"]["ome"]
    assert ome["version"] == "0.5"
    (ms,) = ome["multiscales"]
    assert [a["name"] for a in ms["axes"]] == ["t", "z", "y", "x"]
    assert [a.get("unit") for a in ms["axes"][1:]] == ["nanometer"] * 3
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[1.0, 40.0, 4.0, 4.0], [1.0, 40.0, 8.0, 8.0], [1.0, 80.0, 16.0, 16.0]]
    assert group["attributes"]["ndex"]["channel"] == "chan" and group["attributes"]["ndex"]["dtype"] == "uint16"
    for res in range(3):  # every level exists, so viewers can open the whole pyramid
        arr = ts.open({"driver": "zarr3", "kvstore": kvstore_spec(store_url, f"ch17/{res}/")}).result()
        x, y, z = lay.level_shape(res)
        assert arr.shape == (2, z, y, x) and arr.dtype.numpy_dtype == np.uint16
        assert list(arr.domain.labels) == ["t", "z", "y", "x"]
        assert arr.chunk_layout.read_chunk.shape == (1, 16, 512, 512)
    arr0 = ts.open({"driver": "zarr3", "kvstore": kvstore_spec(store_url, "ch17/0/")}).result()
    np.testing.assert_array_equal(
        arr0[1:2, 14:19, 505:520, 500:530].read().result(), data)


def test_delete_drops_every_array_of_the_channel(store, store_url):
    keep, gone = layout(key="ch1"), layout(key="ch2", levels=2, z_scaled=(True,))
    ones = np.ones((1, *CROSSING.shape_zyx), "uint8")
    store.write(keep, 0, CROSSING, 0, ones)
    store.write(gone, 0, CROSSING, 0, ones)
    store.downsample(gone)
    store.delete("ch2")
    assert all(k.startswith("ch1/") for k in stored_keys(store_url))
    if not store_url.startswith("s3://"):
        assert sorted(os.listdir(store_url)) == ["ch1"]
    assert not store.read(gone, 0, CROSSING, (0, 1)).any()
    assert store.read(keep, 0, CROSSING, (0, 1)).all()
    store.write(gone, 0, CROSSING, 0, ones * 3)  # a deleted key can be written again
    assert (store.read(gone, 0, CROSSING, (0, 1)) == 3).all()


# --- defence in depth: bad requests ------------------------------------------------------------------


def test_wrong_dtype_is_a_usage_error(store):
    with pytest.raises(UsageError, match="uint16.*uint8"):
        store.write(layout(dtype="uint8"), 0, CROSSING, 0, np.ones((1, *CROSSING.shape_zyx), "uint16"))


def test_wrong_data_shape_is_a_usage_error(store):
    with pytest.raises(UsageError, match="does not match box"):
        store.write(layout(), 0, CROSSING, 0, np.ones(CROSSING.shape_zyx, "uint8"))


@pytest.mark.parametrize("res, where, t_range", [
    (0, box((590, 601), (0, 10), (0, 10)), (0, 1)),   # past x
    (0, box((0, 10), (0, 10), (39, 41)), (0, 1)),      # past z
    (1, box((290, 301), (0, 10), (0, 10)), (0, 1)),    # past x at level 1 (x 300)
    (0, box((0, 10), (0, 10), (0, 10)), (1, 3)),       # past t (time_samples 1 -> t < 2)
    (3, box((0, 10), (0, 10), (0, 10)), (0, 1)),       # no such level
])
def test_out_of_bounds_requests(store, res, where, t_range):
    lay = layout(levels=2, z_scaled=(True,))
    with pytest.raises(OutOfBounds):
        store.read(lay, res, where, t_range)
    with pytest.raises(OutOfBounds):
        store.write(lay, res, where, t_range[0], np.ones((t_range[1] - t_range[0], *where.shape_zyx), "uint8"))


def test_unsupported_dtype_is_a_usage_error(store):
    with pytest.raises(UsageError, match="dtype"):
        store.read(layout(dtype="float32"), 0, CROSSING, (0, 1))


@pytest.mark.parametrize("url", ["s3://", "gs://bucket/x"])
def test_bad_store_urls(url):
    with pytest.raises(UsageError):
        VolumeStore(url)


def test_level_shape_rounds_up_on_halved_axes(store):
    lay = layout(extent=(601, 541, 41), levels=4, z_scaled=(False, True, True))
    assert [store.level_shape(lay, r) for r in range(4)] == [
        (601, 541, 41), (301, 271, 41), (151, 136, 21), (76, 68, 11)]


def test_store_errors_are_ndex_errors():
    assert issubclass(StoreError, NdexError) and issubclass(StoreError, OSError)
