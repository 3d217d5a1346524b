"""Fixtures for the volume store conformance suite: every test runs on a local directory and on S3 (moto)."""
from __future__ import annotations

import itertools

import boto3
import pytest

from ndex.server.volumes import VolumeStore

_buckets = itertools.count()


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
