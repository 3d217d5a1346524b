"""One multipage TIFF (or OME-TIFF / ImageJ hyperstack) whose pages are the z slices.

The stack is never loaded whole: an uncompressed contiguous stack is memory-mapped and sliced;
any other is read page by page, so a slab costs only its own pages. A band of a slab (`read(box)`)
costs only its part of the pages: the memory map is sliced, striped or tiled pages read only the
strips or tiles of the band (regions.py), and pages of one compressed strip are decoded once into a
spill file on local disk that the slab's bands are read from (slices.py).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tifffile

from ndex.errors import BadInput, NdexError, OutOfBounds, SourceError, UsageError
from ndex.sources.base import BandBySlice, SourceSpec
from ndex.sources.images import check_slice, decoder_reason, page_array, to_grayscale
from ndex.sources.regions import page_region
from ndex.sources.slices import Spill

# the plane and its samples; the one other axis longer than 1 (Z, or Q/I/C/T as tifffile may label a
# plain page sequence, e.g. an ImageJ stack without hyperstack metadata) is read as z
PLANE_AXES = "YXS"


def stack_path(spec: SourceSpec) -> str:
    """base_path, or base_path/base_filename.extension when a file name is given."""
    if not spec.base_filename:
        if not spec.base_path:
            raise UsageError("no stack file: give --base_path STACK.tif")
        return spec.base_path
    name = f"{spec.base_filename}.{spec.extension}" if spec.extension else spec.base_filename
    return os.path.join(spec.base_path, name)


class StackSource(BandBySlice):
    """Source protocol over the pages of one TIFF file; z = page index; reads XY bands (`read`)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.path = stack_path(spec)
        try:
            self._tif = tifffile.TiffFile(self.path)
        except FileNotFoundError:
            raise SourceError(f"stack file {self.path} does not exist: fix --base_path") from None
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error on damaged files
            raise SourceError(f"cannot open {self.path} as a TIFF stack: {exc}") from exc
        self._tif.filehandle.lock = True  # type: ignore[assignment]  # its setter takes a bool: threads share the handle
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(spec.read_threads, thread_name_prefix="ndex-stack")
        self._spill = Spill()
        try:
            self._open_series()
        except NdexError:
            self.close()
            raise
        except Exception as exc:  # a damaged file fails in tifffile's series parsing in many ways
            self.close()
            raise SourceError(f"cannot read {self.path} as a TIFF stack: {exc}") from exc
        self.origin_xy = spec.origin_xy

    def _open_series(self) -> None:
        series = self._tif.series[0]
        sequence = {a: n for a, n in zip(series.axes, series.shape) if a not in PLANE_AXES and n > 1}
        if len(sequence) > 1:
            raise SourceError(f"{self.path} has axes {series.axes} {series.shape}; ndex reads one sequence of "
                              "grayscale or RGB planes as z: split the other axes into separate stacks first")
        self.depth = int(np.prod(list(sequence.values()) or [1]))
        self._memmap = self._try_memmap(series)
        if self._memmap is None and len(series) != self.depth:
            raise SourceError(f"{self.path}: {self.depth} planes are stored in {len(series)} compressed pages, "
                              "which ndex cannot read slice by slice; split it first with expand_stacks --input FILE --outdir DIR")
        self._pages = series.pages
        first = self._slice(0)
        y, x = first.shape
        spec = self.spec
        self.shape_xy = (x, y)
        for axis, extent, size in (("x", spec.x_extent, x), ("y", spec.y_extent, y)):
            if extent and extent[1] - extent[0] != size:
                raise SourceError(f"{self.path} slices are {x}x{y} (x by y) but --{axis}_extent is "
                                  f"{extent[0]}:{extent[1]}: fix the extents")
        self.dtype = spec.dtype if spec.dtype is not None else first.dtype.newbyteorder("=")
        check_slice(first, f"{self.path} page 0", self.shape_xy, self.dtype)
        self.z_range = spec.z_range or (0, self.depth)
        if self.z_range[0] < 0 or self.z_range[1] > self.depth:
            raise OutOfBounds(f"z range {self.z_range[0]}:{self.z_range[1]} is outside {self.path}, "
                              f"which has pages 0:{self.depth}")

    def _try_memmap(self, series: tifffile.TiffPageSeries) -> np.ndarray | None:
        contiguous_samples = "S" not in series.axes or series.axes.endswith("S")
        if series.dataoffset is None or not contiguous_samples or not self._tif.filehandle.is_file:
            return None  # compressed, scattered or planar pages: read page by page
        try:
            mapped = tifffile.memmap(self.path, series=0, mode="r")
        except ValueError:
            return None
        plane = mapped.shape[-3:] if series.axes.endswith("S") else mapped.shape[-2:]
        return mapped.reshape((self.depth, *plane))

    @property
    def missing(self) -> list[int]:
        return []  # a page cannot be missing from a stack

    def _slice(self, z: int) -> np.ndarray:
        return to_grayscale(self.plane(z), f"{self.path} page {z}", self.spec.rgb_channel)

    def plane(self, z: int) -> np.ndarray:
        """Page z as stored: (y, x) or (y, x, samples), not yet checked against the spec."""
        if self._memmap is not None:
            array = np.asarray(self._memmap[z])
        else:
            with self._lock:  # tifffile loads page objects lazily and not thread-safely
                page = self._pages[z]
            assert page is not None  # a page of the opened file, never None
            try:
                array = page_array(page)
            except Exception as exc:
                raise BadInput(f"page z={z} of {self.path} is not readable ({decoder_reason(exc)}): is the file "
                               "truncated?") from None
        return array

    def _read_into(self, z: int, out: np.ndarray) -> None:
        out[...] = check_slice(self._slice(z), f"{self.path} page {z}", self.shape_xy, self.dtype)

    def _region_into(self, z: int, rows: tuple[int, int], cols: tuple[int, int], out: np.ndarray) -> None:
        name = f"{self.path} page {z}"
        region: np.ndarray | None
        if self._memmap is not None:
            region = np.asarray(self._memmap[z, rows[0]:rows[1], cols[0]:cols[1]])
        elif self._spill.has(z):
            region = self._spill.rows(z, rows, cols)
        else:
            with self._lock:
                page = self._pages[z]
            region = page_region(page, rows, cols)
            if region is None:  # one compressed strip: decoded once, the other bands read from the spill
                self._spill.put(z, check_slice(self._slice(z), name, self.shape_xy, self.dtype))
                region = self._spill.rows(z, rows, cols)
        assert region is not None  # a stack has no missing pages: the spill holds every page it was given
        out[...] = check_slice(to_grayscale(region, name, self.spec.rgb_channel), name, self.shape_xy, self.dtype,
                               size=self.shape_xy)

    def describe(self) -> str:
        x, y = self.shape_xy
        how = "memory-mapped" if self._memmap is not None else "page by page"
        return (f"TIFF stack {self.path} pages {self.z_range[0]}:{self.z_range[1]} of {self.depth} "
                f"({x}x{y} {self.dtype.name}, {how})")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._spill.close()
        self._memmap = None
        self._tif.close()


def open_stack(spec: SourceSpec) -> StackSource:
    return StackSource(spec)
