"""Image and tile routes (boss-api.md 8): one 8-bit grayscale slice as PNG (or JPEG on request).

`/v1/image/{c}/{e}/{ch}/{orient}/{res}/{a}/{b}/{c}[/{t}]`: for `xy` the x and y segments are ranges and z
is one index; `xz` and `yz` likewise. 16-bit data is scaled by 1/256 into 8 bits, as BOSS does.
"""
from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Request
from PIL import Image
from starlette.responses import Response

from ndex.server.budget import budget_of
from ndex.server.cutouts import parse_region
from ndex.server.http_errors import DATATYPE_DOES_NOT_MATCH, INVALID_CUTOUT_ARGS, BossError
from ndex.server.quota import EGRESS
from ndex.server.routes_data import channel, charge, read_region
from ndex.server.services import services
from ndex.server.values import MAX_EXTENT, ascii_int

router = APIRouter(tags=["images"])
NORMAL_AXIS = {"xy": "z", "xz": "y", "yz": "x"}


def _single(text: str, axis: str) -> str:
    index = ascii_int(text, f"{axis} (a single index for this orientation)", hi=MAX_EXTENT, code=INVALID_CUTOUT_ARGS)
    return f"{index}:{index + 1}"


def render(request: Request, orient: str, res: str, x: str, y: str, z: str, t: str | None) -> Response:
    if orient not in NORMAL_AXIS:
        raise BossError(INVALID_CUTOUT_ARGS, f"orientation {orient!r} must be xy, xz or yz")
    svc = services(request)
    info = channel(svc, request, "read_volumetric_data")
    ranges = {"x": x, "y": y, "z": z}
    normal = NORMAL_AXIS[orient]
    ranges[normal] = _single(ranges[normal], normal)
    t_range = None if t is None else _single(t, "t")
    region = parse_region(info, res, ranges["x"], ranges["y"], ranges["z"], t_range)
    charge(svc, request, EGRESS, region.nbytes)
    with budget_of(request).reserve(region.nbytes):
        plane = read_region(svc, region)[0]
    plane = {"xy": lambda a: a[0], "xz": lambda a: a[:, 0, :], "yz": lambda a: a[:, :, 0]}[orient](plane)
    return _encode(to_uint8(plane, info.datatype), request.headers.get("accept", ""))


def to_uint8(plane: np.ndarray, datatype: str) -> np.ndarray:
    if datatype == "uint8":
        return plane
    if datatype == "uint16":
        return (plane >> 8).astype(np.uint8)
    raise BossError(DATATYPE_DOES_NOT_MATCH, "image slices exist for uint8 and uint16 channels only: "
                                             "use a cutout for uint64 data")


def _encode(plane: np.ndarray, accept: str) -> Response:
    buf = io.BytesIO()
    if "image/jpeg" in accept and "image/png" not in accept:
        Image.fromarray(np.ascontiguousarray(plane), mode="L").save(buf, format="JPEG", quality=85)
        return Response(buf.getvalue(), media_type="image/jpeg")
    Image.fromarray(np.ascontiguousarray(plane), mode="L").save(buf, format="PNG")
    return Response(buf.getvalue(), media_type="image/png")


@router.get("/v1/image/{c}/{e}/{ch}/{orient}/{res}/{x}/{y}/{z}", summary="One slice as an 8-bit PNG")
def image(request: Request, orient: str, res: str, x: str, y: str, z: str):
    return render(request, orient, res, x, y, z, None)


@router.get("/v1/image/{c}/{e}/{ch}/{orient}/{res}/{x}/{y}/{z}/{t}", summary="One slice at time t as an 8-bit PNG")
def image_t(request: Request, orient: str, res: str, x: str, y: str, z: str, t: str):
    return render(request, orient, res, x, y, z, t)


@router.get("/v1/tile/{c}/{e}/{ch}/{orient}/{size}/{res}/{xi}/{yi}/{zi}", summary="One square tile as PNG")
def tile(request: Request, orient: str, size: str, res: str, xi: str, yi: str, zi: str):
    return render_tile(request, orient, size, res, xi, yi, zi, None)


@router.get("/v1/tile/{c}/{e}/{ch}/{orient}/{size}/{res}/{xi}/{yi}/{zi}/{t}", summary="One tile at time t as PNG")
def tile_t(request: Request, orient: str, size: str, res: str, xi: str, yi: str, zi: str, t: str):
    return render_tile(request, orient, size, res, xi, yi, zi, t)


def render_tile(request: Request, orient: str, size: str, res: str, xi: str, yi: str, zi: str,
                t: str | None) -> Response:
    """Tile indices -> ranges: in-plane axes span [size*i, size*(i+1)), the normal axis index is used as-is."""
    s = ascii_int(size, "tile size", 1, code=INVALID_CUTOUT_ARGS)
    idx = {a: ascii_int(v, f"tile index {a}", code=INVALID_CUTOUT_ARGS) for a, v in zip("xyz", (xi, yi, zi))}
    normal = NORMAL_AXIS.get(orient, "z")
    seg = {a: (str(i) if a == normal else f"{s * i}:{s * (i + 1)}") for a, i in idx.items()}
    return render(request, orient, res, seg["x"], seg["y"], seg["z"], t)
