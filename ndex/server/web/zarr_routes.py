"""`GET /zarr/{c}/{e}/{ch}/...`: a channel as a read-only OME-Zarr v3 group (ndex/zarr_http.py), with
the permission check of a cutout GET (token header, login cookie, or a public channel).

Levels are those built: the base level, and every level once the pyramid is DOWNSAMPLED. Whole
stored chunks leave as the store holds them (its arrays use the same chunking and codecs); edge
chunks are read, padded and encoded; an all-zero chunk is a 404, which zarr readers take as fill.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from ndex import zarr_http
from ndex.server.channels import ChannelInfo
from ndex.server.http_errors import OBJECT_NOT_FOUND, BossError
from ndex.server.routes_data import channel
from ndex.server.services import Services, services

router = APIRouter(tags=["web"])
PREFIX = "/zarr/{c}/{e}/{ch}"



def zarr_channel(info: ChannelInfo) -> zarr_http.ZarrChannel:
    top = info.base + info.experiment["num_hierarchy_levels"] - 1
    built = range(info.base, top + 1) if info.channel["downsample_status"] == "DOWNSAMPLED" else [info.base]
    levels = tuple(zarr_http.Level(res, info.extent_at(res), info.voxel_size_at(res)) for res in built)
    return zarr_http.ZarrChannel(info.channel["name"], info.datatype, info.annotation,
                                 info.experiment["num_time_samples"], info.frame["voxel_unit"], levels)


def readable(request: Request) -> tuple[Services, ChannelInfo, zarr_http.ZarrChannel]:
    svc = services(request)
    info = channel(svc, request, "read_volumetric_data")
    return svc, info, zarr_channel(info)


def json_answer(doc: dict) -> Response:
    return Response(json.dumps(doc), media_type="application/json")


def not_found(what: str) -> BossError:
    return BossError(OBJECT_NOT_FOUND, f"{what} is not part of this zarr group: open its zarr.json for the levels")


def group(request: Request):
    return json_answer(zarr_http.group_json(readable(request)[2]))


def array(request: Request, res: str):
    _, _, zc = readable(request)
    lv = zc.level(int(res)) if res.isdigit() else None
    if lv is None:
        raise not_found(f"level {res}")
    return json_answer(zarr_http.array_json(zc, lv))


def chunk(request: Request, res: str, key: str):
    svc, info, zc = readable(request)
    lv = zc.level(int(res)) if res.isdigit() else None
    found = zarr_http.chunk_region(zc, lv, "c/" + key) if lv is not None else None
    if lv is None or found is None:
        raise not_found(f"{res}/{key}")
    body = chunk_body(svc, info, lv.res, *found)
    return Response(body, media_type="application/octet-stream") if body else Response(status_code=404)


def chunk_body(svc: Services, info: ChannelInfo, res: int, t: int, box) -> bytes | None:
    layout = info.layout()
    if zarr_http.is_whole_chunk(box):
        frame = svc.store.stored_frame(layout, res, box, t)
        if frame is not None:
            return frame
    block = svc.store.read(layout, res, box, (t, t + 1))[0]
    return zarr_http.chunk_bytes(block, info.datatype) if block.any() else None


def add_reads(path: str, endpoint, summary: str | None) -> None:
    """GET (documented, unless summary is None) and HEAD (zarr readers probe with it) of one path."""
    router.add_api_route(path, endpoint, methods=["GET"], summary=summary, include_in_schema=summary is not None)
    router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)


add_reads(PREFIX + "/zarr.json", group, "The channel's OME-Zarr group metadata (zarr v3)")
add_reads(PREFIX, group, None)  # the group's own URL
add_reads(PREFIX + "/{res}/zarr.json", array, "One built level's zarr v3 array metadata")
# chunk keys start with "c/": a wider pattern would make the router redirect probes such as .zmetadata
add_reads(PREFIX + "/{res}/c/{key:path}", chunk, "One chunk (one BOSS cuboid) of a built level")
