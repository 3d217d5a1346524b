"""Chunk locks on PostgreSQL: a held chunk is an advisory lock every process sees, a second holder of
the same chunk waits for it, other chunks do not, and leaving the block releases it."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import sqlalchemy

from ndex.server.chunklocks import ChunkLocks, chunk_hash, locks_for

CHUNK = ("store-key", 0, 0, (1, 2, 3))


def advisory_locks(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()


def test_a_held_chunk_is_a_postgresql_advisory_lock_until_released(fresh_postgres_url):
    engine = sqlalchemy.create_engine(fresh_postgres_url)
    locks = locks_for(engine)
    try:
        assert isinstance(locks, ChunkLocks) and locks.shared is not None
        with locks.hold([CHUNK, ("store-key", 0, 0, (2, 2, 3))]):
            assert advisory_locks(engine) == 2
        assert advisory_locks(engine) == 0
    finally:
        locks.close()
        engine.dispose()


def test_a_second_process_waits_for_the_same_chunk_but_not_for_another(fresh_postgres_url):
    engine = sqlalchemy.create_engine(fresh_postgres_url)
    first, second = locks_for(engine), locks_for(engine)  # two pools: as two server processes
    held, release, entered = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with first.hold([CHUNK]):
            held.set()
            release.wait(30)

    def waiter():
        with second.hold([CHUNK]):
            entered.set()

    holding = threading.Thread(target=holder)
    try:
        holding.start()
        assert held.wait(30)
        with second.hold([("store-key", 0, 0, (9, 9, 9))]):
            pass  # another chunk: no wait
        thread = threading.Thread(target=waiter)
        thread.start()
        assert not entered.wait(0.5)  # blocked behind the first holder
        release.set()
        assert entered.wait(30)
        thread.join(30)
    finally:
        release.set()
        holding.join(30)  # its connection is back in the pool before the pool is closed
        first.close()
        second.close()
        engine.dispose()


def test_the_chunk_key_is_the_same_in_every_process():
    # Python's hash() of a str differs per process (PYTHONHASHSEED); the lock key must not
    code = "from ndex.server.chunklocks import chunk_hash; print(chunk_hash(('store-key', 0, 0, (1, 2, 3))))"
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert keys == {str(chunk_hash(CHUNK))}
    assert chunk_hash(CHUNK) != chunk_hash(("store-key", 0, 1, (1, 2, 3)))
