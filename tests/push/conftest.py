"""Fixtures of the push tests (helpers live in push_helpers.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ has no __init__.py: put it (shared fixtures) and this directory (fake_boss, push_helpers) on sys.path
HERE = Path(__file__).resolve().parent
for path in (str(HERE.parent), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fake_boss import FakeBoss  # noqa: E402


@pytest.fixture
def boss() -> FakeBoss:
    return FakeBoss()


from fixtures_render import render_server  # noqa: E402,F401 - shared fixtures
from fixtures_server import make_channel, ndex_server, server_app  # noqa: E402,F401
from fixtures_slack import slack_server  # noqa: E402,F401


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto S3 server on 127.0.0.1 (free port) for the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch, moto_endpoint, tmp_path) -> str:
    """Dummy credentials and the moto endpoint in the environment; nothing read from ~/.aws."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_endpoint,
                        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials")}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint
