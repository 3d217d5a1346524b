"""`backend` (module scope, parametrized): an in-process `ndex serve` on SQLite and on a real PostgreSQL,
for tests that must hold on both databases. Import the fixture: `from fixtures_backends import backend`."""
from __future__ import annotations

import pytest
from fixtures_server import ServerHandle, start_uvicorn


def serve_app(data_dir, db_url: str = "", **settings) -> tuple[ServerHandle, callable, object]:
    """(handle with an admin token, stop, app) of a new app served by uvicorn on a loopback port."""
    from ndex.server.app import create_app
    from ndex.server.settings import ServerSettings
    from ndex.server.users import issue_token

    app = create_app(ServerSettings(data_dir=str(data_dir), db_url=db_url, cache_seconds=0, **settings))
    with app.state.services.db.begin() as conn:
        token = issue_token(conn, "admin", "admin")
    url, stop = start_uvicorn(app)
    return ServerHandle(url, token, data_dir), stop, app


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    db_url = ""
    if request.param == "postgresql":
        db_url = request.getfixturevalue("postgres_server").create_database("ndex_limits")
    handle, stop, _app = serve_app(tmp_path_factory.mktemp(f"ndex-{request.param}"), db_url)
    try:
        yield handle
    finally:
        stop()
