"""Values SQLite stores silently but PostgreSQL refuses (NUL characters, text over a column's length)
get the same 400 on both, naming the problem, and nothing is stored; values at the limit work on both."""
from __future__ import annotations

import pytest
import requests
from fixtures_server import ServerHandle, make_channel, serve_in_process


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    db_url = request.getfixturevalue("postgres_server").create_database() if request.param == "postgresql" else ""
    handle, _, stop = serve_in_process(tmp, db_url=db_url, cache_seconds=0)
    try:
        yield handle
    finally:
        stop()


def call(server: ServerHandle, verb: str, path: str, body=None) -> requests.Response:
    return requests.request(verb, server.url + path, json=body, headers=server.headers, timeout=30)


@pytest.mark.parametrize("verb, path, body, problem", [
    ("POST", "/v1/collection/nul-desc/", {"description": "a\x00b"}, "NUL"),
    ("POST", "/v1/sso/user/nul-first/", {"first_name": "a\x00b"}, "NUL"),
    ("POST", "/v1/sso/user/long-first/", {"first_name": "a" * 256}, "at most 255"),
    ("POST", "/v1/meta/{coll}/?key={long}&value=v", None, "at most 255"),
    ("POST", "/v1/meta/{coll}/?key=k&value=a%00b", None, "NUL"),
    ("PUT", "/v1/collection/{coll}/", {"description": "a\x00b"}, "NUL"),
])
def test_values_postgresql_refuses_are_refused_alike(server, verb, path, body, problem):
    chan = make_channel(server, extent=(512, 512, 16))
    answer = call(server, verb, path.format(coll=chan.collection, long="k" * 256), body)
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["message"]
    assert call(server, "GET", "/v1/collection/nul-desc/").status_code == 404  # nothing was stored
    assert call(server, "GET", f"/v1/meta/{chan.collection}/").json()["keys"] == []


def test_values_at_the_limit_are_stored_alike(server):
    chan = make_channel(server, extent=(512, 512, 16))
    key = "k" * 255
    assert call(server, "POST", f"/v1/meta/{chan.collection}/?key={key}&value=v").status_code == 201
    assert call(server, "GET", f"/v1/meta/{chan.collection}/?key={key}").json()["value"] == "v"
    made = call(server, "POST", "/v1/sso/user/at-limit/", {"first_name": "f" * 255})
    assert made.status_code == 201, made.text
