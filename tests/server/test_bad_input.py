"""Bad input gets the spec's status and code, stored data stays as it was, and the server keeps serving."""
from __future__ import annotations

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import make_channel


@pytest.fixture(scope="module")
def chan(server_app):
    """A uint8 channel holding known data at x 0:8, y 0:4, z 0:2."""
    tc = make_channel(server_app, extent=(64, 64, 16), time_samples=2)
    data = np.arange(1, 65, dtype=np.uint8).reshape(2, 4, 8)
    r = post(server_app, f"/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", blosc.compress(data.tobytes(), typesize=8))
    assert r.status_code == 201, r.text
    return tc, data


def post(server, path, body, **headers):
    return requests.post(server.url + path, data=body, timeout=30,
                         headers={**server.headers, "Content-Type": "application/blosc", **headers})


def stored(server, tc) -> np.ndarray:
    r = requests.get(f"{server.url}/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", headers=server.headers, timeout=30)
    return np.frombuffer(blosc.decompress(r.content), dtype=np.uint8).reshape(2, 4, 8)


def check(r, status, code):
    assert r.status_code == status, r.text
    assert r.json() == {"status": status, "code": code, "message": r.json()["message"]}
    assert r.json()["message"]


BODY_CASES = {
    "undecodable": (b"this is not blosc at all, not even close", 400, 2001),
    "truncated": (blosc.compress(np.ones(64, np.uint8).tobytes(), typesize=8)[:-3], 400, 2001),
    "too few voxels": (blosc.compress(np.ones(32, np.uint8).tobytes(), typesize=8), 400, 2002),
    "too many voxels": (blosc.compress(np.ones(65, np.uint8).tobytes(), typesize=8), 400, 2002),
    "uint16 into uint8": (blosc.compress(np.ones(64, np.uint16).tobytes(), typesize=16), 400, 2001),
    "empty": (b"", 400, 2001),
}


@pytest.mark.parametrize("case", BODY_CASES)
def test_bad_cutout_bodies_leave_data_unchanged(server_app, chan, case):
    tc, data = chan
    body, status, code = BODY_CASES[case]
    check(post(server_app, f"/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", body), status, code)
    assert np.array_equal(stored(server_app, tc), data)


def chunks(body: bytes, size: int = 2**16):
    """`body` as a generator: requests sends it chunked, with no Content-Length to refuse it by."""
    for i in range(0, len(body), size):
        yield body[i:i + size]


@pytest.mark.parametrize("send", [bytes, chunks], ids=["declared length", "chunked"])
def test_overlong_bodies_are_refused_declared_or_streamed(server_app, chan, send):
    tc, data = chan
    raw = np.random.default_rng(2).integers(0, 255, size=4 * 2**20, dtype=np.uint8).tobytes()
    r = post(server_app, f"/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", send(blosc.compress(raw, typesize=1)))
    check(r, 400, 2002)
    assert "more than the URL's extent can hold" in r.json()["message"]
    assert np.array_equal(stored(server_app, tc), data)
    h = {**server_app.headers, "Content-Type": "application/json"}
    big = b'{"description": "' + b"x" * 2**21 + b'"}'
    r = requests.post(url(server_app, "collection/never-made"), data=send(big), headers=h, timeout=30)
    check(r, 400, 1003)
    assert "resource bodies are small" in r.json()["message"]
    assert requests.get(url(server_app, "collection/never-made"), headers=server_app.headers, timeout=30).status_code == 404


@pytest.mark.parametrize("ranges,code", [
    ("0:8/0:4/0:99999999999", 1001), ("0:65/0:4/0:2", 1001), ("8:8/0:4/0:2", 1001), ("-1:8/0:4/0:2", 1001),
    ("a:b/0:4/0:2", 1001), ("0:8/0:4/0:2/2:5", 1000), ("0:8/0:4/0:2/1:1", 1000),
])
def test_bad_ranges(server_app, chan, ranges, code):
    tc, data = chan
    body = blosc.compress(np.ones(64, np.uint8).tobytes(), typesize=8)
    check(post(server_app, f"/v1/cutout/{tc.path}/0/{ranges}/", body), 400, code)
    r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/0/{ranges}/", headers=server_app.headers, timeout=30)
    check(r, 400, code)
    assert np.array_equal(stored(server_app, tc), data)


def test_bad_resolution(server_app, chan):
    tc, _ = chan
    for res in ("5", "a"):
        r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/{res}/0:8/0:4/0:2/", headers=server_app.headers,
                         timeout=30)
        check(r, 400, 1002)


