"""SELECTs per resource request: a path is looked up once, its parents are passed down, never read again."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from ndex.server.auth import Authorizer, Identity
from ndex.server.catalog import Catalog
from ndex.server.db import Database
from ndex.server.users import ensure_builtin_groups

ADMIN = Identity(None, "admin", frozenset({"admin"}), frozenset())  # admin: no permission queries
FRAME = {"x_start": 0, "x_stop": 64, "y_start": 0, "y_stop": 64, "z_start": 0, "z_stop": 16,
         "x_voxel_size": 1, "y_voxel_size": 1, "z_voxel_size": 1, "voxel_unit": "nanometers"}


@pytest.fixture
def catalog(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'ndex.sqlite'}")
    with db.begin() as conn:
        ensure_builtin_groups(conn)
    cat = Catalog(db, Authorizer(db, 0), cache_seconds=0)
    cat.create_frame(ADMIN, "cf", FRAME)
    cat.create_collection(ADMIN, "col", {})
    cat.create_experiment(ADMIN, "col", "exp", {"coord_frame": "cf"})
    cat.create_channel(ADMIN, "col", "exp", "img", {"type": "image", "datatype": "uint8"})
    yield cat
    db.close()


def selects(catalog: Catalog, call) -> int:
    seen = []

    def count(_conn, _cursor, statement, *_rest) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(catalog.db.engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(catalog.db.engine, "before_cursor_execute", count)
    return len(seen)


@pytest.mark.parametrize(("what", "call", "expected"), [
    # one SELECT per path level, then what the JSON itself needs
    ("collection GET", lambda c: c.get(ADMIN, "col"), 1 + 1),  # + experiment names
    ("experiment GET", lambda c: c.get(ADMIN, "col", "exp"), 2 + 2),  # + channel names, frame name
    ("channel GET", lambda c: c.get(ADMIN, "col", "exp", "img"), 3 + 1),  # + sources/related
    ("channel PUT", lambda c: c.update(ADMIN, "col", "exp", "img", {"description": "d"}), 3 + 2),  # + re-read, links
    ("channel list", lambda c: c.list_channels(ADMIN, "col", "exp"), 2 + 1),
    ("channel info", lambda c: c.channel_info("col", "exp", "img"), 3 + 1),  # + frame
])
def test_a_request_selects_each_row_once(catalog, what, call, expected):
    assert selects(catalog, lambda: call(catalog)) == expected, what
