"""Every route answers bad credentials and bad input with BOSS's error shapes, and the server keeps serving.

Like datasette's test_error_shape: the routes are read from the app itself, so a new route is covered
the day it is added.
"""
from __future__ import annotations

import re

import pytest
import requests
from fastapi.routing import APIRoute

from ndex.server.app import ROUTE_MODULES

BAD = "no.such"  # a name no resource can have: lookups give 404, creations 400
PARAMS = {"res": "0", "x": "0:1", "y": "0:1", "z": "0:1", "t": "0:1", "num": "1", "obj_id": "1", "orient": "xy",
          "size": "512", "xi": "0", "yi": "0", "zi": "0", "role": "resource-manager"}
OPEN = {"/ping", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
LISTS = {("GET", "/v1/collection"), ("GET", "/v1/coord"), ("GET", "/v1/groups"), ("GET", "/v1/permissions")}


def routes():
    for module in ROUTE_MODULES:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods):
                    yield method, route.path


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS.get(m.group(1), BAD), path)


ALL = sorted(set(routes()))


def is_envelope(body: dict, status: int) -> bool:
    return set(body) == {"status", "code", "message"} and body["status"] == status and isinstance(body["code"], int)


@pytest.mark.parametrize("method,path", ALL, ids=[f"{m} {p}" for m, p in ALL])
def test_bad_token_gives_401_detail(server_app, method, path):
    r = requests.request(method, server_app.url + concrete(path) + "/", headers={"Authorization": "Token nope"},
                         timeout=30)
    assert r.status_code == 401, r.text
    assert set(r.json()) == {"detail"}


@pytest.mark.parametrize("method,path", ALL, ids=[f"{m} {p}" for m, p in ALL])
def test_bad_input_gives_the_envelope(server_app, method, path):
    r = requests.request(method, server_app.url + concrete(path), headers=server_app.headers, timeout=30)
    if (method, path) in LISTS:
        assert r.status_code == 200
        return
    assert 400 <= r.status_code < 500, r.text
    assert is_envelope(r.json(), r.status_code), r.text
    assert requests.get(server_app.url + "/ping/", timeout=30).status_code == 200


def test_anonymous_unsafe_verbs_are_401(server_app):
    for method, path in ALL:
        if method != "GET":
            r = requests.request(method, server_app.url + concrete(path), timeout=30)
            assert r.status_code == 401 and "detail" in r.json(), (method, path)


def test_unknown_route_wrong_verb_and_retired_versions(server_app):
    url, h = server_app.url, server_app.headers
    r = requests.get(url + "/v1/no/such/route", headers=h, timeout=30)
    assert r.status_code == 404 and is_envelope(r.json(), 404)
    r = requests.post(url + "/v1/collection/", headers=h, timeout=30)
    assert r.status_code == 405 and set(r.json()) == {"detail"}
    r = requests.put(url + "/v0.7/collection/x/", headers=h, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == 9003


def test_ping_needs_no_token(server_app):
    r = requests.get(server_app.url + "/ping/", timeout=30)
    assert r.status_code == 200 and "ip" in r.json()


def test_openapi_lists_the_json_endpoints(server_app):
    spec = requests.get(server_app.url + "/openapi.json", timeout=30).json()
    assert "/v1/collection/{c}" in spec["paths"] and "/v1/permissions" in spec["paths"]
    assert requests.get(server_app.url + "/docs", timeout=30).status_code == 200
