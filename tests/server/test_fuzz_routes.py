"""Every operation of the OpenAPI description, driven with generated bad input on a live server (SQLite
and PostgreSQL): no answer is a 500, none carries a traceback, every JSON error is BOSS's envelope.

The description must declare every path parameter first (views read most of them from the request
themselves), or a generator cannot reach the operation. NDEX_FUZZ_CASES sets the cases per database
(default 300, about ten seconds) and NDEX_FUZZ_SEED another set of cases; the number run is printed.
"""
from __future__ import annotations

import json
import os
import re
import struct
from urllib.parse import quote

import pytest
import requests
from fixtures_backends import backend  # noqa: F401 - the fixture
from fixtures_server import make_channel
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

CASES = int(os.environ.get("NDEX_FUZZ_CASES", "300"))
SEED = os.environ.get("NDEX_FUZZ_SEED")  # set: a different, random-seeded run (attack runs); unset: the same cases
RUN: dict[str, int] = {}
NASTY = ["", "0", "-1", "1" * 29, "18446744073709551616", "\u00b2", "\u0661\u0662", "\uff10", "NaN", "inf",
         "1e309", "0:0", "5:1", "0:99999999999", "0:1:2", "0:\u0661", " 0:8", "..", "%00", "%ED%A0%80", "%FF",
         "%0A", "x" * 300, "null", "[]", "true", "admin", "public", "admin-primary", "xy", "loose", "9"]
NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-0", "0", "-1", str(2**31), str(2**64), "1" * 29, "1.5",
           "true", "null", '"1"', "[]", "{}", '"\\ud800"', '"\\u0000"', json.dumps("x" * 5000)]
KEYS = ["description", "public", "x_start", "x_stop", "y_start", "y_stop", "z_start", "z_stop", "x_voxel_size",
        "y_voxel_size", "z_voxel_size", "voxel_unit", "coord_frame", "num_hierarchy_levels", "hierarchy_method",
        "num_time_samples", "time_step", "time_step_unit", "type", "datatype", "default_time_sample",
        "base_resolution", "sources", "related", "bucket", "cv_path", "group", "collection", "experiment",
        "channel", "permissions", "first_name", "email", "\u0000", "\ud800"]


@pytest.fixture(scope="module")
def target(backend):  # noqa: F811
    """The live server, worlds to aim at (consistent path values per channel), and the operations."""
    worlds = []
    for chan in (make_channel(backend, extent=(128, 128, 32)),
                 make_channel(backend, kind="annotation", datatype="uint64", extent=(128, 128, 32))):
        worlds.append({"c": chan.collection, "e": chan.experiment, "ch": chan.channel, "cf": chan.frame, "res": "0",
                       "x": "0:64", "y": "0:64", "z": "0:16", "t": "0:1", "num": "10", "obj_id": "1",
                       "g": "fuzzgrp", "u": "admin", "role": "resource-manager", "orient": "xy", "size": "64",
                       "xi": "0", "yi": "0", "zi": "0"})
    requests.post(f"{backend.url}/v1/groups/fuzzgrp", headers=backend.headers, timeout=30)
    doc = requests.get(f"{backend.url}/openapi.json", timeout=30).json()
    return backend, worlds, operations(doc)


def operations(doc: dict) -> list[tuple[str, str, list[dict], str | None]]:
    """(method, path, parameters, body media type) of every operation."""
    found = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            media = next(iter(op.get("requestBody", {}).get("content", {})), None)
            found.append((method.upper(), path, op.get("parameters", []), media))
    return found


def test_every_path_parameter_is_declared(target):
    _server, _valid, ops = target
    missing = [(m, p) for m, p, params, _ in ops
               if set(re.findall(r"{(\w+)}", p)) - {q["name"] for q in params if q["in"] == "path"}]
    assert missing == []
    assert len(ops) > 60


def nasty(draw) -> str:
    """A bad path or query value, percent-encoded unless it is a raw escape on purpose."""
    if draw(st.booleans()):
        return quote(draw(st.text(max_size=40)), safe="")
    value = draw(st.sampled_from(NASTY))
    return value if value.startswith("%") else quote(value, safe=":")


