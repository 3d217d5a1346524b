"""Volume routes: cutout GET/POST, to_black, ids, reserve, bounding box (boss-api.md 3, 4, 7).

Blocking work (store I/O, blosc) runs in the thread pool; a cutout POST validates the URL and the size
cap before it reads a single byte of the body, and never reads more than the URL's extent allows.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ndex import codecs
from ndex.server import bodies
from ndex.server.budget import budget_of
from ndex.server.channels import ChannelInfo
from ndex.server.cutouts import (
    BLOSC_OVERHEAD,
    Region,
    check_stored,
    check_writable,
    decode_body,
    parse_filter,
    parse_region,
    parse_res,
)
from ndex.server.http_errors import (
    BAD_REQUEST,
    DATA_DIMENSION_MISMATCH,
    DATATYPE_NOT_SUPPORTED,
    INVALID_ARGUMENT,
    OBJECT_NOT_FOUND,
    TYPE_ERROR,
    BossError,
)
from ndex.server.quota import EGRESS, INGRESS
from ndex.server.services import Services, identify, racing_delete, read_limited, services
from ndex.server.values import MAX_ID, ascii_int
from ndex.server.web import encodings

router = APIRouter(tags=["volumes"])
CHAN = "{c}/{e}/{ch}"
XYZ = "{res}/{x}/{y}/{z}"
BLOSC = "application/blosc"
BLOSC_TYPES = ("", "application/blosc", "application/octet-stream")
ARRAY_TYPES = (bodies.BLOSC_PYTHON, bodies.NPYGZ)  # bodies that carry their own dtype and shape
MAX_RESERVE = MAX_ID  # ids reserved by one request: as many as the channel's counter still holds


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() == "true"


def channel(svc: Services, request: Request, perm: str, *, public_ok: bool = True) -> ChannelInfo:
    """The channel named by the path, after the caller's permission `perm` on it is checked."""
    ident = identify(request)
    p = request.path_params
    info = svc.catalog.channel_info(p["c"], p["e"], p["ch"])
    svc.auth.require(ident, "channel", info.id, perm, public=public_ok and info.channel["public"],
                     name=f"{p['c']}/{p['e']}/{p['ch']}")
    return info


def region_of(info: ChannelInfo, request: Request) -> Region:
    p = request.path_params
    return parse_region(info, p["res"], p["x"], p["y"], p["z"], p.get("t"), iso=flag(request, "iso"))


def mark_stale(svc: Services, info: ChannelInfo) -> None:
    """New data makes a built pyramid stale (BOSS resets DOWNSAMPLED on every write). Where several
    processes share the database the cached status may predate a build another process just finished,
    so the database decides (one conditional UPDATE; it changes nothing unless the channel is DOWNSAMPLED)."""
    if info.channel["downsample_status"] == "DOWNSAMPLED" or not svc.settings.sqlite:
        svc.catalog.set_status(info.id, "NOT_DOWNSAMPLED", only_if=("DOWNSAMPLED",))


# --- to_black (registered before the cutouts: /cutout/to_black/... also fits the 4D cutout path) ----


def to_black(request: Request):
    """Set every voxel of the box (and time range) to 0."""
    svc = services(request)
    info = channel(svc, request, "add_volumetric_data", public_ok=False)
    region = region_of(info, request)
    check_writable(region, BAD_REQUEST)
    if region.stored_box is not None:  # past the level's data everything is zero already
        with racing_delete(svc, info):
            svc.store.to_black(region.layout, region.res, region.stored_box, region.t_range)
    mark_stale(svc, info)
    return Response(status_code=200)


for _suffix in ("", "/{t}"):
    router.add_api_route(f"/v1/cutout/to_black/{CHAN}/{XYZ}{_suffix}", to_black, methods=["PUT"],
                         summary="Zero a region of a channel")


# --- cutouts ------------------------------------------------------------------------------------------


