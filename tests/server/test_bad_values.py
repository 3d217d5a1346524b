"""Every value the database or the store cannot hold is a 400 with BOSS's envelope and nothing is saved,
on SQLite and on PostgreSQL: non-finite numbers, lone surrogates, NUL, over-long text, non-ASCII digits,
out-of-range integers, lists where names belong, deep nesting, and names created by racing threads."""
from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import requests
from fixtures_backends import backend  # noqa: F401 - the fixture
from fixtures_server import make_channel

from ndex.server import fields
from ndex.server.values import INT32_MAX, MAX_EXTENT, MAX_ID

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"]
FRAME = {"x_start": 0, "x_stop": 64, "y_start": 0, "y_stop": 64, "z_start": 0, "z_stop": 16,
         "x_voxel_size": 1.0, "y_voxel_size": 1.0, "z_voxel_size": 1.0, "voxel_unit": "nanometers"}


def tag() -> str:
    return uuid.uuid4().hex[:10]


def send(server, method: str, path: str, raw: bytes | str | None = None, **kw) -> requests.Response:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    r = requests.request(method, server.url + path, data=data, timeout=60,
                         headers={**server.headers, "Content-Type": "application/json"}, **kw)
    assert r.status_code < 500, (path, r.status_code, r.text)
    assert "Traceback" not in r.text
    return r


def refused(r: requests.Response, status: int = 400) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and isinstance(body["code"], int) and body["message"]
    return body["message"]


def with_raw(body: dict, key: str, literal: str) -> str:
    """The JSON text of `body` with `key` set to a raw JSON literal (NaN, 1e309, ... that json.dumps refuses)."""
    return json.dumps({**body, key: "@@"}).replace('"@@"', literal)


def experiment_body(frame: str) -> dict:
    return {"coord_frame": frame, "num_hierarchy_levels": 1, "num_time_samples": 1, "time_step": 0}


@pytest.fixture(scope="module")
def world(backend):  # noqa: F811
    """An existing frame, collection, experiment and channel to PUT to and create under."""
    return make_channel(backend, extent=(64, 64, 16))


# --- numbers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize("key", [k for k, v in FRAME.items() if not isinstance(v, str)])
def test_non_finite_numbers_in_a_frame_are_refused_and_not_saved(backend, key, literal):  # noqa: F811
    name = f"cf-{tag()}"
    refused(send(backend, "POST", f"/v1/coord/{name}", with_raw(FRAME, key, literal)))
    refused(send(backend, "GET", f"/v1/coord/{name}"), 404)


@pytest.mark.parametrize("literal", NON_FINITE + [str(2**31), str(10**28), "-99999999999"])
@pytest.mark.parametrize("key", ["num_hierarchy_levels", "num_time_samples", "time_step"])
def test_bad_experiment_numbers_are_refused_on_create_and_update(backend, world, key, literal):  # noqa: F811
    name = f"exp-{tag()}"
    base = f"/v1/collection/{world.collection}/experiment"
    refused(send(backend, "POST", f"{base}/{name}", with_raw(experiment_body(world.frame), key, literal)))
    refused(send(backend, "GET", f"{base}/{name}"), 404)
    before = send(backend, "GET", f"{base}/{world.experiment}").json()
    refused(send(backend, "PUT", f"{base}/{world.experiment}", with_raw({}, key, literal)))
    assert send(backend, "GET", f"{base}/{world.experiment}").json() == before


@pytest.mark.parametrize("literal", NON_FINITE + [str(10**28)])
@pytest.mark.parametrize("key", ["default_time_sample", "base_resolution"])
def test_bad_channel_numbers_are_refused(backend, world, key, literal):  # noqa: F811
    base = f"/v1/collection/{world.collection}/experiment/{world.experiment}/channel"
    name = f"ch-{tag()}"
    refused(send(backend, "POST", f"{base}/{name}", with_raw({"type": "image", "datatype": "uint8"}, key, literal)))
    refused(send(backend, "GET", f"{base}/{name}"), 404)


@pytest.mark.parametrize(("key", "value"), [("num_hierarchy_levels", fields.MAX_LEVELS + 1),
                                            ("num_time_samples", fields.MAX_TIME_SAMPLES + 1)])
def test_documented_upper_bounds_hold(backend, world, key, value):  # noqa: F811
    body = {**experiment_body(world.frame), key: value}
    message = refused(send(backend, "POST", f"/v1/collection/{world.collection}/experiment/e{tag()}", json.dumps(body)))
    assert key in message
    ok = {**body, key: value - 1}
    assert send(backend, "POST", f"/v1/collection/{world.collection}/experiment/e{tag()}", json.dumps(ok)).status_code == 201


