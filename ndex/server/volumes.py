"""The voxel store of `ndex serve`: one zarr v3 array per channel and level, read and written by tensorstore.

Layout under the store root (a local directory or `s3://bucket/prefix`), OME-Zarr 0.5 on zarr v3:

    {key}/zarr.json      group; attributes `ome.multiscales` (axes t,z,y,x) and `ndex` (names, dtype)
    {key}/{res}/         array (t, z, y, x), chunks (1, 16, 512, 512) = one BOSS cuboid, blosc lz4

Arrays are (t, z, y, x) in numpy order; boxes are ndex.geometry.Box in (x, y, z) voxels of the level.
Nothing is created by reads: a never-written region, level or channel reads as zeros. A channel's arrays
(every level, metadata only) and its group are created on its first write, and grown, never truncated,
when the layout grows. Writes merge (non-zero voxels replace, zeros keep) while holding the locks of
the chunks they touch (ndex.server.chunklocks: threads of this process, and on PostgreSQL every process
of every host), so overlapping writes behave as if they ran one after the other.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import tensorstore as ts

from ndex import __version__, codecs, zarr_http
from ndex.errors import CorruptBody, NdexError, OutOfBounds, UsageError
from ndex.geometry import BOSS_CUBOID, Box, Triple, iter_blocks, z_slabs
from ndex.server import downsample as ds
from ndex.server.chunklocks import ChunkLocks
from ndex.server.limits import check_deadline

log = logging.getLogger(__name__)

CHUNK_ZYX = (BOSS_CUBOID[2], BOSS_CUBOID[1], BOSS_CUBOID[0])  # one stored chunk is one BOSS cuboid
# BOSS's channel datatypes; BOSS creates uint32 channels but spdb cannot serve them, ndex serves all four
STORABLE_DTYPES = ("uint8", "uint16", "uint32", "uint64")
ROW_LISTINGS = 64  # a scan this many chunk rows deep lists row by row; deeper, it lists the time sample once
LAYOUT_KEY = "ndex-store.json"  # {"layout": N}: the store's layout version (ndex.server.migrate)
_UNITS = {"nanometers": "nanometer", "micrometers": "micrometer", "millimeters": "millimeter",
          "centimeters": "centimeter"}  # BOSS voxel units -> the UDUNITS names OME-Zarr requires


class DownsampleCancelled(NdexError):
    """A downsample stopped because its `cancelled()` callback turned True; finished levels remain."""


class StoreError(NdexError, OSError):
    """The storage backend (local disk or S3) failed; the message carries tensorstore's reason."""


