"""Decoding one image file into one 2D grayscale slice, and checking it against the spec.

Both decoders release the GIL while they decompress, so slices of a slab decode in parallel
threads. Every failure names the file: with thousands of slices, "which one?" is the question.
"""
from __future__ import annotations

import io
import re

import numpy as np
import tifffile
from PIL import Image

from ndex.errors import BadInput, SourceError

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def decode_image(data: bytes, name: str) -> np.ndarray:
    """TIFF (one page) or anything Pillow reads -> array (y, x) or (y, x, channels)."""
    try:
        if data[:4] in TIFF_MAGICS:
            return _decode_tiff(data, name)
        return _decode_pillow(data)
    except SourceError:
        raise
    except Exception as exc:  # decoders raise many types (ValueError, struct.error, OSError...) on bad files
        raise BadInput(f"{name} is not a readable image ({decoder_reason(exc)}): replace it, or delete it and "
                       "pass --warn_missing_files to ingest zeros in its place") from None


def _decode_tiff(data: bytes, name: str) -> np.ndarray:
    # is_ome=False: OME metadata may reference sibling files; one slice file is all we read (ndex 1.x fix).
    # The stream is closed here, not left to tifffile (which leaves a stream it did not open alone): the
    # TiffFile's reference cycles kept it, and so the whole file's bytes, alive until the next GC pass --
    # a slab's worth of raw slices (134 MB for 16 slices of 2048x2048 uint16) beside the slab itself.
    with io.BytesIO(data) as stream, tifffile.TiffFile(stream, is_ome=False) as tif:
        if len(tif.pages) > 1:
            raise BadInput(f"{name} has {len(tif.pages)} pages but a slice file must have one: use "
                           "--datasource stack for multipage TIFFs (or split it with expand_stacks --input FILE "
                           "--outdir DIR)")
        return page_array(tif.pages.first)


def page_array(page: tifffile.TiffPage | tifffile.TiffFrame) -> np.ndarray:
    """One TIFF page as (y, x) or (y, x, samples), whatever its planar configuration."""
    array = page.asarray()
    if page.keyframe.planarconfig == tifffile.PLANARCONFIG.SEPARATE and array.ndim == 3:  # type: ignore[union-attr]
        array = np.moveaxis(array, 0, -1)  # samples-first RGB -> (y, x, samples)
    return array


def _decode_pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decode now, inside the try, so a truncated file fails here
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        array = np.asarray(image)
    if array.dtype == np.int32 and array.size and array.min() >= 0 and array.max() < 2**16:
        array = array.astype(np.uint16)  # Pillow's "I" mode holds 16-bit PNGs as int32
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array


def to_grayscale(array: np.ndarray, name: str, rgb_channel: int | None) -> np.ndarray:
    """A 2D slice: grayscale kept, one channel picked from RGB(A), anything else refused."""
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (2, 3, 4):
        if rgb_channel is None:
            raise BadInput(f"{name} is a {array.shape[2]}-channel (RGB/RGBA) image but ndex ingests one "
                           "grayscale channel: pick one with --rgb_channel r|g|b, or split the files "
                           "with expand_stacks --input FILE --outdir DIR --split_rgb")
        if rgb_channel >= array.shape[2]:
            raise BadInput(f"{name} has {array.shape[2]} channels, so --rgb_channel {rgb_channel} does not exist")
        return array[:, :, rgb_channel]
    raise BadInput(f"{name} has shape {array.shape}; expected a 2D grayscale slice")


def check_slice(array: np.ndarray, name: str, shape_xy: tuple[int, int], dtype: np.dtype,
                size: tuple[int, int] | None = None) -> np.ndarray:
    """The slice (or a part of one whose slice is `size` (x, y)) as `dtype`, or a SourceError naming the
    file, what was found and what was expected."""
    x, y = size or array.shape[::-1]
    if (x, y) != tuple(shape_xy):
        raise BadInput(f"{name} is {x}x{y} (x by y) but the x/y extents say {shape_xy[0]}x{shape_xy[1]}: "
                       "fix --x_extent/--y_extent or the file")
    if array.dtype != dtype:
        if not _widening_allowed(array.dtype, dtype):
            raise BadInput(f"{name} holds {array.dtype.name} voxels but the datatype is {dtype.name}: "
                           "fix --datatype or convert the file")
        array = array.astype(dtype)
    return array


def _widening_allowed(found: np.dtype, expected: np.dtype) -> bool:
    # annotation channels are uint64 in BOSS while label images are usually uint16/uint32 files;
    # byte order differences are not a mismatch either
    if found.newbyteorder("=") == expected.newbyteorder("="):
        return True
    return expected == np.uint64 and found.kind == "u"


def decoder_reason(exc: BaseException) -> str:
    """The decoder's own words, without Python's: no class names, no '<_io.BytesIO object at 0x..>'."""
    text = " ".join(re.sub(r"<[^<>]* at 0x[0-9a-f]+>", "", str(exc)).split())
    return text or "the decoder gave no reason"
