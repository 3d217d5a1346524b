"""Downsampling: the numpy kernels against a per-voxel reference, then whole hierarchies in the store."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from store_helpers import box, layout, random_labels, reference_reduce

from ndex.errors import NdexError
from ndex.geometry import Box
from ndex.server import downsample as ds
from ndex.server.pyramid import DownsampleCancelled

small_blocks = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.uint64]),
    shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7),
    elements=st.integers(0, 4))  # few labels: plenty of ties for the mode rule


@settings(max_examples=150, deadline=None)
@given(block=small_blocks, fz=st.sampled_from([1, 2]), annotation=st.booleans())
def test_kernels_match_the_reference(block, fz, annotation):
    got = ds.reduce_block(block, (2, 2, fz), annotation)
    expected = reference_reduce(block, (2, 2, fz), annotation)
    assert got.dtype == block.dtype
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(block=hnp.arrays(np.uint64, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=4),
                        elements=st.integers(2**64 - 20, 2**64 - 1) | st.integers(0, 2**63)))
def test_mean_of_huge_uint64_values_is_exact(block):
    np.testing.assert_array_equal(ds.mean_reduce(block, (2, 2, 2)), reference_reduce(block, (2, 2, 2), False))


def test_mode_ties_go_to_the_smallest_id_and_zero_never_wins():
    block = np.array([[[5, 3], [3, 5]], [[0, 0], [0, 0]]], dtype=np.uint64)
    assert ds.mode_reduce(block, (2, 2, 2)).item() == 3
    block = np.array([[[0, 0], [0, 9]]], dtype=np.uint64)
    assert ds.mode_reduce(block, (2, 2, 1)).item() == 9
    assert ds.mode_reduce(np.zeros((2, 2, 2), np.uint16), (2, 2, 2)).item() == 0


def test_mean_averages_only_existing_voxels_at_edges():
    block = np.array([[[10, 20, 7]]], dtype=np.uint8)  # x has 3 voxels: windows [10, 20] and [7]
    np.testing.assert_array_equal(ds.mean_reduce(block, (2, 2, 2)), [[[15, 7]]])


def reference_pyramid(level0: np.ndarray, lay) -> list[np.ndarray]:
    """Each level from the one before, per time sample, with the reference kernel."""
    levels = [level0]
    for r in range(1, lay.levels):
        f = (2, 2, 2 if lay.halves_z(r) else 1)
        levels.append(np.stack([reference_reduce(vol, f, lay.annotation) for vol in levels[-1]]))
    return levels


@pytest.mark.parametrize("annotation, dtype", [(False, "uint8"), (False, "uint16"), (True, "uint64")])
@pytest.mark.parametrize("z_scaled", [(True, True), (False, False), (False, True)],
                         ids=["iso", "aniso", "mixed"])
def test_store_pyramid_matches_reference(store, annotation, dtype, z_scaled):
    lay = layout(dtype=dtype, extent=(37, 23, 11), time_samples=1, levels=3, z_scaled=z_scaled,
                 annotation=annotation)
    rng = np.random.default_rng(11)
    level0 = random_labels(rng, (2, 11, 23, 37), dtype, high=6 if annotation else None)
    whole = Box((0, 0, 0), lay.extent)
    store.write(lay, 0, whole, 0, level0)
    calls = []
    store.downsample(lay, progress=lambda done, total: calls.append((done, total)))
    for r, expected in enumerate(reference_pyramid(level0, lay)):
        got = store.read(lay, r, Box((0, 0, 0), lay.level_shape(r)), (0, 2))
        np.testing.assert_array_equal(got, expected, err_msg=f"level {r}")
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)  # 2 levels x 2 time samples x 1 tile


def test_pyramid_across_tiles_and_in_many_slabs(store, monkeypatch):
    """Levels wider than one tile, and a tiny slab budget so every tile is built a plane pair at a time."""
    monkeypatch.setattr(ds, "SOURCE_SLAB_BYTES", 1)
    lay = layout(dtype="uint16", extent=(1030, 7, 35), time_samples=0, levels=3, z_scaled=(True, False))
    level0 = random_labels(np.random.default_rng(12), (1, 35, 7, 1030), "uint16")
    store.write(lay, 0, Box((0, 0, 0), lay.extent), 0, level0)
    store.downsample(lay)
    for r, expected in enumerate(reference_pyramid(level0, lay)):
        got = store.read(lay, r, Box((0, 0, 0), lay.level_shape(r)), (0, 1))
        np.testing.assert_array_equal(got, expected, err_msg=f"level {r}")


def test_downsample_from_a_base_level_and_rebuild_after_clearing(store):
    lay = layout(dtype="uint8", extent=(40, 40, 8), time_samples=0, levels=3, z_scaled=(True, True))
    whole = Box((0, 0, 0), lay.extent)
    store.write(lay, 0, whole, 0, np.full((1, 8, 40, 40), 200, "uint8"))
    store.downsample(lay)
    assert (store.read(lay, 2, Box((0, 0, 0), (10, 10, 2)), (0, 1)) == 200).all()
    # replace level 1 by hand and rebuild only above it: base resolution 1, two hierarchy levels (1, 2)
    store.write(lay, 1, Box((0, 0, 0), (20, 20, 4)), 0, np.full((1, 4, 20, 20), 50, "uint8"))
    from_base_1 = layout(dtype="uint8", extent=(40, 40, 8), time_samples=0, levels=2, z_scaled=(True, True))
    store.downsample(from_base_1, base_res=1)
    assert (store.read(lay, 2, Box((0, 0, 0), (10, 10, 2)), (0, 1)) == 50).all()
    assert (store.read(lay, 0, whole, (0, 1)) == 200).all()
    # clearing level 0 and downsampling again clears the levels above (no stale pyramid)
    store.to_black(lay, 0, whole, (0, 1))
    store.downsample(lay)
    for r in (1, 2):
        assert not store.read(lay, r, Box((0, 0, 0), lay.level_shape(r)), (0, 1)).any()


def test_cancel_stops_between_tiles(store):
    lay = layout(dtype="uint8", extent=(40, 40, 8), time_samples=2, levels=3, z_scaled=(True, True))
    store.write(lay, 0, Box((0, 0, 0), lay.extent), 0, np.full((3, 8, 40, 40), 9, "uint8"))
    progress = []
    with pytest.raises(DownsampleCancelled) as info:
        store.downsample(lay, progress=lambda d, t: progress.append(d), cancelled=lambda: len(progress) > 2)
    assert isinstance(info.value, NdexError)
    assert progress == [0, 1, 2]  # two tiles done, the third never started
    assert (store.read(lay, 1, Box((0, 0, 0), (20, 20, 4)), (0, 2)) == 9).all()
    assert not store.read(lay, 1, Box((0, 0, 0), (20, 20, 4)), (2, 3)).any()


def test_single_level_channel_has_nothing_to_downsample(store):
    lay = layout(levels=1)
    store.write(lay, 0, box((0, 5), (0, 5), (0, 5)), 0, np.ones((1, 5, 5, 5), "uint8"))
    calls = []
    store.downsample(lay, progress=lambda d, t: calls.append(d))
    assert calls == []
