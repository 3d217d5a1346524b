"""The client against BOSS's own answers (tests/data/boss, see SOURCES.md there), not against ndex serve's.

Parsers get BOSS's serializer shapes (nulls, ids where names were expected, cloudvol fields, uint32);
the HTTP layer gets BOSS's quota 429s, its 500 for children of a missing parent and its 400 for a
cutout below the frame start.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from client_fakes import BASE

from ndex import codecs
from ndex.client import Channel, ChannelInfo, ChannelRef, Collection, CoordFrame, Experiment
from ndex.errors import BadRequest, QuotaExceeded, ResourceNotFound, Throttled, ends_transfer, is_retryable
from ndex.geometry import Box

DATA = Path(__file__).resolve().parents[1] / "data" / "boss"
ERRORS = json.loads((DATA / "errors.json").read_text())
REF = ChannelRef("lab2019", "em", "image")


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def answer(rsps, method: str, url: str, error: str, headers: dict | None = None) -> None:
    """Register BOSS's recorded error answer `error` for method + url."""
    recorded = ERRORS[error]
    body = recorded["body"]
    rsps.add(method, url, status=recorded["status"], headers={**recorded["headers"], **(headers or {})},
             body=body if isinstance(body, str) else json.dumps(body))


# --- parsers ------------------------------------------------------------------------------------------


def test_read_serializers_parse_with_nulls_and_cloudvol_fields():
    assert Collection.from_json(load("collection_get")) == Collection("lab2019", "", True, ("em", "lm"), "bossadmin")
    exp = Experiment.from_json(load("experiment_get"))
    assert (exp.coord_frame, exp.collection, exp.time_step, exp.time_step_unit) == ("lab2019_em", "lab2019", None,
                                                                                    None)
    chan = Channel.from_json(load("channel_get"))
    assert (chan.storage_type, chan.bucket, chan.cv_path, chan.sources) == ("spdb", None, None, ())
    cv = Channel.from_json(load("channel_cloudvol"))
    assert (cv.storage_type, cv.bucket, cv.cv_path) == ("cloudvol", "bossdb-open-data", "/lab2019/em/cells")
    frame = CoordFrame.from_json(load("coord_frame_offset"))
    assert frame.box == Box((1000, 600, 5), (5000, 1800, 45)) and frame.voxel_size == (4.0, 4.0, 40.0)


def test_null_description_and_creator_keep_their_defaults():
    chan = Channel.from_json({**load("channel_get"), "description": None, "creator": None})
    assert (chan.description, chan.creator) == ("", "")


def test_creation_answers_carry_ids_and_the_client_names_them(client, rsps):
    rsps.post(f"{BASE}/v1/collection/lab2019/experiment/em", status=201, json=load("experiment_post"))
    rsps.post(f"{BASE}/v1/collection/lab2019/experiment/em/channel/image", status=201, json=load("channel_post"))
    exp = client.create_experiment("lab2019", "em", "lab2019_em", num_hierarchy_levels=4)
    assert (exp.coord_frame, exp.collection) == ("lab2019_em", "lab2019")  # not "17" and "42"
    chan = client.create_channel(REF, "image", "uint8")
    assert chan.experiment == "em" and chan.sources == ()


def test_uint32_channels_are_read_and_written(client, rsps):
    ref = ChannelRef("lab2019", "em", "seg32")
    info = ChannelInfo(ref, Channel.from_json(load("channel_uint32")), Experiment.from_json(load("experiment_get")),
                       CoordFrame.from_json(load("coord_frame_offset")))
    assert info.dtype == np.uint32
    box = Box((1000, 600, 5), (1064, 632, 7))
    data = np.arange(2 * 32 * 64, dtype=np.uint32).reshape(2, 32, 64) * 65599  # values above 2**16
    url = f"{BASE}/v1/cutout/lab2019/em/seg32/0/1000:1064/600:632/5:7/"
    # BOSS's renderer compresses with typesize = bit depth (32), not bytes
    rsps.get(url, body=codecs_blosc_as_boss(data), content_type="application/blosc")
    rsps.post(url, status=201)
    assert np.array_equal(client.get_cutout(ref, 0, box, info.dtype), data)
    client.post_cutout(ref, 0, box, data)
    sent = rsps.calls[-1].request.body
    assert np.array_equal(codecs.decode(sent, np.uint32, data.shape), data)


