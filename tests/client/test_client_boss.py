"""Resource, metadata and downsample calls: exact URLs, bodies and success codes of boss-api.md."""
from __future__ import annotations

import json

import pytest
from client_fakes import BASE
from responses import matchers

from ndex.client import BossClient, Channel, ChannelRef, Collection, CoordFrame, Experiment
from ndex.errors import BadRequest, Conflict, InvalidBox, RemoteError, ResourceNotFound, UsageError

REF = ChannelRef("col1", "exp1", "img")
FRAME = {"name": "cf1", "description": "", "x_start": 0, "x_stop": 2048, "y_start": -5, "y_stop": 5,
         "z_start": 3, "z_stop": 6, "x_voxel_size": 4.0, "y_voxel_size": 4.0, "z_voxel_size": 40.0,
         "voxel_unit": "nanometers"}
EXPERIMENT = {"channels": ["img"], "name": "exp1", "public": False, "description": "", "collection": "col1",
              "coord_frame": "cf1", "num_hierarchy_levels": 3, "hierarchy_method": "anisotropic",
              "num_time_samples": 1, "time_step": 0, "time_step_unit": "seconds", "creator": "alice"}
CHANNEL = {"name": "img", "public": False, "description": "", "experiment": "exp1", "default_time_sample": 0,
           "type": "image", "base_resolution": 0, "datatype": "uint16", "creator": "alice", "sources": [],
           "downsample_status": "DOWNSAMPLED", "related": ["other"]}


def sent_json(call) -> dict:
    assert call.request.headers["Content-Type"] == "application/json"
    return json.loads(call.request.body)


def test_lists_use_the_list_routes(client, rsps):
    rsps.get(f"{BASE}/v1/collection/", json={"collections": ["a", "b"]})
    rsps.get(f"{BASE}/v1/collection/a/experiment/", json={"experiments": ["e"]})
    rsps.get(f"{BASE}/v1/collection/a/experiment/e/channel/", json={"channels": ["c1", "c2"]})
    rsps.get(f"{BASE}/v1/coord/", json={"coords": ["cf1"]})
    assert client.list_collections() == ["a", "b"]
    assert client.list_experiments("a") == ["e"]
    assert client.list_channels("a", "e") == ["c1", "c2"]
    assert client.list_coord_frames() == ["cf1"]


def test_collection_lifecycle(client, rsps):
    url = f"{BASE}/v1/collection/col1"
    rsps.post(url, status=201, json={"name": "col1", "description": "d", "public": True, "experiments": [],
                                     "creator": "alice"})
    rsps.get(url, json={"name": "col1", "description": "d", "creator": "alice"})
    rsps.put(url, json={"name": "col2", "description": "d", "creator": "alice"})
    rsps.delete(f"{BASE}/v1/collection/col2", status=204)
    assert client.create_collection("col1", "d", public=True) == Collection("col1", "d", True, (), "alice")
    assert client.get_collection("col1").creator == "alice"
    assert client.update_collection("col1", name="col2").name == "col2"
    client.delete_collection("col2")
    assert sent_json(rsps.calls[0]) == {"name": "col1", "description": "d", "public": True}
    assert sent_json(rsps.calls[2]) == {"name": "col2"}
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "PUT", "DELETE"]


def test_experiment_create_sends_every_field_intern_needs(client, rsps):
    url = f"{BASE}/v1/collection/col1/experiment/exp1"
    rsps.post(url, status=201, json=EXPERIMENT)
    exp = client.create_experiment("col1", "exp1", "cf1", num_hierarchy_levels=3)
    assert isinstance(exp, Experiment) and exp.num_hierarchy_levels == 3
    assert sent_json(rsps.calls[0]) == {
        "name": "exp1", "description": "", "collection": "col1", "coord_frame": "cf1", "num_hierarchy_levels": 3,
        "hierarchy_method": "anisotropic", "num_time_samples": 1, "time_step": 0, "time_step_unit": "seconds",
        "public": False}
    rsps.put(url, json=EXPERIMENT)
    client.update_experiment("col1", "exp1", hierarchy_method="isotropic", num_hierarchy_levels=2)
    assert sent_json(rsps.calls[1]) == {"hierarchy_method": "isotropic", "num_hierarchy_levels": 2}
    rsps.delete(url, status=204)
    client.delete_experiment("col1", "exp1")


