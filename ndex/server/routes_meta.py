"""Metadata routes (boss-api.md 6): `/v1/meta/{c}[/{e}[/{ch}]]`, key and value in the query string."""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ndex.server.http_errors import invalid
from ndex.server.services import identify, services
from ndex.server.values import MAX_LONG_TEXT, MAX_TEXT, check_text

router = APIRouter(tags=["metadata"])
PATHS = ("/v1/meta/{c}", "/v1/meta/{c}/{e}", "/v1/meta/{c}/{e}/{ch}")


def _path(request: Request) -> tuple[str, ...]:
    params = request.path_params
    return tuple(params[k] for k in ("c", "e", "ch") if k in params)


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None or (name == "key" and not value):
        raise invalid(f"the query string needs {name}=...: e.g. ?key=K" + ("&value=V" if name == "value" else ""))
    return check_text(value, name, MAX_TEXT if name == "key" else MAX_LONG_TEXT)


def meta_get(request: Request):
    """List the keys, or with ?key=K get one value."""
    ident, svc = identify(request), services(request)
    if "key" not in request.query_params:
        return {"keys": svc.meta.list_keys(ident, _path(request))}
    key = _param(request, "key")
    return {"key": key, "value": svc.meta.get(ident, _path(request), key)}


def meta_post(request: Request):
    """Create a key (?key=K&value=V); 400 if it exists."""
    ident = identify(request)
    services(request).meta.create(ident, _path(request), _param(request, "key"), _param(request, "value"))
    return Response(status_code=201)


def meta_put(request: Request):
    """Change an existing key's value (?key=K&value=V)."""
    ident = identify(request)
    services(request).meta.update(ident, _path(request), _param(request, "key"), _param(request, "value"))
    return Response(status_code=200)


def meta_delete(request: Request):
    """Delete a key (?key=K)."""
    services(request).meta.delete(identify(request), _path(request), _param(request, "key"))
    return Response(status_code=204)


for _p in PATHS:
    router.add_api_route(_p, meta_get, methods=["GET"], summary="List metadata keys or get one (?key=K)")
    router.add_api_route(_p, meta_post, methods=["POST"], status_code=201, summary="Create a metadata key")
    router.add_api_route(_p, meta_put, methods=["PUT"], summary="Update a metadata key")
    router.add_api_route(_p, meta_delete, methods=["DELETE"], status_code=204, summary="Delete a metadata key")
