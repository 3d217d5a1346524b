"""Reading a part of a TIFF page: only the strips or tiles that cover it are read and decoded.

A push reads its slices band by band (push_plan.py), so a band of a 50k x 50k section must not cost
the whole section. tifffile's random access gives each strip's or tile's place in the file; this
reads those a region needs and decodes them with the page's own decoder, so every compression
tifffile reads, BigTIFF and multipage stacks work alike. A page stored as one compressed strip has
no parts to read: `page_region` says so (None), and the caller decodes the page once instead.
"""
from __future__ import annotations

from typing import IO, Any

import numpy as np
import tifffile

from ndex.geometry import ceil_div

Span = tuple[int, int]


def partial_layout(page: Any) -> tuple[int, int] | None:
    """(segment rows, segment columns) when parts of `page` can be read alone; None otherwise."""
    key = page.keyframe
    if key.planarconfig == tifffile.PLANARCONFIG.SEPARATE and key.samplesperpixel > 1:
        return None  # planes of samples stored apart: read whole
    if key.is_tiled:
        return (key.tilelength, key.tilewidth) if key.tiledepth == 1 else None
    if len(page.dataoffsets) == 1 and key.compression != 1:
        return None  # one compressed strip: every part needs the whole decode
    return key.rowsperstrip if len(page.dataoffsets) > 1 else key.imagelength, key.imagewidth


def page_region(page: Any, rows: Span, cols: Span) -> np.ndarray | None:
    """Rows x cols of `page` as (y, x) or (y, x, samples); None when the page cannot be read in parts."""
    layout = partial_layout(page)
    if layout is None:
        return None
    key = page.keyframe
    if key.compression == 1 and len(page.dataoffsets) == 1:
        return _uncompressed_rows(page, rows, cols)
    seg_rows, seg_cols = layout
    samples = key.samplesperpixel
    out = np.zeros((rows[1] - rows[0], cols[1] - cols[0], samples), key.dtype.newbyteorder("="))
    columns = ceil_div(key.imagewidth, seg_cols)
    fh = page.parent.filehandle
    for r in range(rows[0] // seg_rows, ceil_div(rows[1], seg_rows)):
        for c in range(cols[0] // seg_cols, ceil_div(cols[1], seg_cols)):
            index = r * columns + c
            with fh.lock:
                fh.seek(page.dataoffsets[index])
                data = fh.read(page.databytecounts[index])
            segment, _, _ = page.decode(data, index, jpegtables=key.jpegtables)
            y0, x0 = r * seg_rows, c * seg_cols
            segment = segment.reshape(segment.shape[-3:])  # (rows, columns, samples)
            ys, xs = (max(rows[0], y0), min(rows[1], y0 + segment.shape[0])), \
                     (max(cols[0], x0), min(cols[1], x0 + segment.shape[1]))
            out[ys[0] - rows[0]:ys[1] - rows[0], xs[0] - cols[0]:xs[1] - cols[0]] = \
                segment[ys[0] - y0:ys[1] - y0, xs[0] - x0:xs[1] - x0]
    return out[:, :, 0] if samples == 1 else out


def _uncompressed_rows(page: Any, rows: Span, cols: Span) -> np.ndarray:
    """The rows of a page stored as one raw strip, read straight from the file."""
    key = page.keyframe
    dtype, samples, width = key.dtype, key.samplesperpixel, key.imagewidth
    row_bytes = width * samples * dtype.itemsize
    fh = page.parent.filehandle
    with fh.lock:
        fh.seek(page.dataoffsets[0] + rows[0] * row_bytes)
        data = fh.read((rows[1] - rows[0]) * row_bytes)
    array = np.frombuffer(data, dtype).reshape(rows[1] - rows[0], width, samples)[:, cols[0]:cols[1]]
    array = array.astype(dtype.newbyteorder("="))  # a copy: the region only, in native order
    return array[:, :, 0] if samples == 1 else array


def region_of_file(handle: IO[bytes] | str, rows: Span, cols: Span) -> tuple[np.ndarray, tuple[int, int]] | None:
    """(rows x cols, (width, height) of the page) of a one-page TIFF file (a path or a seekable file); None
    if it cannot be read in parts (then the caller decodes it whole, which also names what is wrong)."""
    try:
        with tifffile.TiffFile(handle, is_ome=False) as tif:
            if len(tif.pages) != 1:
                return None
            page = tif.pages.first
            key = page.keyframe
            size = (key.imagewidth, key.imagelength)
            if rows[1] > size[1] or cols[1] > size[0]:
                return None
            region = page_region(page, rows, cols)
    except Exception:  # a damaged file: the whole decode reports it with the file's name
        return None
    return None if region is None else (region, size)
