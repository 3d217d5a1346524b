"""The catalog under concurrent requests: on SQLite (one server, many threads) and on PostgreSQL (two
servers over one database, standing in for two hosts) the answers are the same: one create of a name
wins and the others hear "already exists", reserved id ranges never overlap, concurrent grants of one
group's permissions all succeed and leave exactly the granted set."""
from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from fixtures_server import ServerHandle, make_channel, serve_in_process

THREADS = 8
# pydantic's schema generation toggles the process-wide warning filters with catch_warnings(), which is
# not thread-safe: under pytest's "error" filter a request thread racing another can turn pydantic's own
# suppressed warning into a 500. Servers do not run with warnings as errors.
pytestmark = pytest.mark.filterwarnings("ignore::pydantic.warnings.UnsupportedFieldAttributeWarning")


@pytest.fixture(params=["sqlite", "postgresql"])
def servers(request, tmp_path):
    """Handles of the servers sharing one catalog: one on SQLite, two on PostgreSQL."""
    db_url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgresql" else ""
    started = [serve_in_process(tmp_path / "data", db_url=db_url, store_url=str(tmp_path / "store"),
                                cache_seconds=2.0) for _ in range(2 if db_url else 1)]
    try:
        yield [handle for handle, _, _ in started]
    finally:
        for _, _, stop in started:
            stop()


def concurrently(servers: list[ServerHandle], calls: int, request) -> list[requests.Response]:
    """`request(server, i)` for i in 0..calls-1, THREADS at a time, spread over the servers."""
    chosen = itertools.cycle(servers)
    jobs = [(next(chosen), i) for i in range(calls)]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda job: request(*job), jobs))


def test_one_concurrent_create_of_a_name_wins(servers):
    answers = concurrently(servers, 16, lambda s, _i: requests.post(
        f"{s.url}/v1/collection/race", json={"description": "x"}, headers=s.headers, timeout=60))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [400] * 15, [a.text for a in answers if a.status_code not in (201, 400)]
    assert all("already exists" in a.json()["message"] for a in answers if a.status_code == 400)
    listed = requests.get(f"{servers[-1].url}/v1/collection/", headers=servers[-1].headers, timeout=30).json()
    assert listed["collections"].count("race") == 1


def test_concurrent_reservations_never_overlap(servers):
    chan = make_channel(servers[0], kind="annotation", datatype="uint64", extent=(512, 512, 16))
    answers = concurrently(servers, 40, lambda s, _i: requests.get(
        f"{s.url}/v1/reserve/{chan.path}/10", headers=s.headers, timeout=60))
    assert {a.status_code for a in answers} == {200}
    starts = sorted(a.json()["start_id"] for a in answers)
    assert starts == list(range(1, 401, 10))  # 40 disjoint ranges of 10 ids, no gap, no overlap


def test_concurrent_grants_to_one_group_all_succeed(servers):
    chan = make_channel(servers[0], extent=(512, 512, 16))
    s = servers[0]
    assert requests.post(f"{s.url}/v1/groups/racers", headers=s.headers, timeout=30).status_code == 201
    perms = ["read", "add", "update", "delete"]
    answers = concurrently(servers, 16, lambda srv, i: requests.post(
        f"{srv.url}/v1/permissions/", headers=srv.headers, timeout=60,
        json={"group": "racers", "collection": chan.collection, "permissions": perms[:1 + i % 4]}))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    got = requests.get(f"{servers[-1].url}/v1/permissions/", headers=servers[-1].headers, timeout=30,
                       params={"group": "racers", "collection": chan.collection}).json()
    assert sorted(got["permission-sets"][0]["permissions"]) == sorted(perms)
