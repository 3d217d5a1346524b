"""Block plans tile any box exactly once, aligned to the BOSS cuboid except at the box edges."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ndex.errors import InvalidBox
from ndex.geometry import (
    BOSS_CUBOID,
    CUTOUT_MAX_BYTES,
    Box,
    align_down,
    align_up,
    block_shape,
    box_at_res,
    parse_range,
    plan_blocks,
    request_cost,
    z_slabs,
)


@st.composite
def boxes(draw, limit=3000, zlimit=100):
    x0 = draw(st.integers(0, limit))
    y0 = draw(st.integers(0, limit))
    z0 = draw(st.integers(0, zlimit))
    return Box((x0, y0, z0), (x0 + draw(st.integers(1, limit)), y0 + draw(st.integers(1, limit)),
                              z0 + draw(st.integers(1, zlimit))))


@settings(max_examples=150, deadline=None)
@given(box=boxes(), itemsize=st.sampled_from([1, 2, 8]), max_bytes=st.integers(1, 64 * 2**20))
def test_blocks_tile_the_box_exactly_once_and_are_aligned(box, itemsize, max_bytes):
    blocks = plan_blocks(box, itemsize, max_bytes)
    assert sum(b.nvoxels for b in blocks) == box.nvoxels
    for i, a in enumerate(blocks):
        assert box.contains(a)
        for b in blocks[i + 1:]:
            assert a.intersect(b) is None
        for axis in range(3):
            cub = BOSS_CUBOID[axis]
            # a block edge is on the cuboid grid unless it is an edge of the requested box
            assert a.start[axis] % cub == 0 or a.start[axis] == box.start[axis]
            assert a.stop[axis] % cub == 0 or a.stop[axis] == box.stop[axis]
        # each block lies inside the aligned hull of its cuboids and respects the budget (one cuboid minimum)
        assert request_cost(a, itemsize) <= CUTOUT_MAX_BYTES
        cuboid_bytes = BOSS_CUBOID[0] * BOSS_CUBOID[1] * BOSS_CUBOID[2] * itemsize
        assert a.nbytes(itemsize) <= max(max_bytes, cuboid_bytes)


def test_blocks_cover_voxels_once_by_painting():
    box = Box((100, 37, 5), (1300, 1100, 40))
    canvas = np.zeros(box.shape_zyx, dtype=np.int32)
    for block in plan_blocks(box, 1, 3 * 2**20):
        canvas[block.slices_in(box)] += 1
    assert (canvas == 1).all()


def test_server_cap_holds_even_with_a_huge_budget():
    box = Box((0, 0, 0), (100_000, 100_000, 2000))
    for itemsize in (1, 2, 8):
        shape = block_shape(box, itemsize, 10**13)
        assert request_cost(Box((0, 0, 0), shape), itemsize) <= CUTOUT_MAX_BYTES


def test_depth_fixes_block_z_and_slabs_are_cuboid_aligned():
    box = Box((0, 0, 3), (2048, 2048, 50))
    assert {b.z for b in plan_blocks(box, 1, 2**30, depth=16)} == {(3, 16), (16, 32), (32, 48), (48, 50)}
    assert [s.z for s in z_slabs(box)] == [(3, 16), (16, 32), (32, 48), (48, 50)]


@pytest.mark.parametrize("start,stop", [((0, 0, 0), (0, 5, 5)), ((5, 0, 0), (4, 5, 5)), ((0, 0, 0), (1, 1))])
def test_empty_inverted_or_malformed_boxes_are_refused(start, stop):
    with pytest.raises(InvalidBox):
        Box(start, stop)


def test_parse_range_messages():
    assert parse_range("0:512") == (0, 512)
    with pytest.raises(InvalidBox, match="START:STOP"):
        parse_range("0-512", "--x")
    with pytest.raises(InvalidBox, match="empty or inverted"):
        parse_range("9:3", "--z")


@given(v=st.integers(-10**6, 10**6), step=st.integers(1, 1000))
def test_align(v, step):
    assert align_down(v, step) <= v <= align_up(v, step)
    assert align_down(v, step) % step == 0 and align_up(v, step) % step == 0
    assert align_up(v, step) - align_down(v, step) in (0, step)


def test_resolution_scaling_halves_xy_and_z_only_when_isotropic():
    box = Box((0, 0, 0), (1001, 600, 33))
    assert box_at_res(box, 1, z_scaled=False) == Box((0, 0, 0), (501, 300, 33))
    assert box_at_res(box, 2, z_scaled=True) == Box((0, 0, 0), (251, 150, 9))
    assert box_at_res(Box((513, 3, 7), (1024, 9, 8)), 1, z_scaled=True) == Box((256, 1, 3), (512, 5, 4))
