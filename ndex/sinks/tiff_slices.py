"""TIFF slices, the default ndpull output: one plain grayscale TIFF per z (and per time point).

Names are ndex 1.x's (see layout.py). Each slice is written to `<name>.partial` and renamed, so a
slice under its final name is complete the moment it appears; the files themselves are the resume
record (a slab is done when all its slices exist for every time point), no sidecar needed. Slices
stay single-page, single-sample, without ImageJ hyperstack metadata: Fiji, napari and every TIFF
reader open them as they did the 1.x output.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tifffile

from ndex.errors import SinkError
from ndex.geometry import Box
from ndex.sinks._files import disk_errors, make_dir, partial_of, publish, remove
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import check_whole_slab, conform, slice_name, time_index
from ndex.sinks.metadata import tiff_slice_tags
from ndex.sinks.tiff_options import tiff_compression

log = logging.getLogger(__name__)

DOCUMENT_NAME = 269  # TIFF tag; ndex 1.x stored each slice's own file name there
WRITERS = 4


class TiffSlices:
    """One `{prefix}_x.._y.._z{z}.tif` per slice in `spec.outdir`."""

    supports_partial_writes = False  # whole z-slabs of the full XY extent: wrap it in SlabAssembly

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.outdir = Path(spec.outdir)
        self._codec = tiff_compression(spec.compression, spec.compression_level)
        self._writing: set[Path] = set()
        self._lock = threading.Lock()
        # the 16 slices of a slab are written in parallel: file writes and zlib release the GIL, and a
        # slab written faster is a slab buffer free sooner for the blocks already arriving
        self._pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="tiff-slices")
        make_dir(self.outdir)

    def path(self, z: int, t: int | None = None) -> Path:
        """Final path of slice `z` at time point `t`."""
        return self.outdir / slice_name(self.spec, z, t)

    def paths(self, slab: Box) -> list[Path]:
        return [self.path(z, t) for t in self.spec.times for z in range(*slab.z)]

    def completed(self, slabs: list[Box]) -> set[Box]:
        return {slab for slab in slabs if all(p.is_file() for p in self.paths(slab))}

    def write(self, slab: Box, data: np.ndarray, t: int | None) -> None:
        check_whole_slab(self.spec, slab, "TiffSlices")
        time_index(self.spec, t)
        data = conform(self.spec, slab, data)
        futures = [self._pool.submit(self._write_slice, self.path(z, t), page, tiff_slice_tags(self.spec, z, t))
                   for page, z in zip(data, range(*slab.z))]
        for future in futures:  # every slice finishes (or cleans up) before the first error is raised
            future.exception()
        for future in futures:
            future.result()

    def _write_slice(self, final: Path, page: np.ndarray, tags: dict) -> None:
        partial = partial_of(final)
        with self._lock:
            self._writing.add(partial)
        try:
            with disk_errors(partial):
                tifffile.imwrite(partial, page, photometric="minisblack", metadata=None,
                                 extratags=[(DOCUMENT_NAME, "s", 0, final.name, True)], **tags, **self._codec)
            publish(partial, final)
        except BaseException:
            remove(partial)  # a half-written slice must not look resumable either
            raise
        finally:
            with self._lock:
                self._writing.discard(partial)

    def slab_done(self, slab: Box) -> None:
        """Nothing to record: the renamed slices are the record."""

    def slab_failed(self, slab: Box) -> None:
        """Nothing to undo: a slice is renamed only once written."""

    def finish(self) -> list[Path]:
        self._pool.shutdown(wait=True)
        paths = self.paths(self.spec.box)
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise SinkError(f"{len(missing)} of {len(paths)} slices are missing (first: {missing[0]}): "
                            f"run the pull again to fill them in")
        return paths

    def abort(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for partial in self._writing:
                remove(partial)
            self._writing.clear()
