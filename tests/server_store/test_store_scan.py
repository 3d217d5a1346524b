"""ids() and bounding_box() against numpy ground truth, on a sparse annotation volume across chunks."""
from __future__ import annotations

import numpy as np
import pytest
from store_helpers import box, layout

from ndex.geometry import Box

EXTENT = (1100, 600, 40)  # 3 x 2 x 3 cuboids


@pytest.fixture
def labelled(store):
    """A few objects scattered over several cuboids at t=0 (and one only at t=1), plus their truth."""
    lay = layout(dtype="uint64", extent=EXTENT, time_samples=1)
    truth = {}  # id -> list of boxes it was painted into
    paint = [(7, box((500, 530), (100, 110), (10, 20))),       # spans x and z chunk borders
             (7, box((1050, 1060), (590, 600), (38, 40))),     # far corner: loose box grows to 1536 x 1024
             (2**40 + 3, box((0, 4), (0, 4), (0, 1))),
             (12, box((600, 700), (520, 530), (16, 17)))]
    for obj, where in paint:
        store.write(lay, 0, where, 0, np.full((1, *where.shape_zyx), obj, "uint64"))
        truth.setdefault(obj, []).append(where)
    t1_only = box((10, 20), (10, 20), (5, 6))
    store.write(lay, 0, t1_only, 1, np.full((1, *t1_only.shape_zyx), 99, "uint64"))
    return store, lay, truth


def volume_truth(lay, truth) -> np.ndarray:
    x, y, z = EXTENT
    vol = np.zeros((z, y, x), np.uint64)
    for obj, boxes in truth.items():
        for b in boxes:
            vol[b.slices_in(Box((0, 0, 0), EXTENT))] = obj
    return vol


@pytest.mark.parametrize("where", [box((0, 1100), (0, 600), (0, 40)), box((505, 1055), (105, 595), (12, 39)),
                                   box((0, 3), (0, 3), (0, 1))])
def test_ids_are_the_distinct_nonzero_values(labelled, where):
    store, lay, truth = labelled
    vol = volume_truth(lay, truth)[where.slices_in(Box((0, 0, 0), EXTENT))]
    expected = np.unique(vol[vol != 0])
    got = store.ids(lay, 0, where, (0, 1))
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, expected)


def test_ids_over_time_range(labelled):
    store, lay, _ = labelled
    np.testing.assert_array_equal(store.ids(lay, 0, box((0, 30), (0, 30), (0, 10)), (0, 2)), [99, 3 + 2**40])


def test_tight_bounding_box_is_exact(labelled):
    store, lay, truth = labelled
    vol = volume_truth(lay, truth)
    for obj in truth:
        zs, ys, xs = np.nonzero(vol == obj)
        expected = Box((xs.min(), ys.min(), zs.min()), (xs.max() + 1, ys.max() + 1, zs.max() + 1))
        assert store.bounding_box(lay, 0, obj, tight=True) == (expected, (0, 1))


def test_loose_bounding_box_is_the_union_of_aligned_cuboids(labelled):
    store, lay, _ = labelled
    assert store.bounding_box(lay, 0, 7, tight=False) == (box((0, 1536), (0, 1024), (0, 48)), (0, 1))
    assert store.bounding_box(lay, 0, 12, tight=False) == (box((512, 1024), (512, 1024), (16, 32)), (0, 1))


@pytest.mark.parametrize("obj", [0, 5, 99, 2**64 - 1])
def test_absent_ids_have_no_bounding_box(labelled, obj):
    store, lay, _ = labelled  # 99 exists only at t=1: the scan covers t=0
    assert store.bounding_box(lay, 0, obj, tight=True) is None


def test_bounding_box_of_a_value_too_big_for_the_dtype(store):
    lay = layout(dtype="uint8")
    store.write(lay, 0, box((0, 2), (0, 2), (0, 2)), 0, np.full((1, 2, 2, 2), 255, "uint8"))
    assert store.bounding_box(lay, 0, 255, tight=True) == (box((0, 2), (0, 2), (0, 2)), (0, 1))
    assert store.bounding_box(lay, 0, 256, tight=True) is None
