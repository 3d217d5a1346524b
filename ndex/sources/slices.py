"""One image file per z slice, named by an ndex 1.x template; where the bytes come from is a FileStore.

Local directories and S3 buckets differ only in how a name becomes bytes, so both are this one
source with a different store. Slices of a slab are fetched and decoded in parallel threads.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from ndex.errors import SourceError, UsageError
from ndex.sources.base import SliceBySlice, SourceSpec, sample_points
from ndex.sources.images import check_slice, decode_image, to_grayscale
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


class SliceSource(SliceBySlice):
    """Source protocol over one file per slice (see ndex.sources.base.Source)."""

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
        self.store.close()

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
                raise SourceError(f"slice z={z}: {location} does not exist "
                                  "(check --base_path/--base_filename/--z_range, or pass --warn_missing_files "
                                  "to ingest zeros for missing slices)")
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
        first = self._first_slice()
        y, x = first.shape
        shape_xy = (x if given_x is None else given_x, y if given_y is None else given_y)
        return shape_xy, dtype if dtype is not None else first.dtype.newbyteorder("=")

    def _first_slice(self) -> np.ndarray:
        for z in sample_points(self.z_range, 3):
            slice_ = self._load(z)
            if slice_ is not None:
                return slice_
        raise SourceError(f"cannot learn the slice size and datatype: none of the sampled slices exists "
                          f"(first one: {self.location(self.z_range[0])}); give --x_extent, --y_extent and --datatype")
