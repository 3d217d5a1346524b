"""Fixtures for the volume store conformance suite: every test runs on a local directory and on S3 (moto)."""
from __future__ import annotations

import itertools
import logging

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ndex.server.volumes import VolumeStore

_buckets = itertools.count()


@pytest.fixture(scope="session")
def moto_endpoint():
    """An S3 server on 127.0.0.1 (free port) for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request drowns failures
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(moto_endpoint, monkeypatch):
    """Dummy credentials and the moto endpoint, the way a deployment sets them (standard AWS variables)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": moto_endpoint,
                        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint


def new_bucket(endpoint: str) -> str:
    name = f"ndex-store-{next(_buckets)}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_env")
    return f"s3://{new_bucket(endpoint)}/volumes"


@pytest.fixture
def store(store_url):
    s = VolumeStore(store_url, cache_bytes=64 * 2**20, concurrency=2)
    yield s
    s.close()