@pytest.mark.parametrize(("key", "edge"), [("z_stop", MAX_EXTENT), ("x_start", -MAX_EXTENT)])
def test_frame_extents_are_bounded_by_the_documented_maximum(backend, key, edge):  # noqa: F811
    name = f"cf-{tag()}"
    past = edge + (1 if edge > 0 else -1)
    message = refused(send(backend, "POST", f"/v1/coord/{name}", json.dumps({**FRAME, key: past})))
    assert key in message and str(MAX_EXTENT) in message
    refused(send(backend, "GET", f"/v1/coord/{name}"), 404)
    r = send(backend, "POST", f"/v1/coord/{name}", json.dumps({**FRAME, key: edge}))  # past 32 bits: BIGINT
    assert r.status_code == 201 and r.json()[key] == edge, r.text
    assert send(backend, "GET", f"/v1/coord/{name}").json()[key] == edge


def test_the_limits_in_security_md_are_the_codes():
    text = (Path(__file__).resolve().parents[2] / "SECURITY.md").read_text()
    for value in (fields.MAX_LEVELS, f"{fields.MAX_TIME_SAMPLES:,}", f"{INT32_MAX:,}", f"{MAX_EXTENT:,}",
                  f"{MAX_ID:,}"):
        assert str(value) in text


# --- strings ------------------------------------------------------------------------------------------

BAD_TEXT = {"lone surrogate": '"a\\ud800b"', "NUL": '"a\\u0000b"', "over-long": json.dumps("d" * 70000)}


@pytest.mark.parametrize("case", BAD_TEXT)
def test_bad_strings_in_bodies_are_refused_and_not_saved(backend, world, case):  # noqa: F811
    name = f"col-{tag()}"
    refused(send(backend, "POST", f"/v1/collection/{name}", with_raw({}, "description", BAD_TEXT[case])))
    refused(send(backend, "GET", f"/v1/collection/{name}"), 404)
    refused(send(backend, "PUT", f"/v1/collection/{world.collection}", with_raw({}, "description", BAD_TEXT[case])))
    refused(send(backend, "POST", f"/v1/sso/user/u{tag()}", with_raw({}, "first_name", BAD_TEXT[case])))


def test_over_long_short_fields_are_refused_on_both_databases(backend, world):  # noqa: F811
    user = f"u{tag()}"
    refused(send(backend, "POST", f"/v1/sso/user/{user}", json.dumps({"email": "e" * 300})))
    refused(send(backend, "GET", f"/v1/sso/user/{user}"), 404)
    base = f"/v1/collection/{world.collection}/experiment/{world.experiment}/channel"
    refused(send(backend, "POST", f"{base}/c{tag()}", json.dumps({"type": "image", "datatype": "uint8",
                                                                 "sources": ["x" * 300]})))


@pytest.mark.parametrize("target", ["%00", "%ED%A0%80", "%FF", "x%0Ay", "n" * 1100])
def test_bad_names_in_paths_are_refused(backend, target):  # noqa: F811
    refused(send(backend, "POST", f"/v1/collection/{target}", "{}"))
    refused(send(backend, "GET", f"/v1/collection/{target}"), 400)
    refused(send(backend, "POST", f"/v1/groups/{target}"), 400)


@pytest.mark.parametrize("query", ["key=a%00b&value=v", "key=k&value=a%00", "key=%ED%A0%80&value=v",
                                   "key=" + "k" * 300 + "&value=v"])
def test_bad_metadata_is_refused_and_not_saved(backend, world, query):  # noqa: F811
    path = f"/v1/meta/{world.collection}"
    refused(send(backend, "POST", f"{path}?{query}"))
    assert send(backend, "GET", path).json()["keys"] == []


def test_an_over_long_metadata_value_is_refused_by_the_http_layer_already(backend, world):  # noqa: F811
    path = f"/v1/meta/{world.collection}"
    assert send(backend, "POST", f"{path}?key=k&value={'v' * 70000}").status_code == 400
    assert send(backend, "GET", path).json()["keys"] == []


# --- integers in paths and bodies ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def labels(backend):  # noqa: F811
    return make_channel(backend, kind="annotation", datatype="uint64", extent=(64, 64, 16))


