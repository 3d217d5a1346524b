"""Where a multi-level pull's region lies at each level (ndex.transfer.levels), checked against ChannelInfo's own
level maths from level 0, and the `levels` range as a spec and a flag take it."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndex.client import Channel, ChannelInfo, ChannelRef, CoordFrame, Experiment
from ndex.errors import FieldError, OutOfBounds
from ndex.geometry import Box, clamp_to_start
from ndex.transfer.levels import level_box, parse_levels
from ndex.transfer.pull_plan import PullSpec

REF = ChannelRef("c", "e", "ch")


def channel_info(method: str, voxel=(4.0, 4.0, 40.0), start=(0, 0, 0), stop=(4096, 4096, 512)) -> ChannelInfo:
    frame = CoordFrame("f", start[0], stop[0], start[1], stop[1], start[2], stop[2], *voxel)
    return ChannelInfo(REF, Channel("ch", "image", "uint8", downsample_status="DOWNSAMPLED"),
                       Experiment("e", "f", num_hierarchy_levels=8, hierarchy_method=method), frame)


boxes = st.tuples(st.integers(0, 2000), st.integers(1, 2000), st.integers(0, 200), st.integers(1, 200)).map(
    lambda v: Box((v[0], v[0] // 2, v[2]), (v[0] + v[1], v[0] // 2 + v[1], v[2] + v[3])))


@given(box=boxes, method=st.sampled_from(["anisotropic", "isotropic"]), iso=st.booleans(),
       res=st.integers(0, 6))
def test_from_level_0_it_is_channel_infos_own_mapping(box, method, iso, res):
    info = channel_info(method, start=(100, 0, 3))
    box = clamp_to_start(box, (100, 0, 3)) or Box((100, 0, 3), (101, 1, 4))
    expected = clamp_to_start(info.box_at(box, res, iso), (100, 0, 3))
    if expected is None:  # the level ends before the frame start BOSS checks
        with pytest.raises(OutOfBounds):
            level_box(info, box, 0, res, iso)
    else:
        assert level_box(info, box, 0, res, iso) == expected


@given(box=boxes, method=st.sampled_from(["anisotropic", "isotropic"]), first=st.integers(0, 3), more=st.integers(0, 3))
def test_from_a_higher_first_level_it_composes(box, method, first, more):
    """A region given at level `first` maps to `first + more` as its level-0 preimage would: floor / ceil compose."""
    info = channel_info(method)
    at_first = level_box(info, box, 0, first)
    assert level_box(info, at_first, first, first + more) == level_box(info, box, 0, first + more)


def test_iso_halves_z_only_above_the_iso_level():
    info = channel_info("anisotropic")  # 4 x 4 x 40 nm: x reaches z's size at level 3 (32 nm)
    box = Box((0, 0, 0), (4096, 4096, 512))
    assert level_box(info, box, 0, 3, iso=True).stop == (512, 512, 512)
    assert level_box(info, box, 0, 5, iso=True).stop == (128, 128, 128)
    assert level_box(info, box, 0, 5, iso=False).stop == (128, 128, 512)


def test_a_level_that_ends_before_the_frame_start_is_one_line():
    info = channel_info("anisotropic", start=(1000, 0, 0))
    with pytest.raises(OutOfBounds, match="has no voxel at resolution 4 that BOSS serves"):
        level_box(info, Box((1000, 0, 0), (1500, 10, 10)), 0, 4)


@pytest.mark.parametrize("given,levels", [("0-3", (0, 3)), ("2", (2, 2)), (" 1 : 4 ", (1, 4)), ([0, 2], (0, 2)),
                                          ((5, 5), (5, 5))])
def test_level_ranges(given, levels):
    assert parse_levels(given) == levels


@pytest.mark.parametrize("given,message", [("3-1", "levels 3-1 is empty or inverted"), ("a-b", "levels 'a-b' is not"),
                                           ("-1", "is not a level range")])
def test_bad_level_ranges_name_the_field(given, message):
    with pytest.raises(FieldError, match=message):
        parse_levels(given)


def test_a_spec_with_levels_round_trips_and_starts_at_its_first_level():
    spec = PullSpec(ref=REF, levels="1-3", stack_filename="v.ome.zarr", zarr_version=2)
    assert spec.res == 1 and spec.levels == (1, 3)
    assert PullSpec.from_json(spec.to_json()) == spec
    with pytest.raises(FieldError, match="levels 0-2 writes a pyramid, which output tif cannot hold"):
        PullSpec(ref=REF, levels=(0, 2))
    one = PullSpec(ref=REF, levels=(2, 2))  # one level: any output, as --res 2
    assert one.res == 2 and not one.pyramid and PullSpec(ref=REF, levels=(2, 2), output="zarr").pyramid
