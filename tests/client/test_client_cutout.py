"""Cutout GET/POST/to_black on the wire: blosc round trips through the server app in-process; URLs,
headers, corrupt bodies and refusals against exact recorded answers (`responses`)."""
from __future__ import annotations

import re

import blosc
import numpy as np
import pytest
import responses
from client_fakes import BASE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ndex.client import ChannelRef
from ndex.errors import BadRequest, CorruptBody, InvalidBox, OutOfBounds, RequestTooLarge, UsageError
from ndex.geometry import Box

REF = ChannelRef("col1", "exp1", "chan")
CUTOUTS = re.compile(rf"{re.escape(BASE)}/v1/cutout/col1/exp1/chan/.*")


def random_array(dtype, shape, seed=0):
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(1, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.fixture
def served(inprocess_boss):
    """The server app in-process; `served(dtype)` gives a client and a channel REF of `dtype`
    (frame 128 x 96 x 32 at level 0, two levels, four time samples)."""
    def make(dtype):
        inprocess_boss.make_channel(REF, np.dtype(dtype).name, (128, 96, 32), time_samples=4, levels=2)
        return inprocess_boss.client()
    return make


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint64])
def test_3d_round_trip(inprocess_boss, served, dtype):
    client = served(dtype)
    box = Box((3, 5, 2), (40, 21, 9))
    data = random_array(dtype, box.shape_zyx)
    client.post_cutout(REF, 0, box, data)
    back = client.get_cutout(REF, 0, box, dtype)
    assert back.dtype == np.dtype(dtype) and back.shape == (7, 16, 37)
    np.testing.assert_array_equal(back, data)
    stored = inprocess_boss.volume(REF, box, time_range=(0, 2))
    np.testing.assert_array_equal(stored[0], data)  # 3D lands on default_time_sample
    assert not stored[1].any()
    seen = inprocess_boss.seen[-2:]
    assert [(s.method, s.path) for s in seen] == [("POST", "/v1/cutout/col1/exp1/chan/0/3:40/5:21/2:9/"),
                                                  ("GET", "/v1/cutout/col1/exp1/chan/0/3:40/5:21/2:9/")]
    assert seen[0].query == "" and seen[1].query == "access-mode=no-cache"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint64])
def test_4d_round_trip_and_sub_box_read(inprocess_boss, served, dtype):
    client = served(dtype)
    box = Box((0, 0, 0), (64, 48, 16))
    data = random_array(dtype, (3, *box.shape_zyx), seed=1)
    client.post_cutout(REF, 1, box, data, time_range=(1, 4))
    np.testing.assert_array_equal(client.get_cutout(REF, 1, box, dtype, time_range=(1, 4)), data)
    sub = client.get_cutout(REF, 1, Box((10, 7, 3), (20, 9, 8)), dtype, time_range=(2, 3))
    assert sub.shape == (1, 5, 2, 10)
    np.testing.assert_array_equal(sub, data[1:2, 3:8, 7:9, 10:20])
    cutouts = [s.path for s in inprocess_boss.seen if s.box is not None]
    assert cutouts[0] == "/v1/cutout/col1/exp1/chan/1/0:64/0:48/0:16/1:4/"
    assert cutouts[2] == "/v1/cutout/col1/exp1/chan/1/10:20/7:9/3:8/2:3/"


@pytest.fixture
def channel_of(inprocess_boss):
    """`channel_of(dtype)`: a channel of `dtype` in a 64 x 48 x 32 frame, made on first use."""
    made: dict[str, ChannelRef] = {}

    def get(dtype) -> ChannelRef:
        name = np.dtype(dtype).name
        if name not in made:
            made[name] = ChannelRef(f"col-{name}", "exp1", "chan")
            inprocess_boss.make_channel(made[name], name, (64, 48, 32))
        return made[name]
    return get


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.tuples(st.integers(0, 63), st.integers(1, 64)), y=st.tuples(st.integers(0, 47), st.integers(1, 48)),
       z=st.tuples(st.integers(0, 31), st.integers(1, 32)), dtype=st.sampled_from([np.uint8, np.uint16, np.uint64]))
def test_any_box_round_trips(inprocess_boss, channel_of, x, y, z, dtype):
    ref, client = channel_of(dtype), inprocess_boss.client()
    box = Box.from_ranges(*[(lo, max(lo + 1, hi)) for lo, hi in (x, y, z)])
    data = random_array(dtype, box.shape_zyx, seed=box.nvoxels)
    client.post_cutout(ref, 0, box, data)
    np.testing.assert_array_equal(client.get_cutout(ref, 0, box, dtype), data)


def test_filter_iso_and_query_order(client, rsps):
    body = blosc.compress(np.zeros((1, 2, 2), np.uint64).tobytes(), typesize=8)
    rsps.get(CUTOUTS, body=body)
    client.get_cutout(REF, 2, Box((0, 0, 0), (2, 2, 1)), np.uint64, filter_ids=[123, 55555], iso=True)
    sent = rsps.calls[0].request
    assert sent.url == (f"{BASE}/v1/cutout/col1/exp1/chan/2/0:2/0:2/0:1/"
                        "?filter=123,55555&iso=true&access-mode=no-cache")
    assert sent.headers["Accept"] == "application/blosc"