def get_cutout(request: Request):
    """C-order (z, y, x) array, or (t, z, y, x) when the URL has a time range: blosc-compressed, or in
    the encoding the Accept header names (application/blosc-python, application/npygz)."""
    svc = services(request)
    info = channel(svc, request, "read_volumetric_data")
    region = region_of(info, request)
    wanted = request.query_params.get("filter")
    ids = parse_filter(info, wanted) if wanted is not None else None
    media = response_media(request)
    jpeg = encodings.jpeg_rendering(request, info.datatype, info.annotation)  # Accept: image/jpeg, ?window=
    # the array, its encoded copy and with filter= the filtered copy are in memory at once
    with budget_of(request).reserve(region.nbytes * (3 if ids is not None else 2)):
        charge(svc, request, EGRESS, region.nbytes)
        if jpeg is not None:
            return jpeg.answer(filtered_region(svc, region, ids), region.four_d)
        body = stored_body(svc, region) if ids is None and media == BLOSC else None
        if body is None:
            body = encoded_body(svc, region, ids, media)
    return Response(body, media_type=media)


def charge(svc: Services, request: Request, direction: str, nbytes: int) -> None:
    """Count a cutout against the caller's daily quota (429 once it is spent)."""
    if svc.quota.limit:  # knowing the caller costs a token lookup: only when there is a quota
        svc.quota.charge(identify(request).username, direction, nbytes)


def response_media(request: Request) -> str:
    """BOSS's renderer for the Accept header: blosc unless one of the array encodings is asked for."""
    accept = request.headers.get("accept", "")
    return next((media for media in ARRAY_TYPES if media in accept), BLOSC)


def stored_cutout(request: Request) -> bytes | None:
    """`get_cutout`'s body when it is one stored chunk as is, else None: also for any error, which the
    routed request then meets again and answers in the spec's shape (see app.CutoutFastPath)."""
    try:
        svc = services(request)
        info = channel(svc, request, "read_volumetric_data")
        if "filter" in request.query_params or response_media(request) != BLOSC or encodings.wants_jpeg(request):
            return None
        region = region_of(info, request)
        with budget_of(request).reserve(region.nbytes):
            body = stored_body(svc, region)
            if body is not None:
                charge(svc, request, EGRESS, region.nbytes)
            return body
    except Exception:  # noqa: BLE001 - the routed request reports it
        return None


def stored_body(svc: Services, region: Region) -> bytes | None:
    """A single-cuboid GET is answered with the stored chunk's own blosc frame: no decode, no encode."""
    if region.t_span != 1 or region.stored_box != region.box:
        return None
    return svc.store.stored_frame(region.layout, region.res, region.box, region.t_range[0])


def encoded_body(svc: Services, region: Region, ids: np.ndarray | None, media: str = BLOSC) -> bytes:
    data = filtered_region(svc, region, ids)
    data = data if region.four_d else data[0]
    encoders: dict[str, Callable[[np.ndarray], bytes]] = {
        BLOSC: codecs.encode, bodies.BLOSC_PYTHON: bodies.pack_array, bodies.NPYGZ: bodies.save_npygz}
    return encoders[media](data)


def filtered_region(svc: Services, region: Region, ids: np.ndarray | None) -> np.ndarray:
    """The region's (t, z, y, x) voxels, only those of `ids` kept when given (filter=)."""
    data = read_region(svc, region)
    if ids is not None:
        data = np.where(np.isin(data, ids), data, np.zeros((), dtype=data.dtype))
    return data


def read_region(svc: Services, region: Region) -> np.ndarray:
    """(t, z, y, x) voxels of the region; zeros where its box reaches past the level's data."""
    inside = region.stored_box
    if inside == region.box:
        return svc.store.read(region.layout, region.res, region.box, region.t_range)
    out = np.zeros((region.t_span, *region.box.shape_zyx), dtype=region.info.datatype)
    if inside is not None:
        out[(slice(None), *inside.slices_in(region.box))] = svc.store.read(region.layout, region.res, inside,
                                                                           region.t_range)
    return out


