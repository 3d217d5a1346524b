"""A GET of one stored cuboid (3D, or 4D with one time point) is answered before routing (app.CutoutFastPath); every other cutout GET,
and every such GET that fails, goes through the router and gets the same answers and errors as before.

Which way a request went is seen by recording what reaches Starlette's ExceptionMiddleware, which sits
between the app's own middleware (the fast path is the innermost of those) and the router."""
from __future__ import annotations

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import make_channel
from starlette.middleware.exceptions import ExceptionMiddleware

from ndex.server.http_errors import INVALID_CUTOUT_ARGS, RESOURCE_NOT_FOUND

CUBOID = "512:1024/0:512/16:32"


@pytest.fixture
def routed(monkeypatch) -> list[str]:
    """Paths of the requests that reached the router."""
    seen: list[str] = []
    inner = ExceptionMiddleware.__call__

    async def recording(self, scope, receive, send):
        if scope["type"] == "http":
            seen.append(scope["path"])
        await inner(self, scope, receive, send)

    monkeypatch.setattr(ExceptionMiddleware, "__call__", recording)
    return seen


@pytest.fixture(scope="module")
def written(server_app):
    tc = make_channel(server_app, datatype="uint16", extent=(1100, 600, 40), time_samples=2)
    data = np.random.default_rng(3).integers(1, 60000, size=(16, 512, 512), dtype=np.uint16)
    r = requests.post(f"{server_app.url}/v1/cutout/{tc.path}/0/{CUBOID}/", headers=server_app.headers,
                      data=blosc.compress(data.tobytes(), typesize=2), timeout=30)
    assert r.status_code == 201, r.text
    return tc, data


def get(server, path: str, **kw) -> requests.Response:
    return requests.get(f"{server.url}/v1/cutout/{path}", headers=kw.pop("headers", server.headers), timeout=30,
                        **kw)


def decoded(r: requests.Response, shape) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/blosc"
    return np.frombuffer(blosc.decompress(r.content), np.uint16).reshape(shape)


@pytest.mark.parametrize("suffix", ["", "/", "/?iso=false&access-mode=cache", "/0:1/"])
def test_a_stored_cuboid_is_answered_without_routing(server_app, written, routed, suffix):
    tc, data = written
    shape = (1, 16, 512, 512) if suffix.startswith("/0:1") else (16, 512, 512)
    assert np.array_equal(decoded(get(server_app, f"{tc.path}/0/{CUBOID}{suffix}"), shape), data.reshape(shape))
    assert routed == []


@pytest.mark.parametrize("ranges, pick", [
    ("600:1000/100:400/18:30", np.s_[2:14, 100:400, 88:488]),  # part of the cuboid
    ("0:512/0:512/16:32", None),  # a cuboid never written: zeros
    (f"{CUBOID}/0:2", None),  # the stored cuboid and a time point never written
])
def test_other_gets_are_routed_and_read_the_same_voxels(server_app, written, routed, ranges, pick):
    tc, data = written
    x, y, z, *t = ([int(v) for v in r.split(":")] for r in ranges.split("/"))
    shape = (z[1] - z[0], y[1] - y[0], x[1] - x[0])
    if t:
        shape = (t[0][1] - t[0][0], *shape)
    expected = np.zeros(shape, np.uint16)
    if pick is not None:
        expected = data[pick]
    elif len(shape) == 4:
        expected[0] = data  # time point 0 written, 1 never
    got = decoded(get(server_app, f"{tc.path}/0/{ranges}/"), shape)
    assert np.array_equal(got, expected)
    assert len(routed) == 1


def test_filter_is_routed(server_app, routed):
    tc = make_channel(server_app, datatype="uint64", kind="annotation", extent=(512, 512, 16))
    labels = np.zeros((16, 512, 512), dtype=np.uint64)
    labels[:8], labels[8:] = 5, 9
    r = requests.post(f"{server_app.url}/v1/cutout/{tc.path}/0/0:512/0:512/0:16/", headers=server_app.headers,
                      data=blosc.compress(labels.tobytes(), typesize=8), timeout=30)
    assert r.status_code == 201, r.text
    routed.clear()
    r = get(server_app, f"{tc.path}/0/0:512/0:512/0:16/?filter=9")
    got = np.frombuffer(blosc.decompress(r.content), np.uint64).reshape(labels.shape)
    assert not got[:8].any() and (got[8:] == 9).all()
    assert len(routed) == 1


def test_errors_are_routed_and_keep_the_spec_shapes(server_app, written, routed):
    tc, _ = written
    bad_token = get(server_app, f"{tc.path}/0/{CUBOID}/", headers={"Authorization": "Token nope"})
    assert bad_token.status_code == 401 and "detail" in bad_token.json()
    missing = get(server_app, f"{tc.collection}/{tc.experiment}/nosuch/0/{CUBOID}/")
    assert missing.status_code == 404 and missing.json()["code"] == RESOURCE_NOT_FOUND
    outside = get(server_app, f"{tc.path}/0/1024:1536/0:512/16:32/")
    assert outside.status_code == 400 and outside.json()["code"] == INVALID_CUTOUT_ARGS
    bad_res = get(server_app, f"{tc.path}/5/{CUBOID}/")
    assert bad_res.status_code == 400 and "message" in bad_res.json()
    assert len(routed) == 4
