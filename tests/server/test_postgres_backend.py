"""ndex serve over a real PostgreSQL (started by tests/fixtures_postgres.py): the catalog, tokens and
cutouts work as they do on SQLite, read back through the official client intern."""
from __future__ import annotations

import numpy as np
import pytest
from fixtures_server import make_channel, serve_in_process
from intern.remote.boss import BossRemote


@pytest.fixture
def pg_server(tmp_path, fresh_postgres_url):
    handle, _, stop = serve_in_process(tmp_path, db_url=fresh_postgres_url, cache_seconds=0)
    try:
        yield handle
    finally:
        stop()


def test_the_catalog_lives_in_postgresql(pg_server, fresh_postgres_url):
    chan = make_channel(pg_server, datatype="uint16", extent=(600, 600, 20))
    import sqlalchemy

    engine = sqlalchemy.create_engine(fresh_postgres_url)
    try:
        with engine.connect() as conn:
            assert engine.dialect.name == "postgresql"
            names = [r[0] for r in conn.execute(sqlalchemy.text("SELECT name FROM collections"))]
    finally:
        engine.dispose()
    assert names == [chan.collection]


def test_intern_round_trip_over_postgresql(pg_server):
    chan = make_channel(pg_server, datatype="uint16", extent=(600, 600, 20))
    remote = BossRemote(pg_server.intern_config())
    resource = remote.get_channel(chan.channel, chan.collection, chan.experiment)
    data = np.random.default_rng(3).integers(1, 60000, size=(17, 70, 530), dtype=np.uint16)
    remote.create_cutout(resource, 0, [10, 540], [20, 90], [2, 19], data)
    back = remote.get_cutout(resource, 0, [10, 540], [20, 90], [2, 19])
    np.testing.assert_array_equal(back, data)
    assert chan.collection in remote.list_collections()