def test_channel_create_and_delete(client, rsps):
    url = f"{BASE}/v1/collection/col1/experiment/exp1/channel/img"
    rsps.post(url, status=201, json=CHANNEL)
    chan = client.create_channel(REF, "image", "uint16", related=["other"], description="em")
    assert isinstance(chan, Channel) and chan.related == ("other",)
    assert sent_json(rsps.calls[0]) == {"name": "img", "description": "em", "type": "image", "datatype": "uint16",
                                        "base_resolution": 0, "default_time_sample": 0, "sources": [],
                                        "related": ["other"]}
    rsps.delete(url, status=204)
    client.delete_channel(REF)


def test_channel_update_resends_current_sources_and_related(client, rsps):
    url = f"{BASE}/v1/collection/col1/experiment/exp1/channel/img"
    rsps.get(url, json=CHANNEL)
    rsps.put(url, json={**CHANNEL, "description": "new"})
    assert client.update_channel(REF, description="new").description == "new"
    assert sent_json(rsps.calls[1]) == {"sources": [], "related": ["other"], "description": "new"}
    rsps.put(url, json=CHANNEL)
    client.update_channel(REF, sources=["a"], related=[])
    assert rsps.calls[2].request.method == "PUT"  # both given: no extra GET
    assert sent_json(rsps.calls[2]) == {"sources": ["a"], "related": []}


def test_coord_frame_create_and_update(client, rsps):
    url = f"{BASE}/v1/coord/cf1"
    rsps.post(url, status=201, json=FRAME)
    frame = client.create_coord_frame("cf1", x=(0, 2048), y=(-5, 5), z=(3, 6), voxel_size=(4, 4, 40))
    assert isinstance(frame, CoordFrame) and frame.box.y == (-5, 5)
    assert sent_json(rsps.calls[0]) == {**FRAME, "x_voxel_size": 4.0, "y_voxel_size": 4.0, "z_voxel_size": 40.0}
    rsps.put(url, json={**FRAME, "name": "cf2"})
    assert client.update_coord_frame("cf1", name="cf2", description="x").name == "cf2"
    rsps.delete(f"{BASE}/v1/coord/cf2", status=204)
    client.delete_coord_frame("cf2")


def test_channel_info_gathers_channel_experiment_and_frame(client, rsps):
    rsps.get(f"{BASE}/v1/collection/col1/experiment/exp1/channel/img", json=CHANNEL)
    rsps.get(f"{BASE}/v1/collection/col1/experiment/exp1", json=EXPERIMENT)
    rsps.get(f"{BASE}/v1/coord/cf1", json=FRAME)
    info = client.channel_info(REF)
    assert info.ref == REF and info.dtype.name == "uint16" and info.frame.name == "cf1"
    info.check_res(2)
    assert info.extent_at(2).x == (0, 512) and info.voxel_size_at(2) == (16.0, 16.0, 40.0)


def test_missing_channel_is_resource_not_found(client, rsps):
    rsps.get(f"{BASE}/v1/collection/col1/experiment/exp1/channel/img", status=404,
             json={"status": 404, "code": 4000, "message": "Channel img not found"})
    with pytest.raises(ResourceNotFound, match="Channel img not found") as info:
        client.channel_info(REF)
    assert isinstance(info.value, LookupError)


@pytest.mark.parametrize("call, message", [
    (lambda c: c.update_collection("c", creator="me"), "cannot update collection field.s. creator"),
    (lambda c: c.update_coord_frame("cf", x_stop=4), "updatable are description, name"),
    (lambda c: c.update_collection("c", name="bad name"), "collection name 'bad name' is not valid"),
    (lambda c: c.create_channel(REF, "image", "float32"), "channel datatype 'float32' is not valid"),
    (lambda c: c.create_channel(REF, "mask", "uint8"), "channel type 'mask' is not valid: use one of image"),
    (lambda c: c.create_experiment("c", "e", "cf", hierarchy_method="iso"), "hierarchy method 'iso'"),
    (lambda c: c.create_coord_frame("cf", (0, 1), (0, 1), (0, 1), voxel_unit="inch"), "voxel unit 'inch'"),
    (lambda c: c.list_metadata("a", "b", "c", "d"), "give 1 to 3 names, not 4"),
    (lambda c: c.get_collection("../admin"), "is not valid"),
])
def test_bad_arguments_fail_before_any_request(client, rsps, call, message):
    with pytest.raises(UsageError, match=message):
        call(client)
    assert len(rsps.calls) == 0


def test_empty_coord_frame_range_is_refused_locally(client, rsps):
    with pytest.raises(InvalidBox, match="empty or inverted z range 6:6"):
        client.create_coord_frame("cf", (0, 1), (0, 1), (6, 6))