@dataclass(frozen=True)
class ChannelLayout:
    """Everything the store needs to know about one channel (the HTTP layer derives it from the DB)."""

    key: str
    dtype: str
    extent: tuple[int, int, int]
    time_samples: int
    levels: int
    z_scaled: tuple[bool, ...]
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    voxel_unit: str = "nanometers"
    annotation: bool = False
    names: tuple[str, str, str] = ("", "", "")

    @property
    def max_res(self) -> int:
        """Highest stored level (levels are 0..max_res)."""
        return max(self.levels - 1, len(self.z_scaled), 0)

    def halves_z(self, res: int) -> bool:
        """Does z halve going from level res-1 to res? Past the given flags the last one holds."""
        if not self.z_scaled:
            return True
        return self.z_scaled[min(res, len(self.z_scaled)) - 1]

    def factors(self, res: int) -> Triple:
        """Total (x, y, z) downsampling factor of level `res` relative to level 0."""
        fz = 2 ** sum(self.halves_z(r) for r in range(1, res + 1))
        return 2**res, 2**res, fz

    def level_shape(self, res: int) -> Triple:
        return tuple(-(-n // f) for n, f in zip(self.extent, self.factors(res)))  # type: ignore[return-value]

    def array_shape(self, res: int) -> tuple[int, int, int, int]:
        x, y, z = self.level_shape(res)
        return self.time_samples + 1, z, y, x  # BOSS lets t run to num_time_samples inclusive


# --- URL -> tensorstore kvstore -------------------------------------------------------------------


def _kvstore_base(url: str, fsync: bool) -> tuple[dict, dict]:
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


def _prefix_range(prefix: str) -> ts.KvStore.KeyRange:
    """Every key starting with `prefix` (which ends in '/'; the next byte after '/' is '0')."""
    return ts.KvStore.KeyRange(prefix, prefix[:-1] + "0")


def _wait(future, what: str):
    """The one place tensorstore's errors become ndex errors."""
    try:
        return future.result()
    except ValueError as exc:
        raise StoreError(f"storage failed while {what}: {exc}") from exc


def _not_found(exc: BaseException) -> bool:
    return "NOT_FOUND" in str(exc)


# --- metadata documents ----------------------------------------------------------------------------


def _array_metadata(layout: ChannelLayout, res: int) -> dict:
    return zarr_http.array_metadata(layout.array_shape(res), layout.dtype)  # /zarr/ serves chunks as stored


def group_attributes(layout: ChannelLayout) -> dict:
    """OME-Zarr 0.5 multiscales (+ ndex's own names) for the channel group."""
    unit = _UNITS.get(layout.voxel_unit, layout.voxel_unit.rstrip("s"))
    datasets = []
    for res in range(layout.max_res + 1):
        f = layout.factors(res)
        scale = [v * k for v, k in zip(layout.voxel_size, f)]
        # a level-r voxel averages f level-0 voxels: its centre sits (f-1)/2 voxels further on
        shift = [v * (k - 1) / 2 for v, k in zip(layout.voxel_size, f)]
        datasets.append({"path": str(res), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, scale[2], scale[1], scale[0]]},
            {"type": "translation", "translation": [0.0, shift[2], shift[1], shift[0]]}]})
    axes = [{"name": "t", "type": "time"}] + [{"name": a, "type": "space", "unit": unit} for a in "zyx"]
    collection, experiment, channel = layout.names
    return {
        "ome": {"version": "0.5", "multiscales": [{"name": channel or layout.key, "axes": axes,
                                                   "datasets": datasets}]},
        "ndex": {"collection": collection, "experiment": experiment, "channel": channel,
                 "dtype": layout.dtype, "annotation": layout.annotation,
                 "extent": list(layout.extent), "time_samples": layout.time_samples},
    }


# --- the store ---------------------------------------------------------------------------------------


