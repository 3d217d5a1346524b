"""One image file per z slice, named by an ndex 1.x template; where the bytes come from is a FileStore.

Local directories and S3 buckets differ only in how a name becomes bytes, so both are this one
source with a different store. Slices of a slab are fetched and decoded in parallel threads.

Bands. The push reads a slab in XY bands (`read(box)`). A TIFF slice stored in strips or tiles (or
uncompressed), local or in S3 (ranged reads), is read in parts: only the strips or tiles of the band
(regions.py). Any other file (PNG, a TIFF of one compressed strip) is decoded once, when its first
band is read, into a raw spill file on local disk, from which the slab's other bands are read; so
memory holds one decoded slice per read thread, not the slab, and disk one slab of raw slices.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Protocol

import numpy as np

from ndex.errors import MissingSlice, SourceError, UsageError
from ndex.sources.base import BandBySlice, SourceSpec, sample_points
from ndex.sources.images import TIFF_MAGICS, check_slice, decode_image, to_grayscale
from ndex.sources.regions import region_of_file
from ndex.sources.templates import SliceNames

log = logging.getLogger(__name__)


class FileStore(Protocol):
    """Where slice files live: a local directory tree or an S3 bucket."""

    def join(self, directory: str, name: str) -> str:
        """The location of file `name` in `directory`."""

    def read(self, location: str) -> bytes | None:
        """The file's bytes; None if it does not exist; SourceError if it cannot be read."""

    def describe(self) -> str:
        """Where the files are, for log lines."""

    def close(self) -> None:
        """Release connections."""

    # optional: `open_file(location) -> IO[bytes] | None`, a seekable file (None if it does not exist),
    # for stores that can read parts of a file (local files, S3 ranged reads)


