"""Cutout GETs as JPEG, as BOSS renders them (bossspatialdb's JpegRenderer), for neuroglancer's boss://
datasource, which asks uint8 channels for `Accept: image/jpeg`. (npygz and blosc-python answers live
with the other array bodies in routes_data/bodies.)

* the (z, y, x) block reshaped to a (z*y, x) grey film strip, slice after slice from top to bottom,
  JPEG quality 85, which neuroglancer cuts back into slices; uint8 data only, 3D URLs only;
* `?window=lo,hi` scales 16-bit image data linearly into the strip (lo -> 0, hi -> 255, clipped). Other
  encodings ignore the window, as BOSS does: neuroglancer's boss:// datasource sends `window=` with npygz
  requests too, and decodes the answer as the channel's own datatype.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ndex.server.http_errors import (
    DATATYPE_DOES_NOT_MATCH,
    DATATYPE_NOT_SUPPORTED,
    INVALID_ARGUMENT,
    BossError,
)

JPEG = "image/jpeg"
JPEG_QUALITY = 85  # BOSS's
JPEG_NOT_4D = 2005  # BOSS's code for a 4D JPEG request
NUMBER = r"\s*(-?\d{1,9}(?:\.\d*)?)\s*"
WINDOW = re.compile(f"^{NUMBER},{NUMBER}$")


@dataclass(frozen=True)
class JpegRendering:
    """A cutout GET that wants JPEG, with a window for 16-bit data."""

    window: tuple[float, float] | None

    def answer(self, data: np.ndarray, four_d: bool) -> Response:
        """`data` is the (t, z, y, x) region."""
        if four_d:
            raise BossError(JPEG_NOT_4D, "the cutout service JPEG interface does not support 4D cutouts: "
                                         "drop the time range or ask application/npygz")
        if self.window is not None:
            data = apply_window(data, self.window)
        return Response(jpeg_strip(data[0]), media_type=JPEG)


def wants_jpeg(request: Request) -> bool:
    return JPEG in request.headers.get("accept", "").lower()


def jpeg_rendering(request: Request, datatype: str, annotation: bool) -> JpegRendering | None:
    """The JPEG answer `request` asks for (checked against the channel), None if it wants no JPEG."""
    if not wants_jpeg(request):
        return None
    text = request.query_params.get("window")
    window = parse_window(text, datatype, annotation) if text is not None else None
    if window is None and datatype != "uint8":
        raise BossError(DATATYPE_DOES_NOT_MATCH, f"the cutout service JPEG interface only supports uint8 image "
                                                 f"data; this channel is {datatype}: add ?window=LO,HI to scale it")
    return JpegRendering(window)


def parse_window(text: str, datatype: str, annotation: bool) -> tuple[float, float]:
    if annotation or datatype not in ("uint8", "uint16"):
        raise BossError(DATATYPE_NOT_SUPPORTED, f"window= scales 8- and 16-bit image channels, not {datatype} "
                                                f"{'annotation' if annotation else 'image'} data")
    m = WINDOW.match(text)
    if not m or float(m.group(1)) >= float(m.group(2)):
        raise BossError(INVALID_ARGUMENT, f"window {text!r} must be LO,HI with numbers LO < HI, e.g. window=0,4000")
    return float(m.group(1)), float(m.group(2))


def apply_window(data: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    scaled = (data.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def jpeg_strip(data: np.ndarray) -> bytes:
    from PIL import Image

    z, y, x = data.shape
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(data).reshape(z * y, x)).save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
