"""Project service routes: collections, experiments, channels and coordinate frames (boss-api.md 2).

Paths are declared without a trailing slash; the app's path normaliser strips it (and merges `//`)
before routing, so both forms reach the same view. GET/DELETE views are plain functions (FastAPI runs
them in its thread pool); POST/PUT read the body asynchronously and hand the work to the pool.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ndex.server.services import identify, json_body, services

router = APIRouter(tags=["resources"])
COLL = "/v1/collection/{c}"
EXP = COLL + "/experiment/{e}"
CHAN = EXP + "/channel/{ch}"


def _created(payload: dict) -> JSONResponse:
    return JSONResponse(payload, status_code=201)


# --- lists ---------------------------------------------------------------------------------------


@router.get("/v1/collection", summary="List collections the caller may read (and public ones)")
def list_collections(request: Request):
    return {"collections": services(request).catalog.list_collections(identify(request))}


@router.get(COLL + "/experiment", summary="List the experiments of a collection")
def list_experiments(request: Request, c: str):
    return {"experiments": services(request).catalog.list_experiments(identify(request), c)}


@router.get(EXP + "/channel", summary="List the channels of an experiment")
def list_channels(request: Request, c: str, e: str):
    return {"channels": services(request).catalog.list_channels(identify(request), c, e)}


@router.get("/v1/coord", summary="List coordinate frames (?owner=true: only the caller's)")
def list_frames(request: Request, owner: str = ""):
    ident = identify(request)
    mine = ident.username if owner.lower() == "true" else None
    return {"coords": services(request).catalog.list_frames(mine)}


# --- collection / experiment / channel -------------------------------------------------------------


@router.get(COLL, summary="Get a collection")
def get_collection(request: Request, c: str):
    return services(request).catalog.get(identify(request), c)


@router.get(EXP, summary="Get an experiment")
def get_experiment(request: Request, c: str, e: str):
    return services(request).catalog.get(identify(request), c, e)


@router.get(CHAN, summary="Get a channel")
def get_channel(request: Request, c: str, e: str, ch: str):
    return services(request).catalog.get(identify(request), c, e, ch)


@router.post(COLL, status_code=201, summary="Create a collection (body: description, public)")
async def create_collection(request: Request, c: str):
    ident, body = identify(request), await json_body(request)
    return _created(await run_in_threadpool(services(request).catalog.create_collection, ident, c, body))


@router.post(EXP, status_code=201, summary="Create an experiment (body: coord_frame required)")
async def create_experiment(request: Request, c: str, e: str):
    ident, body = identify(request), await json_body(request)
    return _created(await run_in_threadpool(services(request).catalog.create_experiment, ident, c, e, body))


@router.post(CHAN, status_code=201, summary="Create a channel (body: type and datatype required)")
async def create_channel(request: Request, c: str, e: str, ch: str):
    ident, body = identify(request), await json_body(request)
    return _created(await run_in_threadpool(services(request).catalog.create_channel, ident, c, e, ch, body))


async def _update(request: Request, c: str, e: str | None = None, ch: str | None = None):
    ident, body = identify(request), await json_body(request)
    return await run_in_threadpool(services(request).catalog.update, ident, c, e, ch, body)


@router.put(COLL, summary="Update or rename a collection")
async def update_collection(request: Request, c: str):
    return await _update(request, c)


@router.put(EXP, summary="Update or rename an experiment")
async def update_experiment(request: Request, c: str, e: str):
    return await _update(request, c, e)


@router.put(CHAN, summary="Update or rename a channel")
async def update_channel(request: Request, c: str, e: str, ch: str):
    return await _update(request, c, e, ch)


@router.delete(COLL, status_code=204, summary="Delete a collection (it must have no experiments)")
def delete_collection(request: Request, c: str):
    services(request).catalog.delete(identify(request), c)
    return Response(status_code=204)


@router.delete(EXP, status_code=204, summary="Delete an experiment (it must have no channels)")
def delete_experiment(request: Request, c: str, e: str):
    services(request).catalog.delete(identify(request), c, e)
    return Response(status_code=204)


@router.delete(CHAN, status_code=204, summary="Delete a channel and its data")
def delete_channel(request: Request, c: str, e: str, ch: str):
    services(request).catalog.delete(identify(request), c, e, ch)
    return Response(status_code=204)


# --- coordinate frames -----------------------------------------------------------------------------


@router.get("/v1/coord/{cf}", summary="Get a coordinate frame")
def get_frame(request: Request, cf: str):
    identify(request)
    return services(request).catalog.get_frame(cf)


@router.post("/v1/coord/{cf}", status_code=201, summary="Create a coordinate frame")
async def create_frame(request: Request, cf: str):
    ident, body = identify(request), await json_body(request)
    return _created(await run_in_threadpool(services(request).catalog.create_frame, ident, cf, body))


@router.put("/v1/coord/{cf}", summary="Rename a coordinate frame or change its description")
async def update_frame(request: Request, cf: str):
    ident, body = identify(request), await json_body(request)
    return await run_in_threadpool(services(request).catalog.update_frame, ident, cf, body)


@router.delete("/v1/coord/{cf}", status_code=204, summary="Delete a coordinate frame no experiment uses")
def delete_frame(request: Request, cf: str):
    services(request).catalog.delete_frame(identify(request), cf)
    return Response(status_code=204)
