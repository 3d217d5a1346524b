"""TIFF codec choice and the BigTIFF decision, shared by the slice and stack writers.

tifffile encodes zlib itself; zstd and lzw need the `imagecodecs` package (zstd also works from the
standard library on Python >= 3.14). Rather than guessing from versions we encode a tiny image once
per codec and report a missing package as a UsageError that says what to install.
"""
from __future__ import annotations

import functools
import io

import numpy as np
import tifffile

from ndex.errors import UsageError
from ndex.sinks.base import COMPRESSIONS

LEVELS = {"zlib": range(0, 10), "zstd": range(1, 23)}  # lzw and none have no level
CLASSIC_TIFF_LIMIT = 2**32 - 2**25  # 4 GiB offsets, minus room for OME-XML and tags written last
PAGE_OVERHEAD = 1024  # bytes of IFD and tags per page, besides the strip tables


def tiff_compression(name: str, level: int | None = None) -> dict:
    """tifffile write() keyword arguments for codec `name` at `level`; UsageError if unusable here."""
    check_compression(name, level)
    if name == "none":
        return {"compression": None}
    _require_codec(name)
    kwargs: dict = {"compression": name}
    if level is not None:
        kwargs["compressionargs"] = {"level": level}
    return kwargs


def check_compression(name: str, level: int | None) -> None:
    """UsageError for an unknown codec or a level it does not take."""
    if name not in COMPRESSIONS:
        raise UsageError(f"unknown compression {name!r}: use one of {', '.join(COMPRESSIONS)}")
    if level is not None and name not in LEVELS:
        raise UsageError(f"compression {name} takes no level (got {level}): drop the level")
    if level is not None and level not in LEVELS[name]:
        lo, hi = LEVELS[name][0], LEVELS[name][-1]
        raise UsageError(f"{name} level {level} is out of range: use {lo} to {hi}")


@functools.cache
def codec_available(name: str) -> bool:
    """True if tifffile can encode `name` in this environment."""
    try:
        tifffile.imwrite(io.BytesIO(), np.zeros((2, 2), np.uint8), compression=name)
    except (ImportError, KeyError, ValueError, RuntimeError):
        return False
    return True


def _require_codec(name: str) -> None:
    if not codec_available(name):
        raise UsageError(f"TIFF compression {name} needs the Python package imagecodecs: "
                         f"pip install imagecodecs, or choose compression none or zlib")


def stack_bytes(data_bytes: int, pages: int, rows: int) -> int:
    """Upper bound of a stack file's size: pixels plus every page's IFD and strip tables.

    Compression is not counted as a saving: incompressible data can grow a little, which
    CLASSIC_TIFF_LIMIT's margin absorbs.
    """
    return data_bytes + pages * (PAGE_OVERHEAD + 16 * rows)


def needs_bigtiff(data_bytes: int, pages: int, rows: int, limit: int = CLASSIC_TIFF_LIMIT) -> bool:
    """True when a classic TIFF (32-bit offsets) could not hold the stack."""
    return stack_bytes(data_bytes, pages, rows) > limit
