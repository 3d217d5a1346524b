"""ndex serve over several processes and hosts (two instances on two ports stand in for two hosts),
one real PostgreSQL and one store (local directory, or S3 through moto): overlapping partial writes
from several client processes lose nothing, a write through one instance reads back through the other
at once, and a worker killed with SIGKILL mid-write loses no acknowledged write and leaves every chunk
readable."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import psutil
import pytest
import requests
import sqlalchemy
from cluster import (
    EXTENT,
    Cluster,
    expected_volume,
    lost_voxels,
    new_bucket,
    read_volume,
    results_of,
    start_clients,
)

from ndex import codecs


@pytest.fixture
def cluster(tmp_path, fresh_postgres_url):
    c = Cluster(fresh_postgres_url, str(tmp_path / "store"), tmp_path)
    yield c
    c.stop()


@pytest.fixture
def s3_cluster(tmp_path, fresh_postgres_url, s3_env):
    c = Cluster(fresh_postgres_url, f"s3://{new_bucket(s3_env)}/volumes", tmp_path)
    yield c
    c.stop()


def race(cluster: Cluster, urls: list[str], clients: int, posts: int, seed: int) -> tuple[int, int]:
    """(lost voxels, acknowledged voxels) after `clients` processes post `posts` boxes each."""
    chan = cluster.channel()
    results = results_of(start_clients(urls, cluster.token, chan.path, clients, posts, seed))
    assert all(not r["failed"] for r in results), [r["failed"] for r in results]
    volume = read_volume(urls[-1], cluster.token, chan.path)
    expected = expected_volume(results)
    assert not ((expected == 0) & (volume != 0)).any(), "voxels nobody wrote are not zero"
    return lost_voxels(volume, expected), int((expected != 0).sum())


def test_four_workers_lose_no_voxel_of_overlapping_partial_posts(cluster):
    url = cluster.start(4)
    lost, acked = race(cluster, [url], clients=4, posts=8, seed=1)
    assert acked > 2_000_000
    assert lost == 0


def test_two_instances_lose_no_voxel_and_read_each_others_writes(cluster):
    first, second = cluster.start(1), cluster.start(2)
    lost, acked = race(cluster, [first, second], clients=4, posts=6, seed=2)
    assert acked > 1_000_000
    assert lost == 0


def test_two_instances_over_s3_lose_no_voxel(s3_cluster):
    urls = [s3_cluster.start(2), s3_cluster.start(1)]
    lost, acked = race(s3_cluster, urls, clients=3, posts=4, seed=3)
    assert acked > 500_000
    assert lost == 0


def test_to_black_and_partial_posts_from_several_processes_keep_each_others_changes(cluster):
    """One process clears two planes of every chunk with to_black, over and over, while three post
    boxes around them through two instances: every cleared voxel stays 0, every posted one stays."""
    urls = [cluster.start(2), cluster.start(1)]
    chan = cluster.channel()
    x, y, z = EXTENT
    full = codecs.encode(np.ones((z, y, x), dtype=np.uint8))
    headers = {"Authorization": f"Token {cluster.token}"}
    assert requests.post(f"{urls[0]}/v1/cutout/{chan.path}/0/0:{x}/0:{y}/0:{z}/", data=full, headers=headers,
                         timeout=120).status_code == 201
    results = results_of(start_clients(urls, cluster.token, chan.path, clients=3, posts=6, seed=5, black=2))
    assert all(not r["failed"] for r in results), [r["failed"] for r in results]
    volume = read_volume(urls[1], cluster.token, chan.path)
    assert int((volume != expected_volume(results, black=2, fill=1)).sum()) == 0


def test_a_write_through_one_instance_reads_back_through_the_other_at_once(cluster):
    first, second = cluster.start(1), cluster.start(1)
    chan = cluster.channel()  # created through the first
    headers = {"Authorization": f"Token {cluster.token}"}
    body = np.zeros((16, 512, 512), dtype=np.uint8)
    for value in (7, 9):  # the second round replaces data the other instance has already read (and cached)
        body[:] = value
        url = f"/v1/cutout/{chan.path}/0/0:512/0:512/0:16/"
        assert requests.post(first + url, data=codecs.encode(body), headers=headers, timeout=60).status_code == 201
        got = requests.get(second + url, headers={**headers, "Accept": "application/blosc"}, timeout=60)
        assert got.status_code == 200
        assert np.array_equal(codecs.decode(got.content, "uint8", body.shape), body)
    meta = f"/v1/collection/{chan.collection}/experiment/{chan.experiment}/channel/{chan.channel}/"
    assert requests.put(first + meta, json={"description": "changed"}, headers=headers, timeout=30).ok
    assert requests.get(second + meta, headers=headers, timeout=30).json()["description"] == "changed"


def busy_worker(cluster: Cluster) -> int:
    """A worker busy with a client's request (a connection, and CPU spent in the last 0.1 s), once one is."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = [psutil.Process(pid) for pid in cluster.workers_of(cluster.procs[0])]
        before = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
        time.sleep(0.1)
        spent = {w.pid: sum(w.cpu_times()[:2]) - before[w.pid] for w in workers
                 if any(c.status == psutil.CONN_ESTABLISHED for c in w.net_connections("tcp"))}
        if spent and max(spent.values()) > 0.03:
            return max(spent, key=spent.get)
    raise AssertionError("no worker was busy with a client within 30 s")


def test_a_worker_killed_mid_write_loses_no_acknowledged_write(cluster):
    server = cluster.start(4, "--fsync")
    chan = cluster.channel()
    clients = start_clients([server], cluster.token, chan.path, clients=4, posts=10, seed=4)
    victim = busy_worker(cluster)
    os.kill(victim, signal.SIGKILL)
    results = results_of(clients)
    cluster.stop()  # a restart: nothing of the old processes survives
    url = cluster.start(1)
    volume = read_volume(url, cluster.token, chan.path)  # decodes every stored chunk: none may be damaged
    expected = expected_volume(results)
    assert sum(len(r["acked"]) for r in results) > 0
    assert lost_voxels(volume, expected) == 0
    engine = sqlalchemy.create_engine(cluster.db_url)
    try:
        with engine.connect() as conn:  # the dead worker's chunk locks went with its connection
            held = conn.execute(sqlalchemy.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
            assert held.scalar() == 0
    finally:
        engine.dispose()
    listed = requests.get(f"{url}/v1/collection/{chan.collection}/experiment/{chan.experiment}/channel/",
                          headers={"Authorization": f"Token {cluster.token}"}, timeout=30)
    assert listed.json()["channels"] == [chan.channel]
