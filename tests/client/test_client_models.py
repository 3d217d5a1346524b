"""Resource models parsed from BOSS JSON, and ChannelInfo's geometry and request checks."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndex.client import Channel, ChannelInfo, ChannelRef, Collection, CoordFrame, Experiment
from ndex.errors import OutOfBounds, RemoteError, UsageError
from ndex.geometry import Box

# The example responses of boss-api.md 2.10
FRAME = {"name": "cf1", "description": "", "x_start": 0, "x_stop": 2048, "y_start": 0, "y_stop": 2048,
         "z_start": 0, "z_stop": 100, "x_voxel_size": 1.0, "y_voxel_size": 1.0, "z_voxel_size": 1.0,
         "voxel_unit": "nanometers"}
EXPERIMENT = {"channels": ["img"], "name": "exp1", "public": False, "description": "", "collection": "col1",
              "coord_frame": "cf1", "num_hierarchy_levels": 1, "hierarchy_method": "isotropic",
              "num_time_samples": 10, "time_step": 0, "time_step_unit": "seconds", "creator": "alice"}
CHANNEL = {"name": "ann", "public": False, "description": "", "experiment": "exp1", "default_time_sample": 0,
           "type": "annotation", "base_resolution": 0, "datatype": "uint64", "creator": "alice",
           "sources": ["img"], "downsample_status": "NOT_DOWNSAMPLED", "related": [],
           "storage_type": "spdb", "bucket": None, "cv_path": None}
REF = ChannelRef("col1", "exp1", "ann")


def info(frame=None, experiment=None, channel=None) -> ChannelInfo:
    return ChannelInfo(REF, Channel.from_json({**CHANNEL, **(channel or {})}),
                       Experiment.from_json({**EXPERIMENT, **(experiment or {})}),
                       CoordFrame.from_json({**FRAME, **(frame or {})}))


# --- parsing ------------------------------------------------------------------------------------------


def test_boss_example_responses_parse_into_frozen_values():
    frame, exp, chan = CoordFrame.from_json(FRAME), Experiment.from_json(EXPERIMENT), Channel.from_json(CHANNEL)
    assert len(dataclasses.fields(CoordFrame)) == 12
    assert frame.box == Box((0, 0, 0), (2048, 2048, 100)) and frame.voxel_size == (1.0, 1.0, 1.0)
    assert (exp.coord_frame, exp.num_time_samples, exp.hierarchy_method, exp.channels) == \
        ("cf1", 10, "isotropic", ("img",))
    assert (exp.time_step, exp.time_step_unit, exp.collection) == (0, "seconds", "col1")
    assert (chan.type, chan.datatype, chan.sources, chan.related) == ("annotation", "uint64", ("img",), ())
    assert chan.downsample_status == "NOT_DOWNSAMPLED" and chan.experiment == "exp1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        chan.datatype = "uint8"


def test_collection_defaults_and_coercion():
    coll = Collection.from_json({"name": "c", "description": "d", "experiments": ["a", "b"], "creator": "bob",
                                 "public": None})
    assert coll == Collection("c", "d", False, ("a", "b"), "bob")


def test_frame_values_are_coerced_to_numbers():
    frame = CoordFrame.from_json({**FRAME, "y_start": -5, "y_stop": "5", "x_voxel_size": 4})
    assert frame.box.y == (-5, 5) and isinstance(frame.x_voxel_size, float)


def test_experiment_with_null_time_step_unit_keeps_it():
    assert Experiment.from_json({**EXPERIMENT, "time_step": None, "time_step_unit": None}).time_step_unit is None


@pytest.mark.parametrize("model, data, field", [
    (Channel, {k: v for k, v in CHANNEL.items() if k != "datatype"}, "datatype"),
    (CoordFrame, {k: v for k, v in FRAME.items() if k != "z_stop"}, "z_stop"),
    (Experiment, {"name": "e"}, "coord_frame"),
    (Collection, {}, "name"),
])
def test_missing_required_field_is_a_remote_error_naming_it(model, data, field):
    with pytest.raises(RemoteError, match=f"lacks the field '{field}'"):
        model.from_json(data)


def test_unusable_values_and_non_objects_are_remote_errors():
    with pytest.raises(RemoteError, match="'x_stop' has an unusable value 'wide'"):
        CoordFrame.from_json({**FRAME, "x_stop": "wide"})
    with pytest.raises(RemoteError, match="not a JSON object"):
        Channel.from_json(["ann"])


# --- ChannelRef ---------------------------------------------------------------------------------------


def test_channel_ref_path_prefix_and_parse():
    ref = ChannelRef("coll-1", "exp_2", "em")
    assert (ref.path, ref.prefix, str(ref)) == ("coll-1/exp_2/em", "coll-1_exp_2_em", "coll-1/exp_2/em")
    assert ChannelRef.parse("bossdb://coll-1/exp_2/em/") == ref == ChannelRef.parse("coll-1/exp_2/em")


@pytest.mark.parametrize("names", [("a b", "e", "c"), ("c", "../e", "c"), ("c", "e", ""), ("c", "e", "ch?x=1")])
def test_channel_ref_rejects_names_boss_would_not_accept(names):
    with pytest.raises(UsageError, match="name .* is not valid: use 1 to 255 letters, digits, '_' or '-'"):
        ChannelRef(*names)


def test_channel_ref_parse_needs_three_names():
    with pytest.raises(UsageError, match="write collection/experiment/channel"):
        ChannelRef.parse("coll/exp")


# --- ChannelInfo --------------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype, dtype", [("uint8", np.uint8), ("uint16", np.uint16), ("uint64", np.uint64)])
def test_dtype(datatype, dtype):
    assert info(channel={"datatype": datatype}).dtype == np.dtype(dtype)


def test_unsupported_datatype_is_a_usage_error():
    with pytest.raises(UsageError, match="col1/exp1/ann: unsupported channel datatype 'float32'"):
        _ = info(channel={"datatype": "float32"}).dtype


def z_stops(chan: ChannelInfo, levels: int, iso: bool = False) -> list[int]:
    """z stop of a 64-voxel-deep box at levels 0..levels-1: shows on which steps z halves."""
    return [chan.box_at(Box((0, 0, 0), (64, 64, 64)), res, iso).z[1] for res in range(levels)]


def test_isotropic_extent_halves_z_and_rounds_stops_up():
    iso = info(frame={"x_stop": 1000, "y_stop": 999, "z_stop": 101, "z_start": 3},
               experiment={"num_hierarchy_levels": 4})
    assert z_stops(iso, 4) == [64, 32, 16, 8]
    assert iso.extent_at(0) == Box((0, 0, 3), (1000, 999, 101))
    assert iso.extent_at(1) == Box((0, 0, 3), (500, 500, 51))  # BOSS: never below the level-0 start
    assert iso.extent_at(2) == Box((0, 0, 3), (250, 250, 26))
    assert iso.voxel_size_at(2) == (4.0, 4.0, 4.0)


def test_anisotropic_extent_keeps_z():
    aniso = info(frame={"x_stop": 1000, "z_stop": 101, "z_voxel_size": 40.0},
                 experiment={"hierarchy_method": "anisotropic", "num_hierarchy_levels": 5})
    assert z_stops(aniso, 4) == [64, 64, 64, 64]
    assert aniso.extent_at(3) == Box((0, 0, 0), (125, 256, 101))
    assert aniso.voxel_size_at(3) == (8.0, 8.0, 40.0)


def test_anisotropic_iso_copy_halves_z_only_above_the_iso_level():
    aniso = info(frame={"x_voxel_size": 4.0, "y_voxel_size": 4.0, "z_voxel_size": 16.0, "z_stop": 100},
                 experiment={"hierarchy_method": "anisotropic", "num_hierarchy_levels": 5})
    assert aniso.iso_level() == 2  # 4 nm * 2^2 = 16 nm
    assert z_stops(aniso, 5, iso=True) == [64, 64, 64, 32, 16] and z_stops(aniso, 5) == [64] * 5
    assert aniso.extent_at(2, iso=True).z == (0, 100)
    assert aniso.extent_at(4, iso=True) == Box((0, 0, 0), (128, 128, 25))
    assert aniso.voxel_size_at(4, iso=True) == (64.0, 64.0, 64.0)


@given(stops=st.tuples(*[st.integers(1, 10**6)] * 3), starts=st.tuples(*[st.integers(-100, 0)] * 3),
       res=st.integers(0, 9), isotropic=st.booleans())
def test_extent_at_is_ceil_of_stop_and_floor_of_start_but_not_below_the_level0_start(stops, starts, res, isotropic):
    frame = {f"{a}_{e}": v for a, lo, hi in zip("xyz", starts, stops) for e, v in (("start", lo), ("stop", hi))}
    chan = info(frame=frame, experiment={"hierarchy_method": "isotropic" if isotropic else "anisotropic"})
    factors = (2**res, 2**res, 2**res if isotropic else 1)
    extent = chan.extent_at(res)
    assert extent.stop == tuple(math.ceil(s / f) for s, f in zip(stops, factors))
    assert extent.start == tuple(max(math.floor(s / f), s) for s, f in zip(starts, factors))


def test_check_res_accepts_built_levels():
    built = info(experiment={"num_hierarchy_levels": 3}, channel={"downsample_status": "DOWNSAMPLED"})
    for res in (0, 1, 2):
        built.check_res(res)
    info(experiment={"num_hierarchy_levels": 3}).check_res(0)  # the base level needs no downsample


@pytest.mark.parametrize("status, built", [("DOWNSAMPLED", [True, True, False]),  # level 3 >= n: never built
                                            ("IN_PROGRESS", [True, False, False]),
                                            ("NOT_DOWNSAMPLED", [True, False, False])])
def test_is_built_base_level_always_others_after_a_downsample(status, built):
    based = info(experiment={"num_hierarchy_levels": 3}, channel={"base_resolution": 1, "downsample_status": status})
    assert [based.is_built(res) for res in based.levels] == built


@pytest.mark.parametrize("res", [-1, 3, 7])
def test_check_res_outside_the_hierarchy(res):
    with pytest.raises(OutOfBounds) as exc:
        info(experiment={"num_hierarchy_levels": 3}, channel={"downsample_status": "DOWNSAMPLED"}).check_res(res)
    assert str(exc.value) == f"resolution {res} is outside channel col1/exp1/ann's hierarchy: use 0 to 2"


def test_check_res_respects_the_base_resolution():
    based = info(experiment={"num_hierarchy_levels": 2}, channel={"base_resolution": 1})
    based.check_res(1)
    with pytest.raises(OutOfBounds, match="use 1 to 2"):
        based.check_res(0)


def test_check_res_above_base_needs_a_finished_downsample():
    with pytest.raises(OutOfBounds) as exc:
        info(experiment={"num_hierarchy_levels": 3}, channel={"downsample_status": "IN_PROGRESS"}).check_res(2)
    assert str(exc.value) == ("resolution 2 of channel col1/exp1/ann has never been built (downsample status "
                              "IN_PROGRESS): run a downsample of the channel first (ndpush --downsample), or use "
                              "resolution 0")


def test_check_box_names_axis_request_and_frame_range_at_that_level():
    chan = info(experiment={"num_hierarchy_levels": 2})
    chan.check_box(Box((0, 0, 0), (2048, 2048, 100)), 0)
    chan.check_box(Box((0, 0, 0), (1024, 1024, 50)), 1)
    with pytest.raises(OutOfBounds) as exc:
        chan.check_box(Box((0, 0, 0), (1024, 1025, 10)), 1)
    assert str(exc.value) == ("y range 0:1025 lies outside the coordinate frame 'cf1' of col1/exp1/ann at "
                              "resolution 1, whose y range is 0:1024")
    with pytest.raises(OutOfBounds, match="^z range 99:101 .* whose z range is 0:100$"):
        chan.check_box(Box((0, 0, 99), (8, 8, 101)), 0)


def test_check_box_below_a_negative_frame_start():
    chan = info(frame={"x_start": -10})
    chan.check_box(Box((-10, 0, 0), (0, 1, 1)), 0)
    with pytest.raises(OutOfBounds, match="x range -11:0 .* whose x range is -10:2048"):
        chan.check_box(Box((-11, 0, 0), (0, 1, 1)), 0)


def test_check_time():
    chan = info()  # 10 time samples
    chan.check_time((0, 10))
    with pytest.raises(OutOfBounds, match="time range 9:11 is outside experiment 'exp1', which has time "
                                          "samples 0:10"):
        chan.check_time((9, 11))
