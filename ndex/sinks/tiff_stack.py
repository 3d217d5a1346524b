"""One multipage TIFF (or OME-TIFF) holding the whole pull, resumable across interrupts.

Why parts, then one streaming pass at finish():
tifffile writes one image series either from an in-memory array or from an iterator it pulls
pages from; it cannot continue a series in a file left behind by another process, and appending
to a truncated file is unsafe. So each z-slab (per time point) is saved, band by band as the bands
arrive, into its own raw `.npy` part in `<name>.parts/` (written in place as `.partial`, renamed once
its last band is in), and `progress.json` there records the finished slabs and bands. finish()
streams the parts, strip by strip (tile row by tile row for very wide regions: tiff_bands.py),
through one TiffWriter into `<name>.partial`, then renames it. Costs and gains:

* memory: one band while downloading, one strip (or tile row) of one page while assembling,
  whatever the volume or slice size;
* resume: a part under its final name is complete; an interrupted run keeps every finished part
  and every finished band of an unfinished one;
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
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from ndex.errors import UsageError
from ndex.geometry import Box, z_slabs
from ndex.sinks._files import disk_errors, make_dir, partial_of, publish, remove
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import (
    check_band,
    conform,
    fingerprint,
    time_index,
    units,
    volume_name,
    volume_shape,
)
from ndex.sinks.ledger import SlabLedger
from ndex.sinks.metadata import tiff_resolution, tiff_stack_metadata
from ndex.sinks.tiff_bands import ChunkLayout, encoder
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

    supports_partial_writes = False  # bands of z-slabs, one at a time: wrap it in SlabAssembly

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
        self.layout = ChunkLayout.choose(spec.box)
        self._ledger = SlabLedger(self._parts / "progress.json", fingerprint(spec, "ome-tiff" if ome else "stack"),
                                  spec.box)
        self._lock = threading.Lock()
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
        """Slabs (or bands) the ledger records, whose parts (final, or `.partial` for a band) exist."""
        def present(box: Box, t: int | None) -> bool:
            part = self._part(box, t)
            return part.is_file() or partial_of(part).is_file()
        return {s for s in self._ledger.completed(slabs) if all(present(s, t) for t in self.spec.times)}

    def write(self, band: Box, data: np.ndarray, t: int | None) -> None:
        """Write the band's rows in place in the slab's `.partial` part (made, of full size, by the first band)."""
        check_band(self.spec, band, "TiffStack")
        time_index(self.spec, t)
        data = conform(self.spec, band, data)
        slab = self.spec.box.with_z(*band.z)
        partial = partial_of(self._part(slab, t))
        with disk_errors(partial):
            offset = self._open_part(partial, slab)
            _, height, width = slab.shape_zyx
            itemsize = np.dtype(self.spec.dtype).itemsize
            x0, y0 = band.x[0] - slab.x[0], band.y[0] - slab.y[0]
            with open(partial, "r+b") as f:
                for z, page in enumerate(data):
                    rows = [page] if band.x == slab.x else list(page)  # whole rows are contiguous in the part
                    for r, row in enumerate(rows):
                        f.seek(offset + ((z * height + y0 + r) * width + x0) * itemsize)
                        f.write(np.ascontiguousarray(row).data)

    def _open_part(self, partial: Path, slab: Box) -> int:
        """Offset of the data in `partial`, an .npy of the slab's shape, made (sparse, zeros) if missing."""
        header = _npy_header(slab.shape_zyx, np.dtype(self.spec.dtype))
        with self._lock:
            if not partial.is_file():
                with open(partial, "wb") as f:
                    f.write(header)
                    f.truncate(len(header) + slab.nbytes(np.dtype(self.spec.dtype).itemsize))
        return len(header)

    def slab_done(self, band: Box) -> None:
        """Record the band; the slab's last band gives its parts their final names."""
        if self._ledger.mark_band(band):
            slab = self.spec.box.with_z(*band.z)
            for t in self.spec.times:
                part = self._part(slab, t)
                if not part.is_file():
                    publish(partial_of(part), part)

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
        lay = self.layout
        chunking = {"tile": (lay.rows, lay.cols)} if lay.tiled else {"rowsperstrip": lay.rows}
        with disk_errors(partial), tifffile.TiffWriter(partial, bigtiff=self.bigtiff, ome=self.ome) as tw:
            tw.write(self._chunks(), shape=volume_shape(self.spec), dtype=self.spec.dtype,
                     photometric="minisblack", metadata=tiff_stack_metadata(self.spec, self._metadata(), ome=self.ome),
                     **tiff_resolution(self.spec), **chunking, compression=self._codec["compression"])

    def _chunks(self) -> Iterator[bytes | np.ndarray]:
        """Every strip (encoded bytes) or tile (an array tifffile encodes) in (t, z, row, column) order, read
        from the parts; each part is dropped once used."""
        encode = encoder(self.spec.compression, self.spec.compression_level)
        lay, dtype = self.layout, np.dtype(self.spec.dtype)
        for t in self.spec.times:
            for slab in self._slabs():
                part = self._part(slab, t)
                _, height, width = slab.shape_zyx
                with disk_errors(part), open(part, "rb") as f:
                    start = len(_npy_header(slab.shape_zyx, dtype))
                    for z in range(slab.shape[2]):
                        for y0 in range(0, height, lay.rows):
                            f.seek(start + (z * height + y0) * width * dtype.itemsize)
                            rows = np.fromfile(f, dtype, min(lay.rows, height - y0) * width).reshape(-1, width)
                            if lay.tiled:
                                yield from (rows[:, x0:x0 + lay.cols] for x0 in range(0, width, lay.cols))
                            else:
                                yield bytes(encode(rows))
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


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The .npy header of a C-ordered array: the parts stay readable with np.load."""
    import io

    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": False, "shape": tuple(shape)})
    return out.getvalue()
