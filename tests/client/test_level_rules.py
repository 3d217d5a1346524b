"""BOSS's rules for resolution levels, as ChannelInfo applies them before any request is sent.

* every level is checked against the level-0 frame start (bosscore/request.py set_cutoutargs);
* with base_resolution b, BOSS accepts b .. b+n-1 but builds only b+1 .. n-1 (boss-tools stops at
  num_hierarchy_levels); the rest read as zeros;
* any write resets DOWNSAMPLED to NOT_DOWNSAMPLED, so a built pyramid may be stale rather than missing.
"""
from __future__ import annotations

import math

import pytest
from client_fakes import BASE
from hypothesis import given
from hypothesis import strategies as st
from test_boss_recorded import load

from ndex.client import Channel, ChannelInfo, ChannelRef, CoordFrame, Experiment
from ndex.client.models import PYRAMID_KEY
from ndex.errors import OutOfBounds
from ndex.geometry import Box, clamp_to_start, plan_blocks
from ndex.transfer.download import PullSpec, make_plan
from ndex.transfer.options import TransferOptions

REF = ChannelRef("lab2019", "em", "image")


def info(frame=None, experiment=None, channel=None) -> ChannelInfo:
    return ChannelInfo(REF, Channel.from_json({**load("channel_get"), **(channel or {})}),
                       Experiment.from_json({**load("experiment_get"), **(experiment or {})}),
                       CoordFrame.from_json({**load("coord_frame_offset"), **(frame or {})}))


# --- offset frames ------------------------------------------------------------------------------------


def test_offset_frame_levels_anisotropic():
    chan = info(experiment={"num_hierarchy_levels": 4})  # frame x 1000:5000, y 600:1800, z 5:45
    assert chan.extent_at(0) == Box((1000, 600, 5), (5000, 1800, 45))
    assert chan.extent_at(1) == Box((1000, 600, 5), (2500, 900, 45))  # not x 500, y 300
    with pytest.raises(OutOfBounds, match="level-0 frame start .1000, 600, 5.*use a lower resolution"):
        chan.extent_at(2)  # y ends at 450, before y_start 600
    assert chan.level_extent(2) is None and chan.level_extent(3) is None


def test_offset_frame_levels_isotropic_clamp_z_too():
    chan = info(experiment={"hierarchy_method": "isotropic", "num_hierarchy_levels": 3},
                frame={"y_stop": 5000, "z_stop": 205, "z_voxel_size": 4.0})
    assert chan.extent_at(1) == Box((1000, 600, 5), (2500, 2500, 103))  # z 2:103 clamped to 5
    assert chan.extent_at(2) == Box((1000, 600, 5), (1250, 1250, 52))


def test_offset_frame_iso_copy_of_an_anisotropic_hierarchy():
    chan = info(experiment={"num_hierarchy_levels": 5}, frame={"x_stop": 20000, "y_stop": 20000, "z_stop": 405,
                                                              "z_voxel_size": 16.0})
    assert chan.iso_level() == 2
    assert chan.extent_at(3, iso=True) == Box((1000, 600, 5), (2500, 2500, 203))  # z halves above level 2
    assert chan.extent_at(3) == Box((1000, 600, 5), (2500, 2500, 405))


def test_boxes_below_the_level0_start_are_refused_before_sending():
    chan = info(experiment={"num_hierarchy_levels": 4})
    with pytest.raises(OutOfBounds, match="x range 500:1000 .*whose x range is 1000:2500 .BOSS refuses"):
        chan.check_box(Box((500, 600, 5), (1000, 900, 45)), 1)
    chan.check_box(Box((1000, 600, 5), (2500, 900, 45)), 1)


@given(start=st.tuples(*[st.integers(0, 5000)] * 3), size=st.tuples(*[st.integers(1, 9000)] * 3),
       res=st.integers(0, 6), isotropic=st.booleans())