def test_create_existing_name_is_bad_request(client, rsps):
    rsps.post(f"{BASE}/v1/collection/col1", status=400,
              json={"status": 400, "code": 1003, "message": "{'name': ['collection with this name already exists.']}"})
    with pytest.raises(BadRequest, match="already exists") as info:
        client.create_collection("col1")
    assert info.value.code == 1003


# --- metadata -----------------------------------------------------------------------------------------


def test_metadata_key_operations(client, rsps):
    base = f"{BASE}/v1/meta/col1/exp1/img/"
    rsps.get(f"{BASE}/v1/meta/col1", json={"keys": ["a", "b"]})
    rsps.get(base, match=[matchers.query_param_matcher({"key": "red"})], json={"key": "red", "value": "1"})
    rsps.post(base, status=201, match=[matchers.query_param_matcher({"key": "k y", "value": "a&b=c+d"})])
    rsps.put(f"{BASE}/v1/meta/col1/exp1/", status=200, match=[matchers.query_param_matcher({"key": "k",
                                                                                            "value": "2"})])
    rsps.delete(base, status=204, match=[matchers.query_param_matcher({"key": "k"})])
    assert client.list_metadata("col1") == ["a", "b"]
    assert client.get_metadata(REF, key="red") == "1"
    client.create_metadata("col1", "exp1", "img", key="k y", value="a&b=c+d")
    client.update_metadata("col1", "exp1", key="k", value=2)
    client.delete_metadata(REF, key="k")
    assert rsps.calls[0].request.url == f"{BASE}/v1/meta/col1"  # the key list: no slash, no query
    assert [c.request.method for c in rsps.calls] == ["GET", "GET", "POST", "PUT", "DELETE"]


def test_set_metadata_creates_missing_and_updates_existing_keys(client, rsps):
    base = f"{BASE}/v1/meta/col1/exp1"
    rsps.get(base, json={"keys": ["old"]})
    rsps.put(f"{base}/", status=200, match=[matchers.query_param_matcher({"key": "old", "value": "1"})])
    rsps.post(f"{base}/", status=201, match=[matchers.query_param_matcher({"key": "new", "value": "2"})])
    client.set_metadata("col1", "exp1", values={"old": 1, "new": "2"})
    assert [c.request.method for c in rsps.calls] == ["GET", "PUT", "POST"]


def test_missing_metadata_key_is_bad_request_not_retried(client, rsps, sleeps):
    rsps.get(f"{BASE}/v1/meta/col1/", status=400, json={"status": 400, "code": 1003, "message": "key not found"})
    with pytest.raises(BadRequest, match="key not found"):
        client.get_metadata("col1", key="foo")
    assert sleeps == []


# --- downsample, ping, lifecycle ----------------------------------------------------------------------


def test_downsample_calls(client, rsps):
    url = f"{BASE}/v1/downsample/col1/exp1/img"
    status = {"status": "IN_PROGRESS", "num_hierarchy_levels": 2, "voxel_size": {"0": [4, 4, 40]},
              "extent": {"0": [2048, 10, 3]}, "cuboid_size": {"0": [512, 512, 16]}}
    rsps.get(url, json=status)
    rsps.get(f"{url}?iso=true", json=status)
    rsps.post(url, status=201)
    rsps.delete(url, status=204)
    assert client.downsample_status(REF)["status"] == "IN_PROGRESS"
    client.downsample_status(REF, iso=True)
    client.start_downsample(REF)
    client.cancel_downsample(REF)
    assert rsps.calls[1].request.url.endswith("?iso=true")


def test_downsample_already_running_is_a_conflict(client, rsps):
    rsps.post(f"{BASE}/v1/downsample/col1/exp1/img", status=409,
              json={"status": 409, "code": 2006, "message": "Channel is already being downsampled"})
    with pytest.raises(Conflict, match="already being downsampled"):
        client.start_downsample(REF)


def test_ping(client, rsps):
    rsps.get(f"{BASE}/ping/", json={"ip": "10.0.0.1"})
    assert client.ping() == {"ip": "10.0.0.1"}


def test_non_json_answer_to_a_json_call_is_a_remote_error(client, rsps):
    rsps.get(f"{BASE}/v1/collection/col1", body=b"<html>login required</html>")
    with pytest.raises(RemoteError, match="expected a JSON answer, got: 'login required'"):
        client.get_collection("col1")


def test_close_closes_the_session(remote):
    closed = []
    with BossClient(remote) as boss:
        boss.http.session.close = lambda: closed.append(True)
    assert closed == [True]
