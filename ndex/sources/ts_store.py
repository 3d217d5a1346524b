"""Where a zarr / N5 / precomputed volume lives, as tensorstore's key-value store, and its JSON files.

A `--source` is a local path (or file://), s3://BUCKET/KEY, gs://BUCKET/KEY or http(s)://HOST/PATH;
neuroglancer's prefixes (`zarr://`, `zarr2://`, `zarr3://`, `n5://`, `precomputed://`) are accepted and
dropped, so a layer's source can be pasted as it is. S3 takes its endpoint from the spec or
AWS_ENDPOINT_URL(_S3), and credentials from --aws_profile or the usual AWS variables, as the s3
datasource does.

Every failure is a `BadInput` naming the URL and what to check: a volume that cannot be read is the
input's fault, and every retry would read the same bytes.
"""
from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import tensorstore as ts

from ndex.errors import BadInput

PREFIXES = ("zarr2://", "zarr3://", "zarr://", "n5://", "precomputed://")
# a few retries over seconds, not tensorstore's default of 32 over minutes: an address that refuses now
# is a wrong --source far more often than a passing fault; and no chunk cache, so memory stays bounded
_RETRIES = {"max_retries": 5, "initial_delay": "100ms", "max_delay": "2s"}
CONTEXT_SPEC = {"cache_pool": {"total_bytes_limit": 0}, "http_request_retries": _RETRIES,
                "s3_request_retries": _RETRIES, "gcs_request_retries": _RETRIES}


def context() -> ts.Context:
    return ts.Context(CONTEXT_SPEC)


def strip_prefix(url: str) -> str:
    """The URL without a neuroglancer datasource prefix or a trailing slash."""
    text = url.strip()
    for prefix in PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text.rstrip("/") or text


def kvstore(url: str, s3_endpoint: str | None = None, aws_profile: str | None = None) -> dict[str, Any]:
    """tensorstore kvstore spec of the directory (or prefix) `url` names; its path ends with '/'."""
    text = strip_prefix(url)
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower() if "://" in text else ""
    if scheme in ("", "file"):
        path = parts.path if scheme else text
        return {"driver": "file", "path": os.path.abspath(path) + "/"}
    if scheme == "s3":
        spec: dict[str, Any] = {"driver": "s3", "bucket": parts.netloc, "path": _key(parts.path)}
        endpoint = s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            spec.update(endpoint=endpoint, aws_region=os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        if aws_profile:  # --aws_profile, as the s3 datasource takes it
            spec["aws_credentials"] = {"type": "profile", "profile": aws_profile}
        return spec
    if scheme in ("gs", "gcs"):
        return {"driver": "gcs", "bucket": parts.netloc, "path": _key(parts.path)}
    if scheme in ("http", "https"):
        return {"driver": "http", "base_url": f"{scheme}://{parts.netloc}", "path": parts.path.rstrip("/") + "/"}
    raise BadInput(f"--source {url}: tensorstore cannot read {scheme}:// URLs; give a local path, s3://, gs:// "
                   "or http(s)://")


def _key(path: str) -> str:
    key = path.strip("/")
    return f"{key}/" if key else ""


def child(store: dict[str, Any], name: str) -> dict[str, Any]:
    """The kvstore spec of sub-directory `name` of `store`."""
    return {**store, "path": store["path"] + name.strip("/") + "/"}


def where(store: dict[str, Any], key: str = "") -> str:
    """A human-readable URL of `key` in `store`, for messages."""
    driver = store["driver"]
    if driver == "file":
        return store["path"] + key
    if driver == "http":
        return store["base_url"] + store["path"] + key
    scheme = "s3" if driver == "s3" else "gs"
    return f"{scheme}://{store['bucket']}/{store['path']}{key}"


def read_bytes(store: dict[str, Any], key: str) -> bytes | None:
    """The bytes at `key`, None if there are none; BadInput if they cannot be read."""
    try:
        result = ts.KvStore.open(store, context=context()).result().read(key).result()
    except Exception as exc:  # tensorstore reports refused connections, 403s, bad buckets as ValueError etc.
        raise BadInput(f"cannot read {where(store, key)}: {first_line(exc)}: check --source and access") from None
    return bytes(result.value) if result.state == "value" else None


def read_json(store: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The JSON object at `key`, None if there is none; BadInput if it cannot be read or is no JSON object."""
    body = read_bytes(store, key)
    if body is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):  # every metadata file of zarr, N5 and precomputed is a JSON object
        raise BadInput(f"{where(store, key)} is not a JSON object: is --source a volume of the format --datasource "
                       "names?")
    return document


def open_array(spec: dict[str, Any], name: str) -> ts.TensorStore:
    """The array `spec` describes, opened for reading (no cache: memory stays bounded by what is read)."""
    try:
        return ts.open(spec, read=True, context=context()).result()
    except Exception as exc:
        raise BadInput(f"tensorstore cannot open {name}: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """tensorstore's message without the JSON spec it appends."""
    text = str(exc).split(" [tensorstore_spec=")[0].split(" [source locations=")[0]
    return " ".join(text.split()) or type(exc).__name__