def test_every_block_of_every_level_lies_at_or_above_the_level0_start(start, size, res, isotropic):
    stop = tuple(a + s for a, s in zip(start, size))
    frame = {f"{a}_{e}": v for a, lo, hi in zip("xyz", start, stop) for e, v in (("start", lo), ("stop", hi))}
    chan = info(frame=frame, experiment={"hierarchy_method": "isotropic" if isotropic else "anisotropic",
                                         "num_hierarchy_levels": 7})
    f = (2**res, 2**res, 2**res if isotropic else 1)
    scaled = [(lo // k, -(-hi // k)) for lo, hi, k in zip(start, stop, f)]
    extent = chan.level_extent(res)
    if any(max(lo, s) >= hi for (lo, hi), s in zip(scaled, start)):
        assert extent is None
        return
    assert extent.start == tuple(max(lo, s) for (lo, _), s in zip(scaled, start))
    assert extent.stop == tuple(math.ceil(hi / k) for hi, k in zip(stop, f))
    if extent.nvoxels <= 2**26:
        assert all(b.start[i] >= start[i] for b in plan_blocks(extent, 1) for i in range(3))


def test_clamp_to_start():
    assert clamp_to_start(Box((0, 0, 0), (10, 10, 10)), (3, 0, 9)) == Box((3, 0, 9), (10, 10, 10))
    assert clamp_to_start(Box((0, 0, 0), (10, 10, 10)), (3, 0, 10)) is None


# --- base_resolution > 0 ------------------------------------------------------------------------------


def test_base_resolution_levels_follow_bosss_build_rule():
    chan = info(experiment={"num_hierarchy_levels": 4}, channel={"base_resolution": 2})
    assert list(chan.levels) == [2, 3, 4, 5] and list(chan.data_levels) == [2, 3]
    assert [chan.is_built(r) for r in chan.levels] == [True, True, False, False]
    chan.check_res(3)
    with pytest.raises(OutOfBounds, match="resolution 4 .* never holds data: BOSS builds levels 2 to 3"):
        chan.check_res(4)


def test_base_resolution_at_or_above_the_level_count_holds_only_the_base():
    chan = info(experiment={"num_hierarchy_levels": 2}, channel={"base_resolution": 3})
    assert list(chan.data_levels) == [3]
    chan.check_res(3)
    with pytest.raises(OutOfBounds, match="never holds data"):
        chan.check_res(4)


def test_base_resolution_reads_start_at_the_level0_start():
    chan = info(experiment={"num_hierarchy_levels": 4}, channel={"base_resolution": 1})
    assert chan.extent_at(1).start == (1000, 600, 5)


# --- stale and never-built levels ---------------------------------------------------------------------


def test_a_level_never_built_is_refused_and_says_so():
    chan = info(channel={"downsample_status": "NOT_DOWNSAMPLED"})
    with pytest.raises(OutOfBounds, match="has never been built .downsample status NOT_DOWNSAMPLED."):
        chan.check_res(1)


@pytest.mark.parametrize("status, why", [("NOT_DOWNSAMPLED", "data was written after the last downsample"),
                                         ("IN_PROGRESS", "a downsample is rebuilding it"),
                                         ("FAILED", "the last downsample failed")])
def test_a_level_built_before_is_served_with_a_warning(status, why):
    chan = info(channel={"downsample_status": status})
    chan.check_res(1, built_before=True)
    assert why in chan.stale_warning(1) and "may be stale" in chan.stale_warning(1)


def test_a_current_pyramid_has_no_warning():
    chan = info(channel={"downsample_status": "DOWNSAMPLED"})
    assert chan.stale_warning(1) is None and chan.stale_warning(0) is None


def register_channel(rsps, status: str, keys: list[str]) -> None:
    rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em/channel/image",
             json={**load("channel_get"), "downsample_status": status})
    rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em", json=load("experiment_get"))
    rsps.get(f"{BASE}/v1/coord/lab2019_em", json=load("coord_frame_offset"))
    rsps.get(f"{BASE}/v1/meta/lab2019/em/image", json={"keys": keys})


def test_a_pull_plan_warns_of_a_stale_level_and_refuses_one_never_built(client, rsps):
    register_channel(rsps, "NOT_DOWNSAMPLED", [PYRAMID_KEY])
    plan = make_plan(client, PullSpec(REF, res=1, output="numpy"), TransferOptions())
    assert plan.box == Box((1000, 600, 5), (2500, 900, 45))
    assert len(plan.warnings) == 1 and "data was written after the last downsample" in plan.warnings[0]
    rsps.replace("GET", f"{BASE}/v1/meta/lab2019/em/image", json={"keys": ["other"]})
    with pytest.raises(OutOfBounds, match="never been built"):
        make_plan(client, PullSpec(REF, res=1, output="numpy"), TransferOptions())


def test_a_current_pyramid_needs_no_metadata_lookup(client, rsps):
    register_channel(rsps, "DOWNSAMPLED", [])
    assert make_plan(client, PullSpec(REF, res=1, output="numpy"), TransferOptions()).warnings == ()
    assert not any("/v1/meta/" in c.request.url for c in rsps.calls)
