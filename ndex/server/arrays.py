"""tensorstore under the volume store: store URLs, the open level arrays, chunk listings, and its errors.

Layout under the store root (a local directory or `s3://bucket/prefix`), OME-Zarr 0.5 on zarr v3:

    {key}/zarr.json      group; attributes `ome.multiscales` (axes t,z,y,x) and `ndex` (names, dtype)
    {key}/{res}/         array (t, z, y, x), chunks (1, 16, 512, 512) = one BOSS cuboid, blosc lz4

Opening never creates: `reader` answers None for a level never written. `writer` creates (or grows,
never truncates) every level array of a channel and writes its group, once per process and layout.
`wait` is the one place tensorstore's errors become ndex errors.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from typing import Any
from urllib.parse import urlparse

import numpy as np
import tensorstore as ts

from ndex.errors import NdexError, UsageError
from ndex.geometry import Box
from ndex.server.layout import ChannelLayout, array_metadata, covers, group_attributes

log = logging.getLogger(__name__)


class StoreError(NdexError, OSError):
    """The storage backend (local disk or S3) failed; the message carries tensorstore's reason."""


# --- URL -> tensorstore kvstore -------------------------------------------------------------------


def kvstore_base(url: str, fsync: bool) -> tuple[dict, dict]:
    """(kvstore spec without path, extra context) for a store URL; the spec's 'path' is the root prefix."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UsageError(f"store URL {url!r} names no bucket: use s3://BUCKET/PREFIX")
        spec = {"driver": "s3", "bucket": parsed.netloc, "path": _dir(parsed.path.lstrip("/"))}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if endpoint:
            spec["endpoint"] = endpoint
        if region:
            spec["aws_region"] = region
        # keys in the environment win; otherwise the default chain (profile files, instance metadata)
        cred = "environment" if os.environ.get("AWS_ACCESS_KEY_ID") else "default"
        return spec, {"aws_credentials": {"type": cred}}
    path = local_root(url)
    if path is not None:
        # fsync per chunk halves write throughput; a crashed process loses nothing without it
        return {"driver": "file", "path": _dir(path), "file_io_sync": fsync}, {}
    raise UsageError(f"store URL {url!r} is not supported: use a directory, file:///DIR or s3://BUCKET/PREFIX")


def local_root(url: str) -> str | None:
    """The absolute directory of a local store URL (a path or file:///DIR); None for other schemes."""
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        return None
    return os.path.abspath(parsed.path if parsed.scheme else url)


def _dir(path: str) -> str:
    return path if not path or path.endswith("/") else path + "/"


def prefix_range(prefix: str) -> ts.KvStore.KeyRange:
    """Every key starting with `prefix` (which ends in '/'; the next byte after '/' is '0')."""
    return ts.KvStore.KeyRange(prefix, prefix[:-1] + "0")


def wait(future: Any, what: str) -> Any:
    """The one place tensorstore's errors become ndex errors."""
    try:
        return future.result()
    except ValueError as exc:
        raise StoreError(f"storage failed while {what}: {exc}") from exc


def _not_found(exc: BaseException) -> bool:
    return "NOT_FOUND" in str(exc)


# --- the open arrays ---------------------------------------------------------------------------------


class LevelArrays:
    """The level arrays of every channel under one store root, opened once and cached per process."""

    def __init__(self, url: str, *, cache_bytes: int, concurrency: int | None, fsync: bool) -> None:
        base, extra = kvstore_base(url, fsync)
        self.url = url
        self.base = base
        self.context = ts.Context({
            "cache_pool": {"total_bytes_limit": int(cache_bytes)},
            "data_copy_concurrency": {"limit": concurrency or max(1, os.cpu_count() or 1)},
            **extra,
        })
        self.root = wait(ts.KvStore.open(base, context=self.context), f"opening store {url}")
        self._handles: dict[tuple[str, int], ts.TensorStore] = {}
        self._ensured: dict[str, ChannelLayout] = {}
        self._lock = threading.Lock()

    @property
    def local(self) -> bool:
        """Is the store a local directory (whose chunk files Python may read directly)?"""
        return self.base["driver"] == "file"

    def level_path(self, key: str, res: int) -> str:
        """Where a level's array lives under the store root (a key prefix; a directory for `file`)."""
        return f"{self.base['path']}{key}/{res}/"

    def reader(self, layout: ChannelLayout, res: int, box: Box,
               t_range: tuple[int, int]) -> ts.TensorStore | None:
        """The level's array, or None if it was never created; reopened once if it looks too small."""
        cache_key = (layout.key, res)
        with self._lock:
            handle = self._handles.get(cache_key)
        if handle is not None and covers(handle.shape, box, t_range):
            return handle
        handle = self._open(layout.key, res)  # another process may have created or grown it
        if handle is not None:
            with self._lock:
                self._handles[cache_key] = handle
        return handle

    def writer(self, layout: ChannelLayout, res: int) -> ts.TensorStore:
        """The level's array, every level of the channel created or grown to `layout` first."""
        with self._lock:
            if self._ensured.get(layout.key) != layout:
                self._ensure_channel(layout)
            return self._handles[(layout.key, res)]

    def chunk_rows(self, handle: ts.TensorStore, t: int, zc: int) -> set[tuple[int, int]]:
        """(y, x) chunk indices stored in chunk row (t, zc): one listing, no chunk read."""
        rows = set()
        for k in self.list_chunks(handle, f"c/{t}/{zc}/"):
            y, _, x = k.partition("/")
            rows.add((int(y), int(x)))
        return rows

    def list_chunks(self, handle: ts.TensorStore, prefix: str) -> list[str]:
        """The chunk keys of an array under `prefix` (ending in '/'), with the prefix stripped."""
        keys = wait(handle.kvstore.list(prefix_range(prefix), strip_prefix_length=len(prefix)),  # type: ignore[union-attr]  # zarr3 arrays have one
                    "listing chunks")
        return [k.decode() for k in keys]

    def delete(self, key: str) -> None:
        """Forget and delete every array and the group of channel `key`."""
        self.forget(key)
        wait(self.root.delete_range(prefix_range(f"{key}/")), f"deleting {key}")
        if self.local:  # the file driver leaves the emptied directories behind
            shutil.rmtree(os.path.join(self.base["path"], key), ignore_errors=True)

    def forget(self, key: str | None = None) -> None:
        """Drop the cached handles of channel `key` (of every channel if None)."""
        with self._lock:
            for cached in [k for k in self._handles if key is None or k[0] == key]:
                del self._handles[cached]
            for ensured in [k for k in self._ensured if key is None or k == key]:
                del self._ensured[ensured]

    def _spec(self, key: str, res: int) -> dict:
        return {"driver": "zarr3", "kvstore": {**self.base, "path": self.level_path(key, res)}}

    def _open(self, key: str, res: int) -> ts.TensorStore | None:
        try:
            return ts.open(self._spec(key, res), open=True, context=self.context).result()
        except ValueError as exc:
            if _not_found(exc):
                return None
            raise StoreError(f"storage failed while opening {key}/{res}: {exc}") from exc

    def _ensure_channel(self, layout: ChannelLayout) -> None:
        """Create (or grow) every level array and (re)write the OME group; the caller holds the lock."""
        for res in range(layout.max_res + 1):
            self._handles[(layout.key, res)] = self._ensure_array(layout, res)
        doc = {"zarr_format": 3, "node_type": "group", "attributes": group_attributes(layout)}
        wait(self.root.write(f"{layout.key}/zarr.json", json.dumps(doc, indent=2).encode()),
             f"writing the group of {layout.key}")
        self._ensured[layout.key] = layout

    def _ensure_array(self, layout: ChannelLayout, res: int) -> ts.TensorStore:
        handle = self._open(layout.key, res)
        if handle is None:
            spec = {**self._spec(layout.key, res), "metadata": array_metadata(layout, res)}
            try:
                return ts.open(spec, create=True, context=self.context).result()
            except ValueError:
                handle = self._open(layout.key, res)  # lost a creation race with another process
                if handle is None:
                    raise
        if handle.dtype.numpy_dtype != np.dtype(layout.dtype):
            raise UsageError(f"{layout.key}/{res} is stored as {handle.dtype.numpy_dtype}, not {layout.dtype}; "
                             "the channel's datatype cannot change once data is written")
        want = layout.array_shape(res)
        if any(s < w for s, w in zip(handle.shape, want)):
            grown = [max(s, w) for s, w in zip(handle.shape, want)]
            log.info("growing %s/%s from %s to %s", layout.key, res, handle.shape, grown)
            handle = wait(handle.resize(exclusive_max=grown, expand_only=True), f"growing {layout.key}/{res}")
        return handle  # type: ignore[return-value]  # mypy loses the narrowing through the try above
