"""Ground truth for the volume store tests: plain-numpy references and a look at what was stored."""
from __future__ import annotations

import json
import os
from collections import Counter
from urllib.parse import urlparse

import boto3
import numpy as np

from ndex.geometry import Box
from ndex.server.layout import ChannelLayout


def layout(key="ch1", dtype="uint8", extent=(600, 540, 40), time_samples=1, levels=1, z_scaled=(),
           **kw) -> ChannelLayout:
    return ChannelLayout(key=key, dtype=dtype, extent=extent, time_samples=time_samples, levels=levels,
                         z_scaled=tuple(z_scaled), **kw)


def random_labels(rng, shape, dtype, high=None, zero_fraction=0.3) -> np.ndarray:
    high = high or (np.iinfo(dtype).max if np.dtype(dtype).itemsize < 8 else 2**62)
    data = rng.integers(1, high, size=shape, dtype=dtype, endpoint=True)
    data[rng.random(shape) < zero_fraction] = 0
    return data


def box(x, y, z) -> Box:
    return Box.from_ranges(x, y, z)


# --- reference downsampling: one python loop per output voxel, obviously right, slow ------------------


def reference_reduce(block: np.ndarray, factors, annotation: bool) -> np.ndarray:
    fx, fy, fz = factors
    nz, ny, nx = block.shape
    out = np.zeros((-(-nz // fz), -(-ny // fy), -(-nx // fx)), dtype=block.dtype)
    for z, y, x in np.ndindex(out.shape):
        window = block[z * fz:(z + 1) * fz, y * fy:(y + 1) * fy, x * fx:(x + 1) * fx].ravel()
        out[z, y, x] = reference_mode(window) if annotation else reference_mean(window)
    return out


def reference_mean(window: np.ndarray) -> int:
    total = sum(int(v) for v in window)  # python ints: no overflow
    return (2 * total + len(window)) // (2 * len(window))  # round half up


def reference_mode(window: np.ndarray) -> int:
    counts = Counter(int(v) for v in window if v != 0)
    if not counts:
        return 0
    best = max(counts.values())
    return min(v for v, n in counts.items() if n == best)


# --- what is in the store, seen without ndex -------------------------------------------------------------


def stored_keys(store_url: str) -> list[str]:
    parsed = urlparse(store_url)
    if parsed.scheme == "s3":
        client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name="us-east-1")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc)
        prefix = parsed.path.lstrip("/") + "/"
        return sorted(o["Key"][len(prefix):] for p in pages for o in p.get("Contents", []))
    keys = []
    for root, _, files in os.walk(store_url):
        keys += [os.path.relpath(os.path.join(root, f), store_url) for f in files]
    return sorted(keys)


def read_json(store_url: str, key: str) -> dict:
    parsed = urlparse(store_url)
    if parsed.scheme == "s3":
        client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name="us-east-1")
        body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/") + "/" + key)["Body"]
        return json.loads(body.read())
    with open(os.path.join(store_url, key)) as f:
        return json.load(f)


def kvstore_spec(store_url: str, path: str) -> dict:
    """A tensorstore kvstore spec written from scratch (not by ndex) for opening the arrays fresh."""
    parsed = urlparse(store_url)
    if parsed.scheme == "s3":
        return {"driver": "s3", "bucket": parsed.netloc, "path": parsed.path.lstrip("/") + "/" + path,
                "endpoint": os.environ["AWS_ENDPOINT_URL_S3"], "aws_region": "us-east-1",
                "context": {"aws_credentials": {"type": "environment"}}}
    return {"driver": "file", "path": os.path.join(store_url, path)}
