"""TIFF slices, the default ndpull output: one plain grayscale TIFF per z (and per time point).

Names are ndex 1.x's (see layout.py). A slab's slices are written band by band as its blocks arrive
(tiff_bands.py: 512-row strips, 512 x 512 tiles for very wide regions), each into `<name>.partial`,
and renamed once their last band is in, so a slice under its final name is complete the moment it
appears and memory holds one band, not 16 slices. Resume: a slab is done when all its slices exist
for every time point; within an unfinished slab, a sidecar `.<volume>.bands.json` (the ledger) records
the finished bands and `.<volume>.z<z0>-<z1>.chunks.json` where their chunks are in the `.partial`
files, so a re-run continues those files. Slices stay single-page, single-sample, without ImageJ
hyperstack metadata: Fiji, napari, Pillow and every TIFF reader open them as they did the 1.x output.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ndex.errors import SinkError
from ndex.geometry import Box
from ndex.sinks._files import make_dir, partial_of, publish, read_json, remove, write_json
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import check_band, conform, fingerprint, slice_name, time_index, volume_name
from ndex.sinks.ledger import SlabLedger
from ndex.sinks.metadata import tiff_slice_tags
from ndex.sinks.tiff_bands import ChunkedTiff, ChunkLayout, ascii_tag, needs_bigtiff, tags_of
from ndex.sinks.tiff_options import tiff_compression

log = logging.getLogger(__name__)

DOCUMENT_NAME = 269  # TIFF tag; ndex 1.x stored each slice's own file name there
WRITERS = 4

Slab = tuple[int, int]


class TiffSlices:
    """One `{prefix}_x.._y.._z{z}.tif` per slice in `spec.outdir`."""

    supports_partial_writes = False  # bands of z-slabs, one at a time: wrap it in SlabAssembly

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.outdir = Path(spec.outdir)
        tiff_compression(spec.compression, spec.compression_level)  # an unusable codec fails now
        self.layout = ChunkLayout.choose(spec.box)
        itemsize = np.dtype(spec.dtype).itemsize
        self.bigtiff = bool(spec.extra.get("bigtiff", needs_bigtiff(self.layout, itemsize)))
        make_dir(self.outdir)
        base = self.outdir / f".{volume_name(spec)}"
        self._base = base
        self._fingerprint = {**fingerprint(spec, "slices"), "layout": [self.layout.rows, self.layout.cols],
                             "bigtiff": self.bigtiff}
        self._ledger = SlabLedger(base.with_name(base.name + ".bands.json"), self._fingerprint, spec.box)
        self._ledger.load()
        self._files: dict[Slab, dict[tuple[int, int | None], ChunkedTiff]] = {}
        self._lock = threading.Lock()
        # the 16 slices of a band are encoded and written in parallel: file writes and zlib release the GIL
        self._pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="tiff-slices")

    def path(self, z: int, t: int | None = None) -> Path:
        """Final path of slice `z` at time point `t`."""
        return self.outdir / slice_name(self.spec, z, t)

    def paths(self, slab: Box) -> list[Path]:
        return [self.path(z, t) for t in self.spec.times for z in range(*slab.z)]

    def completed(self, slabs: list[Box]) -> set[Box]:
        """Slabs whose slices all exist, and bands of unfinished slabs whose chunks a saved record holds."""
        done = set()
        for box in slabs:
            if all(p.is_file() for p in self.paths(box)):
                done.add(box)
            elif self._ledger.is_done(box) and self._saved_chunks(box.z) is not None:
                done.add(box)
        return done

    def write(self, band: Box, data: np.ndarray, t: int | None) -> None:
        check_band(self.spec, band, "TiffSlices")
        if band.x != self.spec.box.x and not self.layout.tiled:
            raise ValueError(f"TiffSlices writes strips of whole rows: band {band} does not span x "
                             f"{self.spec.box.x[0]}:{self.spec.box.x[1]} (only tiled slices take narrower bands)")
        time_index(self.spec, t)
        data = conform(self.spec, band, data)
        files = self._open(band.z)
        (x0, y0, _) = self.spec.box.start
        rows, cols = (band.y[0] - y0, band.y[1] - y0), (band.x[0] - x0, band.x[1] - x0)
        futures = [self._pool.submit(files[(z, t)].write, rows, cols, page) for page, z in zip(data, range(*band.z))]
        for future in futures:  # every slice finishes before the first error is raised
            future.exception()
        for future in futures:
            future.result()

    def slab_done(self, band: Box) -> None:
        """Record the band (chunk tables first, then the ledger); the slab's last band publishes its slices."""
        files = self._open(band.z)
        for f in files.values():
            f.flush()
        write_json(self._chunks_path(band.z), {"fingerprint": self._fingerprint,
                                               "files": {f.path.name: f.state() for f in files.values()}})
        if self._ledger.mark_band(band) or all(f.complete for f in files.values()):
            self._publish(band.z, files)

    def _publish(self, z: Slab, files: dict[tuple[int, int | None], ChunkedTiff]) -> None:
        for (zi, t), f in files.items():
            f.close_page()
            publish(f.path, self.path(zi, t))
        with self._lock:
            self._files.pop(z, None)
        remove(self._chunks_path(z))

    def slab_failed(self, slab: Box) -> None:
        """Nothing to undo: the band is not recorded, and a slice is renamed only once complete."""

    def _open(self, z: Slab) -> dict[tuple[int, int | None], ChunkedTiff]:
        """The slab's `.partial` files, continued from a saved record or new."""
        with self._lock:
            if z in self._files:
                return self._files[z]
            saved = self._saved_chunks(z) or {}
            files = {}
            for t in self.spec.times:
                for zi in range(*z):
                    final = self.path(zi, t)
                    partial = partial_of(final)
                    state = saved.get(partial.name) if partial.is_file() else None
                    files[(zi, t)] = ChunkedTiff(partial, self.layout, self.spec.dtype, self.spec.compression,
                                                 self.spec.compression_level, bigtiff=self.bigtiff, state=state,
                                                 extratags=(ascii_tag(DOCUMENT_NAME, final.name),
                                                            *tags_of(tiff_slice_tags(self.spec, zi, t))))
            self._files[z] = files
            return files

    def _chunks_path(self, z: Slab) -> Path:
        return self._base.with_name(f"{self._base.name}.z{z[0]}-{z[1]}.chunks.json")

    def _saved_chunks(self, z: Slab) -> dict | None:
        saved = read_json(self._chunks_path(z))
        if saved is None or saved.get("fingerprint") != self._fingerprint:
            return None
        return saved.get("files")

    def finish(self) -> list[Path]:
        self._close_all()
        paths = self.paths(self.spec.box)
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise SinkError(f"{len(missing)} of {len(paths)} slices are missing (first: {missing[0]}): "
                            f"run the pull again to fill them in")
        self._ledger.remove()
        return paths

    def abort(self) -> None:
        """Close the `.partial` files as they are: their saved chunk tables let a re-run continue them."""
        self._close_all()

    def _close_all(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for files in self._files.values():
                for f in files.values():
                    f.close()
            self._files.clear()