class VolumeStore:
    """Channel arrays under one root URL: a directory, file:///DIR or s3://BUCKET/PREFIX.

    `locks` guards every chunk write; the default (threads of this process only) is right for one
    process, and a server on PostgreSQL passes locks that hold across processes (chunklocks.locks_for).
    """

    def __init__(self, url: str, *, cache_bytes: int = 256 * 2**20, concurrency: int | None = None,
                 fsync: bool = False, locks: ChunkLocks | None = None) -> None:
        base, extra = _kvstore_base(url, fsync)
        self.url = url
        self._base = base
        self._context = ts.Context({
            "cache_pool": {"total_bytes_limit": int(cache_bytes)},
            "data_copy_concurrency": {"limit": concurrency or max(1, os.cpu_count() or 1)},
            **extra,
        })
        self._root = _wait(ts.KvStore.open(base, context=self._context), f"opening store {url}")
        self._handles: dict[tuple[str, int], ts.TensorStore] = {}
        self._ensured: dict[str, ChannelLayout] = {}
        self._meta_lock = threading.Lock()
        self.locks = locks or ChunkLocks()

    # --- public API ------------------------------------------------------------------------------

    def level_shape(self, layout: ChannelLayout, res: int) -> Triple:
        self._check_res(layout, res)
        return layout.level_shape(res)

    def read(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> np.ndarray:
        self._check_region(layout, res, box, t_range)
        out_shape = (t_range[1] - t_range[0], *box.shape_zyx)
        handle = self._reader(layout, res, box, t_range)
        inside = self._stored_part(handle, box, t_range) if handle is not None else None
        if handle is None or inside is None:
            return np.zeros(out_shape, dtype=layout.dtype)
        part_box, part_t = inside
        data = _wait(handle[_index(part_box, part_t)].read(), f"reading {layout.key}/{res}")
        if part_box == box and part_t == t_range:
            return data
        out = np.zeros(out_shape, dtype=layout.dtype)
        out[(slice(part_t[0] - t_range[0], part_t[1] - t_range[0]), *part_box.slices_in(box))] = data
        return out

    def stored_frame(self, layout: ChannelLayout, res: int, box: Box, t: int) -> bytes | None:
        """The stored chunk of `box` as it sits in the store, when that is exactly BOSS's wire body.

        A chunk holds one cuboid as a blosc-1 frame of C-order little-endian (z, y, x) voxels (the
        `bytes` then `blosc` codecs), which is what a cutout GET of that cuboid returns: serving it
        skips a decode and an encode. None (read and encode instead) unless `box` is exactly one whole
        chunk, that chunk is stored, and its bytes are a complete blosc-1 frame of the right size.
        """
        self._check_region(layout, res, box, (t, t + 1))
        if not _one_chunk(box):
            return None
        handle = self._reader(layout, res, box, (t, t + 1))
        if handle is None or not _covers(handle, box, (t, t + 1)):
            return None
        key = _chunk_key(t, box)
        frame = self._chunk_bytes(handle, layout, res, key)
        if frame is None:
            return None
        try:
            # the header's typesize only steers blosc's shuffle (intern sends bits, not bytes): not checked
            fits = codecs.frame_nbytes(frame) == box.nvoxels * np.dtype(layout.dtype).itemsize
        except CorruptBody:
            fits = False
        return frame if fits else None  # else another codec chain (or a damaged chunk): decoding decides

    def _chunk_bytes(self, handle: ts.TensorStore, layout: ChannelLayout, res: int, key: str) -> bytes | None:
        """The stored bytes of one chunk, None if it was never written.

        In a local directory the chunk file is read with one read() call: tensorstore's kvstore read
        delivers about a third of that rate to Python (measured here, 4 threads: ~1.3 GB/s against
        ~3.5 GB/s), and a cutout GET of one cuboid is nothing but this read. The file driver replaces
        a chunk file by renaming a complete new one over it, so a plain read never sees half a chunk.
        """
        where = f"reading {layout.key}/{res}/{key}"
        if self._base["driver"] == "file":
            try:
                with open(self._level_path(layout.key, res) + key, "rb") as chunk:
                    return chunk.read()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise StoreError(f"storage failed while {where}: {exc}") from exc
        found = _wait(handle.kvstore.read(key), where)  # type: ignore[union-attr]  # zarr3 arrays have one
        return bytes(found.value) if found.state == "value" else None

    def write(self, layout: ChannelLayout, res: int, box: Box, t0: int, data: np.ndarray, *,
              frame: bytes | None = None) -> None:
        """Merge `data` ((t, z, y, x)) into `box`; `frame`, the blosc-1 frame it was decoded from, may be
        stored as the chunk itself (see `_store_frame`)."""
        self._check_data(layout, box, data)
        t_range = (t0, t0 + data.shape[0])
        self._check_region(layout, res, box, t_range)
        if not data.any():
            return  # zeros keep what is stored: nothing would change
        handle = self._writer(layout, res)
        if frame is not None and self._store_frame(handle, layout, res, box, t0, data, frame):
            return
        for t, slab in _slabs(box, t_range):
            piece = data[(t - t0, *slab.slices_in(box))]
            if piece.any():
                with self._locked(layout.key, res, t, slab):
                    self._merge(handle, t, slab, piece)

    def _store_frame(self, handle: ts.TensorStore, layout: ChannelLayout, res: int, box: Box, t0: int,
                     data: np.ndarray, frame: bytes) -> bool:
        """Store a posted frame as its chunk without re-encoding it, when that is exactly what a merge
        would store: `box` is one whole chunk of one time sample and every voxel is non-zero (so every
        voxel replaces). A chunk is a blosc-1 frame of C-order little-endian voxels (`bytes` then
        `blosc`), and blosc frames describe their own settings, so the client's frame decodes as the
        chunk. This is the common ingest POST (ndpush sends whole cuboids); False: merge as usual."""
        if data.shape[0] != 1 or not _one_chunk(box):
            return False
        if not data.all():
            return False  # zeros keep what is stored: only a merge knows it
        key = _chunk_key(t0, box)
        with self._locked(layout.key, res, t0, box):
            _wait(handle.kvstore.write(key, frame), f"writing {layout.key}/{res}/{key}")  # type: ignore[union-attr]
        return True

    def to_black(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> None:
        self._check_region(layout, res, box, t_range)
        handle = self._reader(layout, res, box, t_range)
        inside = self._stored_part(handle, box, t_range) if handle is not None else None
        if handle is None or inside is None:
            return  # nothing stored there: it already reads as zeros
        part_box, part_t = inside
        for t, slab in _slabs(part_box, part_t):
            check_deadline()
            with self._locked(layout.key, res, t, slab):
                _wait(handle[_index(slab, (t, t + 1))].write(0), f"clearing {layout.key}/{res}")

    def ids(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> np.ndarray:
        """Distinct non-zero values in the box: only stored chunks are read (empty space holds none)."""
        self._check_region(layout, res, box, t_range)
        found = np.zeros(0, dtype=np.uint64)
        handle = self._reader(layout, res, box, t_range)
        if handle is None:
            return found
        for t in range(*t_range):
            for cuboid in self._stored_cuboids(handle, layout, res, t, box):
                values = np.unique(self.read(layout, res, cuboid, (t, t + 1)))
                found = np.union1d(found, values[values != 0].astype(np.uint64))
        return found

    def bounding_box(self, layout: ChannelLayout, res: int, obj_id: int,
                     tight: bool) -> tuple[Box, tuple[int, int]] | None:
        self._check_res(layout, res)
        handle = self._reader(layout, res, Box((0, 0, 0), layout.level_shape(res)), (0, 1))
        if handle is None or not 0 < obj_id <= np.iinfo(layout.dtype).max:
            return None
        lo: tuple[int, ...] | None = None
        hi: tuple[int, ...] | None = None
        for cuboid in self._stored_cuboids(handle, layout, res, t=0):
            block = self.read(layout, res, cuboid, (0, 1))[0]
            hit = _extent_of(block == np.asarray(obj_id, dtype=block.dtype), cuboid, tight)
            if hit is not None:
                lo = hit.start if lo is None else tuple(map(min, lo, hit.start))
                hi = hit.stop if hi is None else tuple(map(max, hi, hit.stop))
        return None if lo is None or hi is None else (Box(lo, hi), (0, 1))  # type: ignore[arg-type]  # x, y, z

    def downsample(self, layout: ChannelLayout, *, base_res: int = 0,
                   progress: Callable[[int, int], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> None:
        self._check_res(layout, base_res)
        top = base_res + layout.levels - 1
        if top <= base_res:
            return
        self._check_res(layout, top)
        jobs = [ds.LevelJob(_Level(self, layout, r - 1), _Level(self, layout, r),
                            layout.level_shape(r - 1), layout.level_shape(r),
                            (2, 2, 2 if layout.halves_z(r) else 1), layout.time_samples + 1)
                for r in range(base_res + 1, top + 1)]
        try:
            ds.build_levels(jobs, dtype=np.dtype(layout.dtype), annotation=layout.annotation,
                            progress=progress, cancelled=cancelled)
        except ds.Cancelled as exc:
            raise DownsampleCancelled(f"downsample of {layout.key} {exc}") from None

    def delete(self, key: str) -> None:
        with self._meta_lock:
            for cached in [k for k in self._handles if k[0] == key]:
                del self._handles[cached]
            self._ensured.pop(key, None)
        _wait(self._root.delete_range(_prefix_range(f"{key}/")), f"deleting {key}")
        if self._base["driver"] == "file":  # the file driver leaves the emptied directories behind
            shutil.rmtree(os.path.join(self._base["path"], key), ignore_errors=True)

    def layout_version(self) -> int | None:
        """The layout recorded at the store's root (ndex.server.migrate); None if none was recorded."""
        found = _wait(self._root.read(LAYOUT_KEY), f"reading {LAYOUT_KEY}")
        if found.state != "value":
            return None
        try:
            return int(json.loads(bytes(found.value))["layout"])
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"{self.url}/{LAYOUT_KEY} is damaged: restore it from a backup, or write "
                             '{"layout": 1} into it if this store was written by ndex 2.0') from None

    def record_layout(self, version: int) -> None:
        doc = {"layout": version, "written_by": f"ndex {__version__}"}
        _wait(self._root.write(LAYOUT_KEY, json.dumps(doc).encode()), f"writing {LAYOUT_KEY}")

    def close(self) -> None:
        with self._meta_lock:
            self._handles.clear()
            self._ensured.clear()
        self.locks.close()

    # --- validation -----------------------------------------------------------------------------

    def _check_res(self, layout: ChannelLayout, res: int) -> None:
        if layout.dtype not in STORABLE_DTYPES:
            raise UsageError(f"channel {layout.key} has dtype {layout.dtype!r}; "
                             f"use one of {', '.join(STORABLE_DTYPES)}")
        if not 0 <= res <= layout.max_res:
            raise OutOfBounds(f"resolution {res} is outside 0..{layout.max_res} for channel {layout.key}")

    def _check_region(self, layout: ChannelLayout, res: int, box: Box, t_range: tuple[int, int]) -> None:
        self._check_res(layout, res)
        shape = layout.level_shape(res)
        if not Box((0, 0, 0), shape).contains(box):
            raise OutOfBounds(f"box {box} lies outside level {res} of {layout.key} (x, y, z shape {shape}); "
                              "clip the request to the coordinate frame")
        t0, t1 = t_range
        if not 0 <= t0 < t1 <= layout.time_samples + 1:
            raise OutOfBounds(f"time range {t0}:{t1} lies outside 0:{layout.time_samples + 1} "
                              f"for channel {layout.key}")

    def _check_data(self, layout: ChannelLayout, box: Box, data: np.ndarray) -> None:
        if data.dtype != np.dtype(layout.dtype):
            raise UsageError(f"data is {data.dtype} but channel {layout.key} stores {layout.dtype}; "
                             "convert the data or write to a channel of that type")
        if data.ndim != 4 or data.shape[1:] != box.shape_zyx or data.shape[0] < 1:
            raise UsageError(f"data shape {data.shape} does not match box {box}: expected "
                             f"(t, {', '.join(map(str, box.shape_zyx))})")

    # --- handles --------------------------------------------------------------------------------

    def _spec(self, key: str, res: int) -> dict:
        return {"driver": "zarr3", "kvstore": {**self._base, "path": self._level_path(key, res)}}

    def _level_path(self, key: str, res: int) -> str:
        """Where a level's array lives under the store root (a key prefix; a directory for `file`)."""
        return f"{self._base['path']}{key}/{res}/"

    def _open(self, key: str, res: int) -> ts.TensorStore | None:
        try:
            return ts.open(self._spec(key, res), open=True, context=self._context).result()
        except ValueError as exc:
            if _not_found(exc):
                return None
            raise StoreError(f"storage failed while opening {key}/{res}: {exc}") from exc

    def _reader(self, layout: ChannelLayout, res: int, box: Box,
                t_range: tuple[int, int]) -> ts.TensorStore | None:
        """The level's array, or None if it was never created; reopened once if it looks too small."""
        cache_key = (layout.key, res)
        with self._meta_lock:
            handle = self._handles.get(cache_key)
        if handle is not None and _covers(handle, box, t_range):
            return handle
        handle = self._open(layout.key, res)  # another process may have created or grown it
        if handle is not None:
            with self._meta_lock:
                self._handles[cache_key] = handle
        return handle

    def _writer(self, layout: ChannelLayout, res: int) -> ts.TensorStore:
        with self._meta_lock:
            if self._ensured.get(layout.key) != layout:
                self._ensure_channel(layout)
            return self._handles[(layout.key, res)]

    def _ensure_channel(self, layout: ChannelLayout) -> None:
        """Create (or grow) every level array and (re)write the OME group: once per process and layout."""
        for res in range(layout.max_res + 1):
            self._handles[(layout.key, res)] = self._ensure_array(layout, res)
        doc = {"zarr_format": 3, "node_type": "group", "attributes": group_attributes(layout)}
        _wait(self._root.write(f"{layout.key}/zarr.json", json.dumps(doc, indent=2).encode()),
              f"writing the group of {layout.key}")
        self._ensured[layout.key] = layout

    def _ensure_array(self, layout: ChannelLayout, res: int) -> ts.TensorStore:
        handle = self._open(layout.key, res)
        if handle is None:
            spec = {**self._spec(layout.key, res), "metadata": _array_metadata(layout, res)}
            try:
                return ts.open(spec, create=True, context=self._context).result()
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
            handle = _wait(handle.resize(exclusive_max=grown, expand_only=True), f"growing {layout.key}/{res}")
        return handle  # type: ignore[return-value]  # mypy loses the narrowing through the try above

    # --- merge and locks ------------------------------------------------------------------------

    def _merge(self, handle: ts.TensorStore, t: int, slab: Box, piece: np.ndarray) -> None:
        """Store `piece` over the slab with the merge rule; the caller holds the slab's chunk locks."""
        where = handle[_index(slab, (t, t + 1))]
        if piece.all():
            merged = piece  # every voxel replaces: no need to know what is stored
        else:
            # a chunk never written reads as fill without touching a chunk file, so empty space is cheap
            merged = _wait(where.read(), "reading for a merge")[0]
            np.copyto(merged, piece, where=piece != 0)
        _wait(where.write(merged[None]), "writing")

    def _locked(self, key: str, res: int, t: int, slab: Box) -> contextlib.AbstractContextManager[None]:
        """Hold every chunk the slab touches (see ndex.server.chunklocks for what holds and why)."""
        return self.locks.hold((key, res, t, tuple(v // g for v, g in zip(c.start, BOSS_CUBOID)))  # type: ignore[misc]  # x, y, z in and out
                               for c in iter_blocks(slab, BOSS_CUBOID))

    # --- scanning -------------------------------------------------------------------------------

    def _chunk_rows(self, handle: ts.TensorStore, t: int, zc: int) -> set[tuple[int, int]]:
        """(y, x) chunk indices stored in chunk row (t, zc): one listing, no chunk read."""
        prefix = f"c/{t}/{zc}/"
        keys = _wait(handle.kvstore.list(_prefix_range(prefix), strip_prefix_length=len(prefix)),  # type: ignore[union-attr]
                     "listing chunks")
        rows = set()
        for k in keys:
            y, _, x = k.decode().partition("/")
            rows.add((int(y), int(x)))
        return rows

    def _stored_cuboids(self, handle: ts.TensorStore, layout: ChannelLayout, res: int, t: int,
                        within: Box | None = None) -> Iterator[Box]:
        """The parts of stored chunks at time t inside `within` (default: the level), in (z, y, x) order.

        The work follows what is stored, never the frame: a shallow box lists its few chunk rows, a deep
        one lists the stored chunks of the time sample once. Each chunk checks the request's deadline."""
        within = within or Box((0, 0, 0), layout.level_shape(res))
        cx, cy, cz = BOSS_CUBOID
        for zc, yc, xc in self._stored_chunks(handle, t, range(within.start[2] // cz, -(-within.stop[2] // cz))):
            check_deadline()
            cuboid = Box((xc * cx, yc * cy, zc * cz), ((xc + 1) * cx, (yc + 1) * cy, (zc + 1) * cz))
            clipped = cuboid.intersect(within)
            if clipped is not None:
                yield clipped

    def _stored_chunks(self, handle: ts.TensorStore, t: int, rows: range) -> list[tuple[int, int, int]]:
        """(z, y, x) indices of the stored chunks of time t in the chunk rows `rows`, sorted."""
        if len(rows) <= ROW_LISTINGS:
            return [(zc, yc, xc) for zc in rows for yc, xc in sorted(self._chunk_rows(handle, t, zc))]
        prefix = f"c/{t}/"
        keys = _wait(handle.kvstore.list(_prefix_range(prefix), strip_prefix_length=len(prefix)),  # type: ignore[union-attr]
                     "listing chunks")
        found = (tuple(int(v) for v in k.decode().split("/")) for k in keys)
        return sorted(c for c in found if len(c) == 3 and c[0] in rows)

    def _stored_part(self, handle: ts.TensorStore, box: Box,
                     t_range: tuple[int, int]) -> tuple[Box, tuple[int, int]] | None:
        """The part of box x t_range inside the stored array (smaller than the layout until it grows)."""
        nt, nz, ny, nx = handle.shape
        part = box.intersect(Box((0, 0, 0), (nx, ny, nz)))
        t1 = min(t_range[1], nt)
        if part is None or t_range[0] >= t1:
            return None
        return part, (t_range[0], t1)


class _Level:
    """One level of one channel as the downsample loop sees it (ndex.server.downsample.LevelIO)."""

    def __init__(self, store: VolumeStore, layout: ChannelLayout, res: int) -> None:
        self.store, self.layout, self.res = store, layout, res
        self._rows: dict[tuple[int, int], set[tuple[int, int]]] = {}

    def read(self, t: int, box: Box) -> np.ndarray:
        return self.store.read(self.layout, self.res, box, (t, t + 1))[0]

    def write(self, t: int, box: Box, block: np.ndarray) -> None:
        handle = self.store._writer(self.layout, self.res)
        for _, slab in _slabs(box, (t, t + 1)):
            with self.store._locked(self.layout.key, self.res, t, slab):
                _wait(handle[_index(slab, (t, t + 1))].write(block[slab.slices_in(box)][None]),
                      f"writing level {self.res}")

    def has_data(self, t: int, box: Box) -> bool:
        handle = self.store._reader(self.layout, self.res, box, (t, t + 1))
        if handle is None:
            return False
        cx, cy, cz = BOSS_CUBOID
        for zc in range(box.start[2] // cz, -(-box.stop[2] // cz)):
            row = self._row(handle, t, zc)
            if any((yc, xc) in row for yc in range(box.start[1] // cy, -(-box.stop[1] // cy))
                   for xc in range(box.start[0] // cx, -(-box.stop[0] // cx))):
                return True
        return False

    def _row(self, handle: ts.TensorStore, t: int, zc: int) -> set[tuple[int, int]]:
        # tiles walk a row at a time: keep only the latest few rows so memory stays bounded
        if (t, zc) not in self._rows:
            if len(self._rows) >= 4:
                self._rows.pop(next(iter(self._rows)))
            self._rows[(t, zc)] = self.store._chunk_rows(handle, t, zc)
        return self._rows[(t, zc)]


# --- small pure helpers ------------------------------------------------------------------------------


def _one_chunk(box: Box) -> bool:
    """Is `box` exactly one stored chunk (one whole, aligned BOSS cuboid)?"""
    return box.shape == BOSS_CUBOID and box.is_aligned()


def _chunk_key(t: int, box: Box) -> str:
    """The zarr v3 key (default encoding, '/' separated) of the chunk whose corner is `box.start`."""
    return "c/{}/{}/{}/{}".format(t, *(s // c for s, c in zip(reversed(box.start), CHUNK_ZYX)))


def _index(box: Box, t_range: tuple[int, int]) -> tuple[slice, slice, slice, slice]:
    """tensorstore (t, z, y, x) index of box x t_range."""
    return (slice(*t_range), slice(*box.z), slice(*box.y), slice(*box.x))


def _covers(handle: ts.TensorStore, box: Box, t_range: tuple[int, int]) -> bool:
    nt, nz, ny, nx = handle.shape
    return t_range[1] <= nt and box.stop[0] <= nx and box.stop[1] <= ny and box.stop[2] <= nz


def _slabs(box: Box, t_range: tuple[int, int]) -> Iterator[tuple[int, Box]]:
    """(t, chunk-deep z-slab) pieces: the unit of locking and of the read-modify-write."""
    for t in range(*t_range):
        for slab in z_slabs(box, BOSS_CUBOID[2]):
            yield t, slab


def _extent_of(mask: np.ndarray, cuboid: Box, tight: bool) -> Box | None:
    """The box of the True voxels of a (z, y, x) mask over `cuboid`: exact, or the aligned cuboid."""
    if not mask.any():
        return None
    if not tight:
        cx, cy, cz = BOSS_CUBOID
        start = (cuboid.start[0] // cx * cx, cuboid.start[1] // cy * cy, cuboid.start[2] // cz * cz)
        return Box(start, (start[0] + cx, start[1] + cy, start[2] + cz))
    lo, hi = [], []
    for axis in (2, 1, 0):  # mask axes z, y, x -> box axes x, y, z
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        lo.append(int(hits[0]))
        hi.append(int(hits[-1]) + 1)
    return Box(tuple(s + v for s, v in zip(cuboid.start, lo)),  # type: ignore[arg-type]  # x, y, z in and out
               tuple(s + v for s, v in zip(cuboid.start, hi)))  # type: ignore[arg-type]