def test_to_black_puts_without_body(client, rsps):
    rsps.put(f"{BASE}/v1/cutout/to_black/col1/exp1/chan/0/0:512/0:512/0:16/3:6/", status=200)
    client.cutout_to_black(REF, 0, Box((0, 0, 0), (512, 512, 16)), time_range=(3, 6))
    rsps.put(f"{BASE}/v1/cutout/to_black/col1/exp1/chan/1/0:8/0:8/0:1/?iso=true", status=200)
    client.cutout_to_black(REF, 1, Box((0, 0, 0), (8, 8, 1)), iso=True)
    assert [c.request.body for c in rsps.calls] == [None, None]
    assert rsps.calls[0].request.headers["Content-Type"] == "application/blosc"


# --- corrupt bodies -----------------------------------------------------------------------------------


def good_body(shape=(2, 4, 4)):
    return blosc.compress(np.arange(np.prod(shape), dtype=np.uint16).tobytes(), typesize=2)


@pytest.mark.parametrize("bad", [
    good_body()[:-5],  # truncated frame
    b"<html>gateway hiccup</html>",  # not blosc at all
    good_body((2, 4, 5)),  # a valid frame of the wrong size
    b"",
])
def test_corrupt_cutout_bodies_are_retried_then_raised(client, rsps, sleeps, bad):
    rsps.get(CUTOUTS, body=bad)
    with pytest.raises(CorruptBody, match=r"^GET /v1/cutout/col1/exp1/chan/0/0:4/0:4/0:2/: .*(blosc|bytes)"):
        client.get_cutout(REF, 0, Box((0, 0, 0), (4, 4, 2)), np.uint16)
    assert len(rsps.calls) == 4 and len(sleeps) == 3
    assert all(c.request.url.endswith("/0:4/0:4/0:2/?access-mode=no-cache") for c in rsps.calls)


def test_a_corrupt_body_is_fetched_again(client, rsps):
    rsps.get(CUTOUTS, body=good_body()[:20])
    rsps.get(CUTOUTS, body=good_body())
    out = client.get_cutout(REF, 0, Box((0, 0, 0), (4, 4, 2)), np.uint16)
    np.testing.assert_array_equal(out.ravel(), np.arange(32))
    assert len(rsps.calls) == 2 and client.stats.retries == 1


# --- refusals -----------------------------------------------------------------------------------------


def test_post_errors_are_not_retried(client, rsps, sleeps):
    rsps.post(CUTOUTS, status=413, json={"status": 413, "code": 2000, "message": "Cutout request is over 500MB"})
    with pytest.raises(RequestTooLarge, match="over 500MB"):
        client.post_cutout(REF, 0, Box((0, 0, 0), (4, 4, 2)), np.ones((2, 4, 4), np.uint8))
    rsps.replace(responses.POST, CUTOUTS, status=400, json={"status": 400, "code": 2001, "message": "dtype"})
    with pytest.raises(BadRequest):
        client.post_cutout(REF, 0, Box((0, 0, 0), (4, 4, 2)), np.ones((2, 4, 4), np.uint8))
    assert len(rsps.calls) == 2 and sleeps == []


@pytest.mark.parametrize("data, time_range, message", [
    (np.ones((4, 4, 2), np.uint8), None, r"data of shape \(4, 4, 2\) does not fit x 0:4, y 0:4, z 0:2: it must "
                                         r"be \(z, y, x\) = \(2, 4, 4\)"),
    (np.ones((2, 4, 4), np.uint8), (0, 2), r"t 0:2: it must be \(t, z, y, x\) = \(2, 2, 4, 4\)"),
    (np.ones((2, 4, 4), np.float32), None, "dtype float32 cannot be posted"),
])
def test_post_rejects_data_that_does_not_fit_before_sending(client, rsps, data, time_range, message):
    with pytest.raises(UsageError, match=message):
        client.post_cutout(REF, 0, Box((0, 0, 0), (4, 4, 2)), data, time_range=time_range)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("res, box, time_range, error", [
    (10, Box((0, 0, 0), (1, 1, 1)), None, OutOfBounds),
    (0, Box((-4, 0, 0), (1, 1, 1)), None, OutOfBounds),
    (0, Box((0, 0, 0), (1, 1, 1)), (3, 3), InvalidBox),
    (0, Box((0, 0, 0), (1, 1, 1)), (-1, 2), InvalidBox),
])
def test_unaddressable_requests_fail_before_sending(client, rsps, res, box, time_range, error):
    with pytest.raises(error):
        client.get_cutout(REF, res, box, np.uint8, time_range=time_range)
    assert len(rsps.calls) == 0
