"""Data of one channel never appears in another: store keys are never handed out twice, and a cutout
write racing a DELETE of its channel either lands before the delete (and goes with it) or fails."""
from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import ServerHandle, app_server, make_channel, start_uvicorn
from sqlalchemy import select

from ndex.server.app import create_app
from ndex.server.db import Database
from ndex.server.schema import channels
from ndex.server.settings import ServerSettings
from ndex.server.users import issue_token

CUBOID = "0/0:512/0:512/0:16"
ROUNDS, WRITERS = 25, 4


def body(value: int, shape=(16, 512, 512)) -> bytes:
    return blosc.compress(np.full(shape, value, np.uint8).tobytes(), typesize=1)


def chan_url(server: ServerHandle, coll: str, exp: str, ch: str) -> str:
    return f"{server.url}/v1/collection/{coll}/experiment/{exp}/channel/{ch}"


def create(server: ServerHandle, coll: str, exp: str, ch: str, headers=None) -> None:
    r = requests.post(chan_url(server, coll, exp, ch), json={"type": "image", "datatype": "uint8"},
                      headers=headers or server.headers, timeout=30)
    assert r.status_code == 201, r.text


def delete(server: ServerHandle, coll: str, exp: str, ch: str) -> None:
    r = requests.delete(chan_url(server, coll, exp, ch), headers=server.headers, timeout=30)
    assert r.status_code == 204, r.text


def read(server: ServerHandle, path: str, headers=None) -> np.ndarray:
    r = requests.get(f"{server.url}/v1/cutout/{path}/{CUBOID}/", headers=headers or server.headers, timeout=60)
    assert r.status_code == 200, r.text
    return np.frombuffer(blosc.decompress(r.content), np.uint8)


def write(server: ServerHandle, path: str, data: bytes, session=requests) -> requests.Response:
    return session.post(f"{server.url}/v1/cutout/{path}/{CUBOID}/", data=data, timeout=60,
                        headers={**server.headers, "Content-Type": "application/blosc"})


def live_keys(server: ServerHandle) -> set[str]:
    db = Database(server.database_url)
    try:
        with db.begin() as conn:
            keys = {r[0] for r in conn.execute(select(channels.c.store_key))}
    finally:
        db.close()
    return keys | {k + "-iso" for k in keys}


def test_a_channel_made_after_a_delete_reads_zeros_whoever_makes_it_wherever(each_db_server):
    server = each_db_server
    tc = make_channel(server, extent=(512, 512, 16))
    assert write(server, tc.path, body(7)).status_code == 201
    delete(server, tc.collection, tc.experiment, tc.channel)
    create(server, tc.collection, tc.experiment, tc.channel)  # same name, same place: a new channel
    assert not read(server, tc.path).any()
    elsewhere = make_channel(server, extent=(512, 512, 16))    # anywhere else
    assert not read(server, elsewhere.path).any()


def test_a_new_database_beside_an_old_store_reads_zeros(tmp_path):
    """Ids restart in a new database; store keys do not, so an old store's arrays stay unreachable."""
    store = tmp_path / "store"
    for data, value in ((tmp_path / "a", 9), (tmp_path / "b", 0)):
        app = create_app(ServerSettings(data_dir=str(data), store_url=str(store), cache_seconds=0))
        with app.state.services.db.begin() as conn:
            server = ServerHandle("", issue_token(conn, "admin", "admin"), data)
        url, stop = start_uvicorn(app)
        try:
            server = ServerHandle(url, server.token, data)
            tc = make_channel(server, extent=(512, 512, 16))
            if value:
                assert write(server, tc.path, body(value)).status_code == 201
            assert (read(server, tc.path) == value).all()
        finally:
            stop()


@pytest.mark.parametrize("shape", [(16, 512, 512), (16, 100, 100)], ids=["whole-cuboid", "merge"])
def test_writes_racing_a_delete_never_reach_a_later_channel(each_db_server, shape):
    """Rounds of: writer threads hammer a channel, it is deleted under them, a channel of the same name is
    made again: the new one must read zeros, every write is 201 or 404, and no array outlives its channel."""
    server = each_db_server
    tc = make_channel(server, extent=(512, 512, 16))
    coll, exp, name = tc.collection, tc.experiment, "race"
    path = f"{coll}/{exp}/{name}"
    y, x = shape[1], shape[2]
    url_box = f"0/0:{x}/0:{y}/0:16"
    seen: Counter = Counter()
    rng = random.Random(1)
    for _ in range(ROUNDS):
        create(server, coll, exp, name)
        landed = threading.Event()

        def writer(value: int, landed: threading.Event) -> None:
            with requests.Session() as session:
                while True:
                    r = session.post(f"{server.url}/v1/cutout/{path}/{url_box}/", data=body(value, shape),
                                     headers={**server.headers, "Content-Type": "application/blosc"},
                                     timeout=60)
                    gone = "deleted while this write ran" in r.text
                    seen[(r.status_code, gone)] += 1
                    if r.status_code != 201:
                        return
                    landed.set()

        threads = [threading.Thread(target=writer, args=(v + 1, landed)) for v in range(WRITERS)]
        for t in threads:
            t.start()
        assert landed.wait(30)
        threading.Event().wait(rng.uniform(0, 0.05))  # delete at a different point of the writes each round
        delete(server, coll, exp, name)
        for t in threads:
            t.join(60)
        create(server, coll, exp, name)
        assert not read(server, path).any(), f"data of a deleted channel reached a new one ({seen})"
        delete(server, coll, exp, name)
    assert set(seen) <= {(201, False), (404, False), (404, True)}, seen
    assert seen[(201, False)] >= ROUNDS
    store = server.data_dir / "store"
    orphans = {p.name for p in store.iterdir() if p.is_dir()} - live_keys(server)
    assert not orphans


def test_a_pyramid_build_in_one_server_leaves_nothing_of_a_channel_another_server_deleted(tmp_path, postgres_server):
    """Two servers on one PostgreSQL database and one store (the multi-process set-up): B deletes a channel
    while A builds its pyramid. A's build stops at its next check of the database; what it wrote after B
    cleared the store must not stay behind under the dead key."""
    url = postgres_server.create_database("twoservers")
    with app_server(tmp_path, url) as a, app_server(tmp_path, url) as b:
        tc = make_channel(a, extent=(2048, 2048, 64), levels=5)
        data = np.random.default_rng(5).integers(1, 255, (16, 512, 512), dtype=np.uint8)
        with requests.Session() as session:
            for z, y, x in itertools.product(range(0, 64, 16), range(0, 2048, 512), range(0, 2048, 512)):
                r = session.post(f"{a.url}/v1/cutout/{tc.path}/0/{x}:{x + 512}/{y}:{y + 512}/{z}:{z + 16}/",
                                 data=blosc.compress(data.tobytes(), typesize=1), headers=a.headers, timeout=60)
                assert r.status_code == 201
        assert requests.post(f"{a.url}/v1/downsample/{tc.path}/", headers=a.headers, timeout=30).status_code == 201
        deadline = time.monotonic() + 60
        while "progress" not in requests.get(f"{a.url}/v1/downsample/{tc.path}/", headers=a.headers,
                                             timeout=30).json() and time.monotonic() < deadline:
            time.sleep(0.05)
        delete(b, tc.collection, tc.experiment, tc.channel)
        jobs = a.app.state.services.jobs
        while jobs.jobs and time.monotonic() < deadline + 60:
            time.sleep(0.1)
        assert not jobs.jobs
        assert sorted(p.name for p in (tmp_path / "store").iterdir() if p.is_dir()) == []
