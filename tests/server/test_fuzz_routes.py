"""Every operation of the OpenAPI description, driven with generated bad input on a live server (SQLite
and PostgreSQL): no answer is a 500, none carries a traceback, every JSON error is BOSS's envelope.

The description must declare every path parameter first (views read most of them from the request
themselves), or a generator cannot reach the operation. NDEX_FUZZ_CASES sets the cases per database
(default 400, shared by the operations; about fifteen seconds) and NDEX_FUZZ_SEED another set of cases; the number run is printed.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import struct
import zlib
from urllib.parse import quote

import blosc
import numpy as np
import pytest
import requests
from fixtures_backends import backend  # noqa: F401 - the fixture
from fixtures_server import make_channel
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

CASES = int(os.environ.get("NDEX_FUZZ_CASES", "400"))
SEED = os.environ.get("NDEX_FUZZ_SEED")  # set: a different, random-seeded run (attack runs); unset: the same cases
RUN: dict[str, int] = {}
NASTY = ["", "0", "-1", "1" * 29, "18446744073709551616", "\u00b2", "\u0661\u0662", "\uff10", "NaN", "inf",
         "1e309", "0:0", "5:1", "0:99999999999", "0:1:2", "0:\u0661", " 0:8", "..", "%00", "%ED%A0%80", "%FF",
         "%0A", "x" * 300, "null", "[]", "true", "public", "admin-primary", "xy", "loose", "9"]
NUMBERS = ["1e309", "NaN", "Infinity", "-Infinity", "-0", "0", "-1", str(2**31), str(2**64), "1" * 29, "1.5",
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
            media = tuple(op.get("requestBody", {}).get("content", {}))
            found.append((method.upper(), path, op.get("parameters", []), media))
    return found


def test_every_path_parameter_is_declared(target):
    _server, _valid, ops = target
    missing = [(m, p) for m, p, params, _ in ops
               if set(re.findall(r"{(\w+)}", p)) - {q["name"] for q in params if q["in"] == "path"}]
    assert missing == []
    assert len(ops) > 60


def nasty(draw, rng: random.Random) -> str:
    """A bad path or query value, percent-encoded unless it is a raw escape on purpose."""
    if rng.random() < 0.3:
        return quote(draw(st.text(max_size=40)), safe="")
    value = rng.choice(NASTY)
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


def json_body(draw, rng: random.Random, path: str, world: dict) -> bytes:
    kind = rng.choice(["deep", "spoiled", "spoiled", "spoiled", "raw"])
    if kind == "deep":
        depth = rng.choice([100_000, 2000, 17])  # past Python's limit, then past ours
        return ("[" * depth + "]" * depth).encode()
    if kind == "raw":
        return draw(st.binary(max_size=200))
    body = {k: json.dumps(v) for k, v in base_body(path, world).items()}
    for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):  # one bad key, or the first one wins
        key = rng.choice(sorted(body)) if rng.random() < 0.85 else rng.choice(KEYS)
        # numbers no column holds are the commonest way in: half the spoiled values are one
        body[key] = rng.choice(NUMBERS[:4] if rng.random() < 0.5 else NUMBERS + ['["admin"]'])
    return ("{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in body.items()) + "}").encode("utf-8", "surrogatepass")


def blosc_body(draw, rng: random.Random) -> bytes:
    """A blosc-1 header announcing some size, followed by some bytes: truncated, lying or huge."""
    nbytes = rng.choice([0, 1, 65536, 2**31 - 1, 2**32 - 1])
    tail = draw(st.binary(max_size=64))
    cbytes = rng.choice([16 + len(tail), 0, 2**31])
    return struct.pack("<BBBBIII", 2, 1, 1, rng.choice([1, 8, 64]), nbytes, 0, cbytes % 2**32) + tail


@st.composite
def fuzz_request(draw, target, operation):
    """One operation with consistent valid values except one spoiled path segment, query value or body key;
    a creating POST names a new object so that its body is what gets checked. Choices come from a seeded
    uniform generator: hypothesis alone tries its simplest draws first, and a few cases per operation
    would hardly leave them."""
    server, worlds, _ops = target
    method, path, params, media = operation
    rng = random.Random(draw(st.integers(0, 2**64)))
    world = dict(rng.choice(worlds))
    names = re.findall(r"{(\w+)}", path)
    if method in ("POST", "DELETE") and names:
        world[names[-1]] = f"fz{rng.randrange(10**9)}"  # a new object; never delete the world
    spoil = "none" if rng.random() < 0.5 else rng.choice([*names, "query"])  # "none": only the body is bad
    url = re.sub(r"{(\w+)}", lambda m: nasty(draw, rng) if m.group(1) == spoil else quote(world.get(m.group(1), "x"),
                                                                                        safe=":"), path)
    query = [f"{p['name']}={nasty(draw, rng) if spoil == 'query' else 'true'}" for p in params
             if p["in"] == "query" and rng.random() < 0.5]
    headers = {"Authorization": rng.choice([f"Token {server.token}"] * 28 + ["Token public", "Token x", "Bearer", ""])}
    body = None
    kind = rng.choice(media) if media else None
    if kind == "application/json":
        body = json_body(draw, rng, path, world)
    elif kind == "application/blosc":
        body = blosc_body(draw, rng)
    elif kind is not None:  # blosc-python or npygz: their compression around garbage or a foreign array
        inner = rng.choice([draw(st.binary(max_size=300)), pickle.dumps({"a": 1}), np_bytes(rng)])
        body = blosc.compress(inner, typesize=1) if kind.endswith("python") else zlib.compress(inner)
    if kind is not None:
        headers["Content-Type"] = kind
    return method, url + ("?" + "&".join(query) if query else ""), headers, body, (method, path)


def np_bytes(rng: random.Random) -> bytes:
    """An .npy file of a wrong dtype or shape (what a confused client sends)."""
    out = io.BytesIO()
    np.save(out, np.ones(rng.choice([(1,), (4, 4), (64, 64, 16)]), dtype=rng.choice(["f8", "i4", "u1", "O"])),
            allow_pickle=True)
    return out.getvalue()


def check_answer(method: str, url: str, r: requests.Response) -> None:
    assert r.status_code < 500, (method, url, r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text, (method, url, r.text[:300])
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert set(body) in ({"status", "code", "message"}, {"detail"}), (method, url, body)


def test_no_route_answers_500_to_generated_bad_input(target, request):
    server, _worlds, ops = target
    RUN[request.node.name] = 0
    per_operation = max(2, -(-CASES // len(ops)))  # every operation gets its share; those with a body 4 shares

    def fuzz(operation) -> None:
        @seed(int(SEED or 0))
        @settings(max_examples=per_operation * (4 if operation[3] else 1), deadline=None,
                  derandomize=SEED is None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=fuzz_request(target, operation))
        def one(case):
            method, url, headers, body, _key = case
            r = requests.request(method, server.url + url, data=body, headers=headers, timeout=60)
            RUN[request.node.name] += 1
            check_answer(method, url, r)

        one()

    for operation in ops:
        fuzz(operation)
    print(f"\nfuzz: {RUN[request.node.name]} requests on {len(ops)} operations, 0 answers of 500")
    assert RUN[request.node.name] >= len(ops) * 2
    assert requests.get(f"{server.url}/v1/collection", headers=server.headers, timeout=30).status_code == 200