async def post_cutout(request: Request):
    """Write a body (blosc, blosc-python or npygz); non-zero voxels replace stored ones, zeros keep them.
    201, empty body."""
    svc = services(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in BLOSC_TYPES + ARRAY_TYPES:
        raise UnsupportedMedia(media)
    region = await run_in_threadpool(_writable_region, svc, request)
    limit = max_body(region, media)
    with budget_of(request).reserve(limit + region.nbytes):  # the body and the array decoded from it
        body = await read_limited(request, limit, lambda size: BossError(
            DATA_DIMENSION_MISMATCH, f"the body has {size}, more than the URL's extent can hold compressed "
                                     f"({limit} bytes): check the array shape"))
        await run_in_threadpool(_write, svc, request, region, body, media)
    return Response(status_code=201)


def max_body(region: Region, media: str) -> int:
    """Longest body the URL's extent can come in: incompressible data grows a little in blosc and zlib,
    and pickles and .npy files add a header."""
    if media in ARRAY_TYPES:
        return region.nbytes + region.nbytes // 1000 + bodies.HEADER_ALLOWANCE + BLOSC_OVERHEAD
    return region.nbytes + BLOSC_OVERHEAD


class UnsupportedMedia(Exception):
    def __init__(self, media: str) -> None:
        super().__init__(f'Unsupported media type "{media}" in request: send application/blosc '
                         f'(or {" or ".join(ARRAY_TYPES)}).')


def _writable_region(svc: Services, request: Request) -> Region:
    info = channel(svc, request, "add_volumetric_data", public_ok=False)
    region = region_of(info, request)
    check_writable(region)
    check_stored(region)
    return region


def _write(svc: Services, request: Request, region: Region, body: bytes, media: str) -> None:
    data = decode_body(region, body, media)
    charge(svc, request, INGRESS, region.nbytes)  # after the body is decoded, as BOSS counts it
    frame = body if media in BLOSC_TYPES else None  # only a raw blosc frame can become a stored chunk
    with racing_delete(svc, region.info):
        svc.store.write(region.layout, region.res, region.box, region.t_range[0], data, frame=frame)
    mark_stale(svc, region.info)


for _suffix in ("", "/{t}"):
    _path = f"/v1/cutout/{CHAN}/{XYZ}{_suffix}"
    router.add_api_route(_path, get_cutout, methods=["GET"], summary="Read a cutout (application/blosc; or blosc-python, npygz)")
    router.add_api_route(_path, post_cutout, methods=["POST"], status_code=201,
                         summary="Write a cutout (application/blosc, blosc-python or npygz body)")


# --- annotation object services ------------------------------------------------------------------------


def annotation_channel(svc: Services, request: Request, perm: str, *, public_ok: bool = True) -> ChannelInfo:
    info = channel(svc, request, perm, public_ok=public_ok)
    if not info.annotation:
        raise BossError(DATATYPE_NOT_SUPPORTED, f"channel {info.channel['name']} is an image channel: ids, "
                                                "bounding boxes and reserved ids exist only on annotation channels")
    return info


def get_ids(request: Request):
    """Distinct non-zero ids in a region, as decimal strings in ascending order."""
    svc = services(request)
    info = annotation_channel(svc, request, "read_volumetric_data", public_ok=False)
    region = region_of(info, request)
    if region.stored_box is None:
        return {"ids": []}
    found = svc.store.ids(region.layout, region.res, region.stored_box, region.t_range)
    return {"ids": [str(int(v)) for v in found]}


for _suffix in ("", "/{t}"):
    router.add_api_route(f"/v1/ids/{CHAN}/{XYZ}{_suffix}", get_ids, methods=["GET"],
                         summary="Ids present in a region of an annotation channel")


@router.get("/v1/reserve/" + CHAN + "/{num}", summary="Reserve a block of new annotation ids")
def reserve(request: Request, num: str):
    svc = services(request)
    info = annotation_channel(svc, request, "add_volumetric_data", public_ok=False)
    count = ascii_int(num, "the number of ids", 1, MAX_RESERVE, TYPE_ERROR)
    return {"start_id": svc.catalog.reserve_ids(info.id, count), "count": num}


@router.get("/v1/boundingbox/" + CHAN + "/{res}/{obj_id}", summary="Bounding box of an annotation id "
            "(?type=loose|tight)")
def bounding_box(request: Request, res: str, obj_id: str):
    svc = services(request)
    kind = request.query_params.get("type", "loose")
    if kind not in ("loose", "tight"):
        raise BossError(INVALID_ARGUMENT, f"type {kind!r} must be loose or tight")
    info = annotation_channel(svc, request, "read_volumetric_data")
    level = parse_res(info, res)
    wanted = ascii_int(obj_id, "id", 0, 2**64 - 1, TYPE_ERROR)
    found = svc.store.bounding_box(info.layout(), level, wanted, kind == "tight")
    if found is None:
        raise BossError(OBJECT_NOT_FOUND, f"id {obj_id} does not occur in channel {info.channel['name']} "
                                          f"at resolution {level}")
    box, t_range = found
    return {"x_range": list(box.x), "y_range": list(box.y), "z_range": list(box.z), "t_range": list(t_range)}

