"""Downsample routes (boss-api.md 5): GET status and pyramid geometry, POST to start, DELETE to cancel."""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ndex.geometry import BOSS_CUBOID
from ndex.server.channels import ChannelInfo
from ndex.server.http_errors import BOSS_SYSTEM_ERROR, BossError
from ndex.server.jobs import XY_DIFFER
from ndex.server.routes_data import channel, flag
from ndex.server.services import identify, services

router = APIRouter(tags=["downsample"])
PATH = "/v1/downsample/{c}/{e}/{ch}"


def pyramid(info: ChannelInfo, iso: bool) -> dict:
    """Voxel size, extent and cuboid size of every level 0 .. num_hierarchy_levels - 1, keyed by level."""
    levels = range(info.experiment["num_hierarchy_levels"])
    use = [info.uses_iso(r, iso) for r in levels]
    return {
        "num_hierarchy_levels": len(levels),
        "voxel_size": {str(r): list(info.voxel_size_at(r, u)) for r, u in zip(levels, use)},
        "extent": {str(r): list(info.extent_at(r, u)) for r, u in zip(levels, use)},
        "cuboid_size": {str(r): list(BOSS_CUBOID) for r in levels},
    }


@router.get(PATH, summary="Downsample status and the resolution pyramid's geometry (?iso=true)")
def downsample_status(request: Request):
    svc = services(request)
    info = channel(svc, request, "read_volumetric_data")
    if info.xy_voxels_differ:  # as BOSS: no isotropic level, so no pyramid geometry either
        raise BossError(BOSS_SYSTEM_ERROR, f"Error while getting downsampled voxel dimensions: {XY_DIFFER}")
    body = {"status": svc.catalog.status(info.id), **pyramid(info, flag(request, "iso"))}
    progress = svc.jobs.progress(info.id)
    if progress is not None:
        body["progress"] = {"done": progress[0], "total": progress[1]}  # ndex extension: blocks built so far
    return body


@router.post(PATH, status_code=201, summary="Start building the resolution pyramid (background job)")
def downsample_start(request: Request):
    svc = services(request)
    info = channel(svc, request, "add_volumetric_data", public_ok=False)
    svc.jobs.start(identify(request), info)
    return Response(status_code=201)


@router.delete(PATH, status_code=204, summary="Cancel a queued or running downsample")
def downsample_cancel(request: Request):
    svc = services(request)
    info = channel(svc, request, "delete_volumetric_data", public_ok=False)
    svc.jobs.cancel(info)
    return Response(status_code=204)
