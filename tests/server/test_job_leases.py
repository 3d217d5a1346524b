"""Downsample jobs across server processes: a lease decides which process runs a job; exactly one
claimant wins it; a job whose process died is resumed by another once the lease expires (also after
a restart on SQLite); a `kill -9`ed server's job is finished by the other instance."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import requests
from cluster import Cluster
from fixtures_server import ServerHandle, make_channel, serve_in_process
from sqlalchemy import insert, select, update

from ndex import codecs
from ndex.server.db import Database
from ndex.server.leases import JobLeases
from ndex.server.schema import channels, downsample_leases


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ndex.sqlite'}"
    return request.getfixturevalue("fresh_postgres_url")


def test_exactly_one_of_many_claimants_wins_a_lease(db_url):
    dbs = [Database(db_url) for _ in range(8)]
    try:
        barrier = threading.Barrier(len(dbs))
        won = []

        def claim(db):
            leases = JobLeases(db, seconds=30)
            barrier.wait()
            won.append(leases.claim(7))

        threads = [threading.Thread(target=claim, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == [False] * 7 + [True]
    finally:
        for db in dbs:
            db.close()


def test_an_expired_lease_passes_to_another_process_and_the_old_holder_learns_it(db_url):
    db = Database(db_url)
    try:
        first, second = JobLeases(db, seconds=0.5), JobLeases(db, seconds=0.5)
        assert first.claim(3) and not second.claim(3)
        assert first.renew(3, done=2, total=9) and not second.claim(3)
        assert second.progress(3) == (2, 9)  # what any process reports for a job running elsewhere
        time.sleep(0.7)  # the first holder stopped renewing: it died, hung or lost the database
        assert second.claim(3)
        assert not first.renew(3, done=3, total=9)
        first.release(3)  # releasing a lease it no longer holds leaves the new holder's alone
        assert not first.claim(3)
    finally:
        db.close()


def post_constant(server: ServerHandle, path: str, extent: tuple[int, int, int], value: int) -> None:
    x, y, z = extent
    body = codecs.encode(np.full((z, y, x), value, dtype=np.uint8))
    r = requests.post(f"{server.url}/v1/cutout/{path}/0/0:{x}/0:{y}/0:{z}/", data=body, headers=server.headers,
                      timeout=120)
    assert r.status_code == 201, r.text


def wait_downsampled(server: ServerHandle, path: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = requests.get(f"{server.url}/v1/downsample/{path}/", headers=server.headers, timeout=30).json()
        if status["status"] in ("DOWNSAMPLED", "FAILED", "NOT_DOWNSAMPLED"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the downsample never finished: {status}")


def assert_pyramid_full(server: ServerHandle, path: str, levels: int, extent: tuple[int, int, int], value: int):
    for res in range(1, levels):
        x, y, z = (-(-n // 2**res) for n in extent)
        r = requests.get(f"{server.url}/v1/cutout/{path}/{res}/0:{x}/0:{y}/0:{z}/",
                         headers={**server.headers, "Accept": "application/blosc"}, timeout=60)
        assert r.status_code == 200, r.text
        assert (codecs.decode(r.content, "uint8", (z, y, x)) == value).all(), f"level {res} is not fully built"


def test_a_job_left_by_a_dead_process_is_resumed_and_finished(db_url, tmp_path):
    """The state a killed process leaves: the job IN_PROGRESS, its lease held by a process that is gone."""
    server, app, stop = serve_in_process(tmp_path / "data", db_url="" if "sqlite" in db_url else db_url,
                                         cache_seconds=0, job_lease_seconds=1.0)
    db = app.state.services.db
    try:
        extent = (1024, 1024, 32)
        chan = make_channel(server, extent=extent, levels=3)
        post_constant(server, chan.path, extent, 5)
        with db.begin() as conn:
            chan_id = conn.execute(select(channels.c.id).where(channels.c.name == "ch")
                                   .order_by(channels.c.id.desc())).scalar()
            conn.execute(update(channels).where(channels.c.id == chan_id).values(downsample_status="IN_PROGRESS"))
            conn.execute(insert(downsample_leases).values(channel_id=chan_id, owner="gone-host:1:dead",
                                                          expires=time.time() + 0.5, done=1, total=10))
        assert wait_downsampled(server, chan.path)["status"] == "DOWNSAMPLED"
        assert_pyramid_full(server, chan.path, 3, extent, 5)
        with db.begin() as conn:
            assert conn.execute(select(downsample_leases)).first() is None  # released when it finished
    finally:
        stop()


def test_a_killed_servers_job_is_finished_by_the_other_instance(tmp_path, fresh_postgres_url):
    cluster = Cluster(fresh_postgres_url, str(tmp_path / "store"), tmp_path)
    try:
        first, second = (cluster.start(1, "--job_lease_seconds", "2") for _ in range(2))
        extent = (1024, 1024, 64)
        chan = make_channel(cluster.handle(first), extent=extent, levels=4)
        post_constant(cluster.handle(first), chan.path, extent, 9)
        r = requests.post(f"{first}/v1/downsample/{chan.path}/", headers=cluster.handle().headers, timeout=30)
        assert r.status_code == 201
        os.killpg(cluster.procs[0].pid, signal.SIGKILL)  # mid-build: its lease stops being renewed
        cluster.procs[0].wait()
        assert wait_downsampled(cluster.handle(second), chan.path)["status"] == "DOWNSAMPLED"
        assert_pyramid_full(cluster.handle(second), chan.path, 4, extent, 9)
        assert "resuming it here" in cluster.log()
    finally:
        cluster.stop()


def test_a_lease_that_is_not_positive_is_refused_in_one_line(tmp_path, capsys):
    from ndex.cli.main import main

    assert main(["serve", "--data", str(tmp_path), "--job_lease_seconds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--job_lease_seconds" in err and "\n" not in err