def test_too_large_is_413_before_the_body_is_read(server_app):
    tc = make_channel(server_app, extent=(100_000, 100_000, 100))
    r = post(server_app, f"/v1/cutout/{tc.path}/0/0:100000/0:100000/0:100/", b"x" * 100)
    check(r, 413, 2000)
    r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/0/0:100000/0:100000/0:100/",
                     headers=server_app.headers, timeout=30)
    check(r, 413, 2000)


def test_filter_on_image_channel_and_bad_filter(server_app, chan):
    tc, _ = chan
    r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/0/0:8/0:4/0:2/?filter=1,2", headers=server_app.headers,
                     timeout=30)
    check(r, 400, 2003)
    ann = make_channel(server_app, datatype="uint64", kind="annotation", extent=(64, 64, 16))
    r = requests.get(f"{server_app.url}/v1/cutout/{ann.path}/0/0:8/0:4/0:2/?filter=1,x", headers=server_app.headers,
                     timeout=30)
    check(r, 400, 1001)


def test_unsupported_media_type_is_415(server_app, chan):
    tc, _ = chan
    r = post(server_app, f"/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", b"{}", **{"Content-Type": "text/plain"})
    assert r.status_code == 415 and "detail" in r.json()


def url(server, path):
    return f"{server.url}/v1/{path}"


def test_malformed_json_and_unknown_fields(server_app, chan):
    tc, _ = chan
    h = {**server_app.headers, "Content-Type": "application/json"}
    r = requests.post(url(server_app, "collection/never-made"), data=b"{not json", headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.post(url(server_app, "collection/never-made"), data=b"[1, 2]", headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.post(url(server_app, "collection/never-made"), json={"colour": "red"}, headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.put(url(server_app, f"collection/{tc.collection}/experiment/{tc.experiment}"),
                     json={"coord_frame": "other"}, headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.put(url(server_app, f"coord/{tc.frame}"), json={"x_stop": 5}, headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.post(url(server_app, f"collection/{tc.collection}/experiment/{tc.experiment}/channel/c2"),
                      json={"type": "image", "datatype": "int32"}, headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.post(url(server_app, f"collection/{tc.collection}/experiment/{tc.experiment}/channel/c3"),
                      json={"type": "image", "datatype": "uint8", "default_time_sample": 2}, headers=h, timeout=30)
    check(r, 400, 1003)
    r = requests.post(url(server_app, "collection/never-made"), json={"public": "maybe"}, headers=h, timeout=30)
    check(r, 400, 1003)
    assert requests.get(url(server_app, "collection/never-made"), headers=h, timeout=30).status_code == 404


@pytest.mark.parametrize("name", ["bad.name", "sp ace", "x" * 256, "ümlaut"])
def test_names_breaking_the_regex(server_app, chan, name):
    tc, _ = chan
    r = requests.post(url(server_app, f"collection/{name}"), json={}, headers=server_app.headers, timeout=30)
    check(r, 400, 1003)
    r = requests.put(url(server_app, f"collection/{tc.collection}"), json={"name": name},
                     headers=server_app.headers, timeout=30)
    check(r, 400, 1003)
    assert requests.get(url(server_app, f"collection/{tc.collection}"), headers=server_app.headers,
                        timeout=30).status_code == 200


def test_missing_and_invalid_tokens(server_app, chan):
    tc, data = chan
    body = blosc.compress(np.full(64, 7, np.uint8).tobytes(), typesize=8)
    r = requests.post(f"{server_app.url}/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", data=body, timeout=30)
    assert r.status_code == 401 and "detail" in r.json()
    r = requests.post(f"{server_app.url}/v1/cutout/{tc.path}/0/0:8/0:4/0:2/", data=body, timeout=30,
                      headers={"Authorization": "Token 0123456789"})
    assert r.status_code == 401
    r = requests.get(url(server_app, f"collection/{tc.collection}"), headers={"Authorization": "Bearer x"}, timeout=30)
    assert r.status_code == 401
    assert np.array_equal(stored(server_app, tc), data)


def test_metadata_without_key_or_value(server_app, chan):
    tc, _ = chan
    r = requests.post(url(server_app, f"meta/{tc.collection}/?key=k"), headers=server_app.headers, timeout=30)
    check(r, 400, 1003)
    r = requests.delete(url(server_app, f"meta/{tc.collection}/"), headers=server_app.headers, timeout=30)
    check(r, 400, 1003)
    r = requests.get(url(server_app, f"meta/{tc.collection}/?key=absent"), headers=server_app.headers, timeout=30)
    check(r, 400, 1003)