@pytest.mark.parametrize("number", ["\u00b2", "\u0661\u0662", "\uff11", "1" * 29, "-1", "0x10", "1_0", " 1"])
def test_integers_in_paths_are_ascii_digits_in_range(backend, labels, number):  # noqa: F811
    path = labels.path
    refused(send(backend, "GET", f"/v1/reserve/{path}/{number}"))
    refused(send(backend, "GET", f"/v1/boundingbox/{path}/0/{number}"), 400)
    refused(send(backend, "GET", f"/v1/cutout/{path}/0/0:{number}/0:8/0:1"), 400)
    refused(send(backend, "GET", f"/v1/tile/{path}/xy/{number}/0/0/0/0"), 400)
    refused(send(backend, "GET", f"/v1/image/{path}/xy/0/0:8/0:8/{number}"), 400)


def test_reserving_runs_past_32_bits_up_to_the_id_column(backend, labels):  # noqa: F811
    def reserve(count: int) -> int:
        r = send(backend, "GET", f"/v1/reserve/{labels.path}/{count}")
        assert r.status_code == 200, r.text
        return r.json()["start_id"]

    refused(send(backend, "GET", f"/v1/reserve/{labels.path}/{MAX_ID + 1}"))
    first = reserve(2**31)
    after = reserve(5)
    assert after == first + 2**31 > INT32_MAX  # exact: no wrap, and SQLite's counter did not become a float
    last = reserve(MAX_ID - after - 5)  # every id the 64-bit counter still holds
    assert last == after + 5
    refused(send(backend, "GET", f"/v1/reserve/{labels.path}/1"))  # the counter sits at MAX_ID: nothing saved
    assert "reserve fewer" in refused(send(backend, "GET", f"/v1/reserve/{labels.path}/100"))


@pytest.mark.parametrize("key", ["group", "collection", "experiment", "channel"])
def test_names_given_as_lists_or_numbers_are_refused(backend, world, key):  # noqa: F811
    body = {"group": "admin", "collection": world.collection, "experiment": world.experiment,
            "channel": world.channel, "permissions": ["read"]}
    for bad in (["admin"], {"a": 1}, 10**28):
        refused(send(backend, "POST", "/v1/permissions", json.dumps({**body, key: bad})))


# --- JSON structure -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [17, 1000, 100_000])
def test_deeply_nested_bodies_are_refused(backend, depth):  # noqa: F811
    name = f"col-{tag()}"
    raw = '{"description": ' + "[" * depth + "]" * depth + "}"
    assert "nested" in refused(send(backend, "POST", f"/v1/collection/{name}", raw))
    refused(send(backend, "POST", "/v1/permissions", "[" * depth + "]" * depth))
    refused(send(backend, "GET", f"/v1/collection/{name}"), 404)


# --- races --------------------------------------------------------------------------------------------


def race(server, method: str, paths_and_bodies: list[tuple[str, dict]]) -> list[requests.Response]:
    """Send every request at once from its own thread (a barrier lines them up)."""
    barrier = threading.Barrier(len(paths_and_bodies))
    answers: list[requests.Response | BaseException] = [None] * len(paths_and_bodies)

    def one(i: int, path: str, body: dict) -> None:
        barrier.wait()
        try:
            answers[i] = requests.request(method, server.url + path, json=body, headers=server.headers, timeout=120)
        except BaseException as exc:  # noqa: BLE001 - reported below
            answers[i] = exc

    threads = [threading.Thread(target=one, args=(i, p, b)) for i, (p, b) in enumerate(paths_and_bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(a, requests.Response) for a in answers), answers
    return answers


def assert_one_winner(answers: list[requests.Response]) -> None:
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [400] * (len(answers) - 1), [(a.status_code, a.text) for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 400} == {1003}


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_creates_of_one_name_give_one_201_and_400s(backend, world, round_):  # noqa: F811
    n, name = 6, f"race-{tag()}"
    assert_one_winner(race(backend, "POST", [(f"/v1/collection/{name}", {"description": str(i)}) for i in range(n)]))
    assert_one_winner(race(backend, "POST", [(f"/v1/coord/{name}", FRAME)] * n))
    exp = f"/v1/collection/{world.collection}/experiment/{name}"
    assert_one_winner(race(backend, "POST", [(exp, experiment_body(world.frame))] * n))
    chan = f"/v1/collection/{world.collection}/experiment/{world.experiment}/channel/{name}"
    assert_one_winner(race(backend, "POST", [(chan, {"type": "image", "datatype": "uint8"})] * n))
    assert send(backend, "GET", f"/v1/collection/{name}").status_code == 200