def codecs_blosc_as_boss(data: np.ndarray) -> bytes:
    import blosc

    return blosc.compress(data.tobytes(), typesize=8 * data.dtype.itemsize)


# --- the usage quota (429) ----------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["quota_json_view", "quota_cutout"])
def test_a_quota_429_without_retry_after_ends_at_once(client, rsps, sleeps, error):
    answer(rsps, "GET", f"{BASE}/v1/collection/lab2019", error)
    with pytest.raises(QuotaExceeded) as info:
        client.get_collection("lab2019")
    assert len(rsps.calls) == 1 and sleeps == []  # each refused call notifies BossDB's administrators
    text = str(info.value)
    assert "quota is spent" in text and "Expected available tomorrow" in text and "re-run" in text
    assert ends_transfer(info.value) and not is_retryable(info.value)


def test_code_3004_is_a_quota_even_with_retry_after(client, rsps, sleeps):
    answer(rsps, "GET", f"{BASE}/v1/collection/lab2019", "quota_cutout", headers={"Retry-After": "5"})
    with pytest.raises(QuotaExceeded):
        client.get_collection("lab2019")
    assert len(rsps.calls) == 1 and sleeps == []


def test_a_gateway_429_with_retry_after_is_still_waited_for(client, rsps, sleeps):
    rsps.get(f"{BASE}/v1/collection/lab2019", status=429, headers={"Retry-After": "2"}, json={"detail": "slow"})
    rsps.get(f"{BASE}/v1/collection/lab2019", json=load("collection_get"))
    assert client.get_collection("lab2019").name == "lab2019"
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.2


def test_503_without_retry_after_keeps_its_backoff(client, rsps, sleeps):
    rsps.get(f"{BASE}/v1/collection/lab2019", status=503, body="busy")
    rsps.get(f"{BASE}/v1/collection/lab2019", json=load("collection_get"))
    client.get_collection("lab2019")
    assert len(sleeps) == 1
    with pytest.raises(Throttled):
        rsps.replace("GET", f"{BASE}/v1/collection/lab2019", status=503, body="busy")
        client.get_collection("lab2019")


# --- other BOSS answers -------------------------------------------------------------------------------


def test_listing_children_of_a_missing_parent_is_not_retried(client, rsps, sleeps):
    answer(rsps, "GET", f"{BASE}/v1/collection/gone/experiment/", "list_children_of_missing_parent")
    rsps.get(f"{BASE}/v1/collection/gone", status=404,
             json={"status": 404, "code": 4000, "message": "Collection gone not found"})
    with pytest.raises(ResourceNotFound, match="gone not found"):
        client.list_experiments("gone")
    assert len(rsps.calls) == 2 and sleeps == []


def test_listing_children_of_a_parent_that_exists_retries_a_500(client, rsps, sleeps):
    url = f"{BASE}/v1/collection/lab2019/experiment/em/channel/"
    answer(rsps, "GET", url, "list_children_of_missing_parent")
    rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em", json=load("experiment_get"))
    rsps.get(url, json={"channels": ["image"]})
    assert client.list_channels("lab2019", "em") == ["image"]
    assert len(sleeps) == 0 and len(rsps.calls) == 3


def test_a_cutout_below_the_frame_start_is_a_bad_request_not_retried(client, rsps, sleeps):
    url = f"{BASE}/v1/cutout/lab2019/em/image/1/500:1000/600:1024/5:21/"
    answer(rsps, "GET", url, "cutout_below_frame_start")
    with pytest.raises(BadRequest) as info:
        client.get_cutout(REF, 1, Box((500, 600, 5), (1000, 1024, 21)), np.uint8)
    assert info.value.code == 1001 and sleeps == [] and len(rsps.calls) == 1
