"""One multipage TIFF (or OME-TIFF) holding the whole pull, resumable across interrupts.

Why parts, then one streaming pass at finish():
tifffile writes one image series either from an in-memory array or from an iterator it pulls
pages from; it cannot continue a series in a file left behind by another process, and appending
to a truncated file is unsafe. So each z-slab (per time point) is saved, as it arrives, to its own
raw `.npy` part in `<name>.parts/` (written as `.partial`, then renamed), and `progress.json`
there records the finished slabs. finish() streams the parts, page by page from memory maps,
through one TiffWriter into `<name>.partial`, then renames it. Costs and gains:

* memory: one slab while downloading, one page while assembling, whatever the volume size;
* resume: a part under its final name is complete; an interrupted run keeps every finished part;
* metadata: one series with correct shape, OME-XML (sizes, units, TZYX order) written once;
* BigTIFF: decided up front from the exact volume size, never too late;
* disk: each part is deleted (and its slab unmarked) as soon as its pages are in the stack, so
  the peak is about one copy of the data; an interrupted finish() only re-downloads those slabs;
* time: one extra local read and write of the data, small next to a network download.

OME-TIFF has no 64-bit integer pixel type, so uint64 (annotation) channels are refused there:
the plain stack, slices and OME-Zarr hold them.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from ndex.errors import UsageError
from ndex.geometry import Box, z_slabs
from ndex.sinks._files import disk_errors, make_dir, partial_of, publish, remove
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import (
    check_whole_slab,
    conform,
    fingerprint,
    time_index,
    units,
    volume_name,
    volume_shape,
)
from ndex.sinks.ledger import SlabLedger
from ndex.sinks.metadata import tiff_resolution, tiff_stack_metadata
from ndex.sinks.tiff_options import CLASSIC_TIFF_LIMIT, needs_bigtiff, tiff_compression

log = logging.getLogger(__name__)

OME_SUFFIXES = (".ome.tif", ".ome.tiff")


def is_ome_name(name: str) -> bool:
    return name.lower().endswith(OME_SUFFIXES)


def stack_title(name: str) -> str:
    """The file name without its TIFF / OME-TIFF suffix: the image name shown by OME readers."""
    for suffix in OME_SUFFIXES + (".tif", ".tiff"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class TiffStack:
    """`spec.stack_filename` in `spec.outdir`; OME-TIFF if the name ends in .ome.tif(f) or `ome=True`.

    `spec.extra` may hold `ome` (bool), `bigtiff` (bool: force the choice) and `bigtiff_limit`
    (bytes above which BigTIFF is used; default just under 4 GiB).
    """

    supports_partial_writes = False  # whole z-slabs of the full XY extent: wrap it in SlabAssembly

    def __init__(self, spec: OutputSpec, *, ome: bool | None = None) -> None:
        self.spec = spec
        name = spec.stack_filename
        if ome is None:
            ome = bool(spec.extra.get("ome")) or (name is not None and is_ome_name(name))
        self.ome = ome
        name = name or volume_name(spec) + (".ome.tif" if ome else ".tif")
        self.path = Path(spec.outdir) / name
        self._codec = tiff_compression(spec.compression, spec.compression_level)
        self._check_ome()
        self.bigtiff = self._choose_bigtiff()
        self._parts = self.path.with_name(self.path.name + ".parts")
        self._ledger = SlabLedger(self._parts / "progress.json", fingerprint(spec, "ome-tiff" if ome else "stack"))
        self._open_parts()

    def _check_ome(self) -> None:
        if self.ome:
            units(self.spec)  # an unknown unit fails now, not after the download
            if np.dtype(self.spec.dtype).itemsize == 8:
                raise UsageError(f"OME-TIFF has no {np.dtype(self.spec.dtype).name} pixel type: "
                                 f"write a plain TIFF stack, OME-Zarr or TIFF slices instead")

    def _choose_bigtiff(self) -> bool:
        if "bigtiff" in self.spec.extra:
            return bool(self.spec.extra["bigtiff"])
        shape = volume_shape(self.spec)
        pages = int(np.prod(shape[:-2]))
        data = self.spec.box.nbytes(np.dtype(self.spec.dtype).itemsize, len(self.spec.times))
        return needs_bigtiff(data, pages, shape[-2], self.spec.extra.get("bigtiff_limit", CLASSIC_TIFF_LIMIT))

    def _open_parts(self) -> None:
        if self._ledger.load():
            log.info("continuing %s: %d slabs already written", self.path, len(self._ledger.completed(self._slabs())))
            return
        remove(self._parts)  # parts of another pull, or a run that recorded nothing
        make_dir(self._parts)
        self._ledger.save()

    def _slabs(self) -> list[Box]:
        return z_slabs(self.spec.box)

    def _part(self, slab: Box, t: int | None) -> Path:
        return self._parts / (f"z{slab.z[0]}-{slab.z[1]}" + ("" if t is None else f"_t{t}") + ".npy")

    def completed(self, slabs: list[Box]) -> set[Box]:
        return {s for s in self._ledger.completed(slabs)
                if all(self._part(s, t).is_file() for t in self.spec.times)}

    def write(self, slab: Box, data: np.ndarray, t: int | None) -> None:
        check_whole_slab(self.spec, slab, "TiffStack")
        time_index(self.spec, t)
        data = np.ascontiguousarray(conform(self.spec, slab, data))
        final = self._part(slab, t)
        partial = partial_of(final)
        try:
            with disk_errors(partial), open(partial, "wb") as f:
                np.save(f, data, allow_pickle=False)
            publish(partial, final)
        except BaseException:
            remove(partial)
            raise

    def slab_done(self, slab: Box) -> None:
        self._ledger.mark(slab)

    def slab_failed(self, slab: Box) -> None:
        """Nothing to undo: the ledger records only complete slabs."""

    def finish(self) -> list[Path]:
        self._ledger.require_all(z_slabs(self.spec.box), self.path)
        partial = partial_of(self.path)
        try:
            self._assemble(partial)
            publish(partial, self.path)
        except BaseException:
            remove(partial)
            raise
        remove(self._parts)
        return [self.path]

    def _assemble(self, partial: Path) -> None:
        with disk_errors(partial), tifffile.TiffWriter(partial, bigtiff=self.bigtiff, ome=self.ome) as tw:
            tw.write(self._pages(), shape=volume_shape(self.spec), dtype=self.spec.dtype,
                     photometric="minisblack", metadata=tiff_stack_metadata(self.spec, self._metadata(), ome=self.ome),
                     **tiff_resolution(self.spec), **self._codec)

    def _pages(self) -> Iterator[np.ndarray]:
        """Every page in (t, z) order, read from memory-mapped parts; each part is dropped once used."""
        for t in self.spec.times:
            for slab in self._slabs():
                part = self._part(slab, t)
                with disk_errors(part):
                    pages = np.load(part, mmap_mode="r", allow_pickle=False)
                yield from pages
                del pages
                self._ledger.unmark(slab)  # before the part goes, so the ledger never claims a missing part
                remove(part)

    def _metadata(self) -> dict:
        axes = "ZYX" if self.spec.time_points is None else "TZYX"
        if not self.ome:
            return {"axes": axes}
        symbol, _ = units(self.spec)
        meta: dict = {"axes": axes, "Name": stack_title(self.path.name)}
        for axis, size in zip("XYZ", self.spec.voxel_size):
            meta[f"PhysicalSize{axis}"] = float(size)
            meta[f"PhysicalSize{axis}Unit"] = symbol
        return meta

    def abort(self) -> None:
        """Keep the parts and the ledger; drop a stack that was being assembled."""
        remove(partial_of(self.path))