def base_body(path: str, world: dict) -> dict:
    """A valid body for the operation, which the generator then spoils in a key or two."""
    if path.startswith("/v1/coord"):
        return {"x_start": 0, "x_stop": 64, "y_start": 0, "y_stop": 64, "z_start": 0, "z_stop": 16,
                "x_voxel_size": 1.0, "y_voxel_size": 1.0, "z_voxel_size": 1.0, "voxel_unit": "nanometers"}
    if path.endswith("/channel/{ch}"):
        return {"type": "image", "datatype": "uint8"}
    if path.endswith("/experiment/{e}"):
        return {"coord_frame": world["cf"], "num_hierarchy_levels": 1, "num_time_samples": 1}
    if path.startswith("/v1/permissions"):
        return {"group": "fuzzgrp", "collection": world["c"], "permissions": ["read"]}
    return {"description": "d"} if path.startswith("/v1/collection") else {"first_name": "f"}


def json_body(draw, path: str, world: dict) -> bytes:
    kind = draw(st.sampled_from(["spoiled", "spoiled", "spoiled", "raw", "deep"]))
    if kind == "deep":
        depth = draw(st.sampled_from([17, 100, 2000, 100_000]))  # past our limit, then past Python's
        return ("[" * depth + "]" * depth).encode()
    if kind == "raw":
        return draw(st.binary(max_size=200))
    body = {k: json.dumps(v) for k, v in base_body(path, world).items()}
    for _ in range(draw(st.integers(1, 2))):
        body[draw(st.sampled_from(sorted(body) + KEYS))] = draw(st.sampled_from(NUMBERS + ['["admin"]']))
    return ("{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in body.items()) + "}").encode("utf-8", "surrogatepass")


def blosc_body(draw) -> bytes:
    """A blosc-1 header announcing some size, followed by some bytes: truncated, lying or huge."""
    nbytes = draw(st.sampled_from([0, 1, 65536, 2**31 - 1, 2**32 - 1]))
    tail = draw(st.binary(max_size=64))
    cbytes = draw(st.sampled_from([16 + len(tail), 0, 2**31]))
    return struct.pack("<BBBBIII", 2, 1, 1, draw(st.sampled_from([1, 8, 64])), nbytes, 0, cbytes % 2**32) + tail


@st.composite
def fuzz_request(draw, target):
    """One operation with consistent valid values except one spoiled path segment, query value or body key;
    a creating POST names a new object so that its body is what gets checked."""
    server, worlds, ops = target
    method, path, params, media = draw(st.sampled_from(ops))
    world = dict(draw(st.sampled_from(worlds)))
    names = re.findall(r"{(\w+)}", path)
    if method in ("POST", "DELETE") and names:
        world[names[-1]] = f"fz{draw(st.integers(0, 10**9))}"  # a new object; never delete the world
    spoil = draw(st.sampled_from(names + ["query", "body", "body"]))
    url = re.sub(r"{(\w+)}", lambda m: nasty(draw) if m.group(1) == spoil else quote(world.get(m.group(1), "x"),
                                                                                        safe=":"), path)
    query = [f"{p['name']}={nasty(draw) if spoil == 'query' else 'true'}" for p in params
             if p["in"] == "query" and draw(st.booleans())]
    headers = {"Authorization": draw(st.sampled_from([f"Token {server.token}"] * 12 + ["Token public", "Token x",
                                                                                        "Bearer", ""]))}
    body = None
    if media == "application/json":
        body, headers["Content-Type"] = json_body(draw, path, world), "application/json"
    elif media == "application/blosc":
        body, headers["Content-Type"] = blosc_body(draw), "application/blosc"
    return method, url + ("?" + "&".join(query) if query else ""), headers, body


def check_answer(method: str, url: str, r: requests.Response) -> None:
    assert r.status_code < 500, (method, url, r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text, (method, url, r.text[:300])
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert set(body) in ({"status", "code", "message"}, {"detail"}), (method, url, body)


def test_no_route_answers_500_to_generated_bad_input(target, request):
    server = target[0]
    RUN[request.node.name] = 0

    @seed(int(SEED or 0))
    @settings(max_examples=CASES, deadline=None, derandomize=SEED is None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=fuzz_request(target))
    def one(case):
        method, url, headers, body = case
        r = requests.request(method, server.url + url, data=body, headers=headers, timeout=60)
        RUN[request.node.name] += 1
        check_answer(method, url, r)

    one()
    print(f"\nfuzz: {RUN[request.node.name]} requests, 0 answers of 500")
    assert RUN[request.node.name] >= CASES
    assert requests.get(f"{server.url}/v1/collection", headers=server.headers, timeout=30).status_code == 200
