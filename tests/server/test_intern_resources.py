"""intern's BossRemote, unmodified, manages every resource kind on the in-process server."""
from __future__ import annotations

import uuid

import pytest
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import (
    ChannelResource,
    CollectionResource,
    CoordinateFrameResource,
    ExperimentResource,
)
from requests import HTTPError


@pytest.fixture(scope="module")
def rmt(server_app):
    return BossRemote(server_app.intern_config())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def project(rmt):
    """A frame, collection and experiment; everything is deleted again afterwards."""
    frame = CoordinateFrameResource(unique("cf"), "frame", 0, 10, -5, 5, 3, 6, 1, 1, 1, "nanometers")
    coll = CollectionResource(unique("col"), "a collection")
    rmt.create_project(frame)
    rmt.create_project(coll)
    exp = ExperimentResource("exp", coll.name, frame.name, "an experiment", 1, "isotropic", 1,
                             time_step=2, time_step_unit="nanoseconds")
    rmt.create_project(exp)
    yield rmt, frame, coll, exp
    try:
        names = rmt.list_channels(coll.name, exp.name)
    except HTTPError:
        names = []  # the test renamed or deleted them itself
    for name in sorted(names, key=lambda n: n != "ann"):  # annotation channels reference their sources
        rmt.delete_project(ChannelResource(name, coll.name, exp.name))
    for res in (ExperimentResource(exp.name, coll.name), frame, coll):
        try:
            rmt.delete_project(res)
        except HTTPError:
            pass


def test_frame_round_trip_keeps_negative_start_and_float_voxels(project):
    rmt, frame, _, _ = project
    got = rmt.get_coordinate_frame(frame.name)
    assert (got.x_start, got.x_stop, got.y_start, got.y_stop, got.z_start, got.z_stop) == (0, 10, -5, 5, 3, 6)
    assert got.x_voxel_size == 1.0 and got.voxel_unit == "nanometers"
    assert frame.name in rmt.list_coordinate_frames()


def test_collection_and_experiment_echo_every_field(project):
    rmt, frame, coll, exp = project
    got = rmt.get_project(CollectionResource(coll.name))
    assert (got.name, got.description, got.creator) == (coll.name, "a collection", "admin")
    got_exp = rmt.get_experiment(coll.name, exp.name)
    assert got_exp.coord_frame == frame.name
    assert (got_exp.num_hierarchy_levels, got_exp.hierarchy_method, got_exp.num_time_samples) == (1, "isotropic", 1)
    assert (got_exp.time_step, got_exp.time_step_unit) == (2, "nanoseconds")
    assert coll.name in rmt.list_collections()
    assert rmt.list_experiments(coll.name) == [exp.name]


def test_channels_with_sources_and_related(project):
    rmt, _, coll, exp = project
    for name in ("img", "rel"):
        rmt.create_project(ChannelResource(name, coll.name, exp.name, "image", datatype="uint8"))
    ann = rmt.create_project(ChannelResource("ann", coll.name, exp.name, "annotation", datatype="uint64",
                                             sources=["img"], related=["rel"]))
    assert ann.sources == ["img"] and ann.related == ["rel"]
    got = rmt.get_channel("ann", coll.name, exp.name)
    assert (got.type, got.datatype, got.downsample_status, got.base_resolution) == (
        "annotation", "uint64", "NOT_DOWNSAMPLED", 0)
    assert set(rmt.list_channels(coll.name, exp.name)) == {"img", "rel", "ann"}


def test_annotation_channel_without_sources_is_refused(project):
    rmt, _, coll, exp = project
    rmt.create_project(ChannelResource("rel", coll.name, exp.name, "image", datatype="uint8"))
    with pytest.raises(HTTPError) as err:
        rmt.create_project(ChannelResource("ann", coll.name, exp.name, "annotation", datatype="uint64",
                                           related=["rel"]))
    assert err.value.response.status_code == 400
    assert err.value.response.json()["code"] == 1003


def test_renames_keep_the_rest(project):
    rmt, frame, coll, exp = project
    rmt.create_project(ChannelResource("img", coll.name, exp.name, "image", datatype="uint16"))
    new_chan = rmt.update_project("img", ChannelResource("img2", coll.name, exp.name, "image", "new desc",
                                                         base_resolution=1))
    assert (new_chan.name, new_chan.datatype, new_chan.base_resolution) == ("img2", "uint16", 1)
    new_exp = rmt.update_project(exp.name, ExperimentResource("exp2", coll.name, description="d",
                                                              num_hierarchy_levels=2,
                                                              hierarchy_method="anisotropic"))
    assert (new_exp.name, new_exp.num_time_samples, new_exp.time_step_unit) == ("exp2", 1, "nanoseconds")
    assert new_exp.coord_frame == frame.name
    new_frame_name = unique("cf")
    new_frame = rmt.update_project(frame.name, CoordinateFrameResource(new_frame_name, "renamed"))
    assert (new_frame.name, new_frame.x_stop) == (new_frame_name, 10)
    new_coll_name = unique("col")
    new_coll = rmt.update_project(coll.name, CollectionResource(new_coll_name, "renamed"))
    assert new_coll.name == new_coll_name
    # delete in the order intern's suite does: channel, experiment, frame, collection
    rmt.delete_project(ChannelResource("img2", new_coll_name, "exp2"))
    rmt.delete_project(ExperimentResource("exp2", new_coll_name))
    rmt.delete_project(CoordinateFrameResource(new_frame_name))
    rmt.delete_project(CollectionResource(new_coll_name))
    assert new_coll_name not in rmt.list_collections()


def test_delete_guards_refuse_orphaning(project):
    rmt, frame, coll, exp = project
    rmt.create_project(ChannelResource("img", coll.name, exp.name, "image", datatype="uint8"))
    rmt.create_project(ChannelResource("ann", coll.name, exp.name, "annotation", datatype="uint64", sources=["img"]))
    for res in (ChannelResource("img", coll.name, exp.name), ExperimentResource(exp.name, coll.name), frame,
                CollectionResource(coll.name)):
        with pytest.raises(HTTPError) as err:
            rmt.delete_project(res)
        assert err.value.response.json()["code"] == 4003


def test_set_public_visibility(project):
    rmt, _, coll, _ = project
    rmt.set_project_public_visibility(CollectionResource(coll.name), True)
    assert rmt.get_project(CollectionResource(coll.name)).raw["public"] is True


def test_duplicate_names_are_refused(project):
    rmt, frame, coll, _ = project
    for res in (CollectionResource(coll.name), frame):
        with pytest.raises(HTTPError) as err:
            rmt.create_project(res)
        assert err.value.response.status_code == 400