class Spill:
    """Decoded slices kept in raw files on local disk, read back row by row: a slab's slices decoded once
    for all its bands, without holding them in memory."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._slices: dict[int, tuple[str, np.dtype, int] | None] = {}  # z -> (path, dtype, width); None: zeros
        self._lock = threading.Lock()

    def has(self, z: int) -> bool:
        with self._lock:
            return z in self._slices

    def put(self, z: int, array: np.ndarray | None) -> None:
        with self._lock:
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="ndex-spill-")
            path = os.path.join(self._dir, f"{z}.raw")
        if array is not None:
            np.ascontiguousarray(array).tofile(path)
        with self._lock:
            self._slices[z] = None if array is None else (path, array.dtype, array.shape[1])

    def rows(self, z: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray | None:
        """Rows x cols of slice z (None: a missing slice, zeros)."""
        with self._lock:
            entry = self._slices[z]
        if entry is None:
            return None
        path, dtype, width = entry
        with open(path, "rb") as f:
            f.seek(rows[0] * width * dtype.itemsize)
            data = np.fromfile(f, dtype, (rows[1] - rows[0]) * width).reshape(-1, width)
        return data[:, cols[0]:cols[1]]

    def keep(self, z_range: tuple[int, int]) -> None:
        """Forget (and delete) the slices outside `z_range`: their slab is read."""
        with self._lock:
            gone = [z for z in self._slices if not z_range[0] <= z < z_range[1]]
            entries = [self._slices.pop(z) for z in gone]
        for entry in entries:
            if entry is not None:
                os.unlink(entry[0])

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._dir, self._slices = None, {}


class SliceSource(BandBySlice):
    """Source protocol over one file per slice (see ndex.sources.base.Source); reads XY bands (`read`)."""

    def __init__(self, spec: SourceSpec, store: FileStore) -> None:
        if spec.z_range is None:
            raise UsageError("no z range for the slice files: give --z_extent START STOP (or --z_range)")
        self.spec = spec
        self.store = store
        self.names = SliceNames(spec)
        self.z_range = spec.z_range
        self._missing: set[int] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(spec.read_threads, thread_name_prefix="ndex-slices")
        self._spill = Spill()
        try:
            self.shape_xy, self.dtype = self._geometry()
        except BaseException:
            self.close()
            raise
        self.origin_xy = spec.origin_xy

    @property
    def missing(self) -> list[int]:
        with self._lock:
            return sorted(self._missing)

    def location(self, z: int) -> str:
        """Path or key of slice z's file."""
        return self.store.join(self.names.directory(z), self.names.filename(z))

    def label(self, z: int) -> str:
        """'slice z=20 (img/img_0020.tif)': how every message names a slice, z first, then its file."""
        return f"slice z={z} ({self.location(z)})"

    def describe(self) -> str:
        x, y = self.shape_xy
        step = f" step {self.spec.z_step}" if self.spec.z_step != 1 else ""
        return (f"{self.spec.datasource} slices {self.location(self.z_range[0])} .. "
                f"{self.location(self.z_range[1] - 1)} (z {self.z_range[0]}:{self.z_range[1]}{step}, "
                f"{x}x{y} {self.dtype.name}) from {self.store.describe()}")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._spill.close()
        self.store.close()

    def _region_into(self, z: int, rows: tuple[int, int], cols: tuple[int, int], out: np.ndarray) -> None:
        region = None if self._spill.has(z) else self._region(z, rows, cols)
        if region is not None:
            out[...] = region
            return
        if not self._spill.has(z):  # decoded whole, once: the slab's other bands are read from the spill
            self._spill.put(z, self._whole(z))
        part = self._spill.rows(z, rows, cols)
        out[...] = 0 if part is None else part

    def _whole(self, z: int) -> np.ndarray | None:
        slice_ = self._load(z)
        return None if slice_ is None else check_slice(slice_, self.label(z), self.shape_xy, self.dtype)

    def _region(self, z: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray | None:
        """The part of slice z read alone, when its store and its format allow; None otherwise."""
        found = self._read_part(z, rows, cols)
        if found is None:
            return None
        region, size = found
        return check_slice(region, self.label(z), self.shape_xy, self.dtype, size=size)

    def _read_part(self, z: int, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(rows x cols of slice z as grayscale, (x, y) size of the slice) when read alone; None otherwise."""
        opener = getattr(self.store, "open_file", None)
        handle: IO[bytes] | None = opener(self.location(z)) if opener is not None else None
        if handle is None:
            return None  # not there (the whole read says what to do) or a store without random access
        with handle:
            if handle.read(4) not in TIFF_MAGICS:
                return None
            handle.seek(0)
            found = region_of_file(handle, rows, cols)
        if found is None:
            return None
        region, size = found
        return to_grayscale(region, self.label(z), self.spec.rgb_channel), size

    def _read_into(self, z: int, out: np.ndarray) -> None:
        slice_ = self._load(z)
        if slice_ is None:
            out[...] = 0
            return
        out[...] = check_slice(slice_, self.label(z), self.shape_xy, self.dtype)

    def _load(self, z: int) -> np.ndarray | None:
        """Slice z as a 2D array, unchecked; None for a missing file that warn_missing_files allows."""
        location = self.location(z)
        data = self.store.read(location)
        if data is None:
            if not self.spec.warn_missing_files:
                raise MissingSlice(z, location)
            log.warning("slice z=%d: %s does not exist; ingesting a zero slice (--warn_missing_files)", z, location)
            with self._lock:
                self._missing.add(z)
            return None
        return to_grayscale(decode_image(data, self.label(z)), self.label(z), self.spec.rgb_channel)

    def _geometry(self) -> tuple[tuple[int, int], np.dtype]:
        """Slice size and dtype from the spec, or from the first slice for what the spec leaves open."""
        dtype = self.spec.dtype
        given_x, given_y = self.spec.size_xy
        if given_x is not None and given_y is not None and dtype is not None:
            return (given_x, given_y), dtype
        (y, x), found = self._first_slice()
        shape_xy = (x if given_x is None else given_x, y if given_y is None else given_y)
        return shape_xy, dtype if dtype is not None else found.newbyteorder("=")

    def _first_slice(self) -> tuple[tuple[int, int], np.dtype]:
        """(y, x) shape and dtype of a sampled slice: of a TIFF read in parts from one voxel and its tags,
        without decoding a whole section."""
        for z in sample_points(self.z_range, 3):
            corner = self._read_part(z, (0, 1), (0, 1))
            if corner is not None:
                return corner[1][::-1], corner[0].dtype
            slice_ = self._load(z)
            if slice_ is not None:
                return slice_.shape, slice_.dtype
        raise SourceError(f"cannot learn the slice size and datatype: none of the sampled slices exists "
                          f"(first one: {self.location(self.z_range[0])}); give --x_extent, --y_extent and --datatype")
