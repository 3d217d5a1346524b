"""Authorization routes: `/v1/groups/`, `/v1/permissions/` and a minimal `/v1/sso/` (boss-api.md 9)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ndex.server.auth import Identity
from ndex.server.db import Database
from ndex.server.fields import check_name
from ndex.server.http_errors import INVALID_ROLE, MISSING_ROLE, BossError, invalid
from ndex.server.services import identify, json_body, services
from ndex.server.users import (
    ROLES,
    add_role,
    create_user,
    delete_user,
    known_user_id,
    remove_role,
    roles_of,
    user_id,
    user_row,
)
from ndex.server.values import check_text

router = APIRouter(tags=["authorization"])
GROUP = "/v1/groups/{g}"


# --- groups --------------------------------------------------------------------------------------


@router.get("/v1/groups", summary="Groups the caller belongs to or maintains (?filter=member|maintainer)")
def list_groups(request: Request):
    return {"groups": services(request).groups.list_groups(identify(request), request.query_params.get("filter"))}


@router.get(GROUP, summary="A group's owner and the resources it holds permissions on")
def get_group(request: Request, g: str):
    return services(request).groups.get_group(identify(request), g)


@router.post(GROUP, status_code=201, summary="Create a group (the caller becomes member and maintainer)")
def create_group(request: Request, g: str):
    services(request).groups.create_group(identify(request), g)
    return Response(status_code=201)


@router.delete(GROUP, status_code=204, summary="Delete a group (its creator or an admin)")
def delete_group(request: Request, g: str):
    services(request).groups.delete_group(identify(request), g)
    return Response(status_code=204)


def _roster_routes(roster: str) -> None:
    key = roster  # "members" | "maintainers"

    def listing(request: Request, g: str):
        return {key: services(request).groups.roster(identify(request), g, roster)}

    def check(request: Request, g: str, u: str):
        return {"result": services(request).groups.is_in(identify(request), g, roster, u)}

    def add(request: Request, g: str, u: str):
        services(request).groups.add_to(identify(request), g, roster, u)
        return Response(status_code=204)

    def remove(request: Request, g: str, u: str):
        services(request).groups.remove_from(identify(request), g, roster, u)
        return Response(status_code=204)

    base = f"{GROUP}/{roster}"
    router.add_api_route(base, listing, methods=["GET"], summary=f"List the group's {roster}")
    router.add_api_route(base + "/{u}", check, methods=["GET"], summary=f"Is the user one of the {roster}?")
    router.add_api_route(base + "/{u}", add, methods=["POST"], status_code=204, summary=f"Add to the {roster}")
    router.add_api_route(base + "/{u}", remove, methods=["DELETE"], status_code=204,
                         summary=f"Remove from the {roster}")


_roster_routes("members")
_roster_routes("maintainers")


# --- permissions -----------------------------------------------------------------------------------


@router.get("/v1/permissions", summary="Permission sets (?group=&collection=&experiment=&channel=)")
def list_permissions(request: Request):
    sets = services(request).groups.list_permissions(identify(request), dict(request.query_params))
    return {"permission-sets": sets}


@router.post("/v1/permissions", status_code=201, summary="Grant permissions on a resource to a group")
async def add_permissions(request: Request):
    ident, body = identify(request), await json_body(request)
    await run_in_threadpool(services(request).groups.add_permissions, ident, body)
    return Response(status_code=201)


@router.patch("/v1/permissions", summary="Replace a group's permissions on a resource")
async def replace_permissions(request: Request):
    ident, body = identify(request), await json_body(request)
    await run_in_threadpool(services(request).groups.replace_permissions, ident, body)
    return Response(status_code=200)


@router.delete("/v1/permissions", status_code=204, summary="Revoke a group's permissions on a resource")
def delete_permissions(request: Request):
    services(request).groups.delete_permissions(identify(request), dict(request.query_params))
    return Response(status_code=204)


# --- users and roles (local accounts; tokens come from `ndex token create`) ---------------------------


def _user_manager(request: Request, target: str | None = None) -> Identity:
    ident = identify(request)
    if not (ident.has_role("user-manager") or (target is not None and ident.username == target)):
        raise BossError(MISSING_ROLE, f"{ident.username} needs the role user-manager (or admin) for this request")
    return ident


@router.get("/v1/sso/user/{u}", summary="A user's record (Keycloak-like shape)")
def get_user(request: Request, u: str):
    _user_manager(request, u)
    with services(request).db.begin() as conn:
        row = user_row(conn, u)
        return {"username": row.username, "firstName": row.first_name, "lastName": row.last_name,
                "email": row.email, "realmRoles": list(roles_of(conn, row.id))}


@router.post("/v1/sso/user/{u}", status_code=201, summary="Create a user (no token; use `ndex token create`)")
async def add_user(request: Request, u: str):
    _user_manager(request)
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object with first_name, last_name, email")
    check_name(u, "user name")
    await run_in_threadpool(_create_user, services(request).db, u, body)
    return Response(status_code=201)


def _create_user(db: Database, u: str, body: dict) -> None:
    with db.begin() as conn:
        if user_id(conn, u) is not None:
            raise BossError(7001, f"user {u!r} already exists", status=409)
        create_user(conn, u, **{key: check_text(str(body.get(key, "")), key) for key in (  # type: ignore[arg-type]
            "first_name", "last_name", "email")})


@router.delete("/v1/sso/user/{u}", status_code=204, summary="Delete a user and their tokens (admin)")
def remove_user(request: Request, u: str):
    ident = identify(request)
    services(request).auth.require_role(ident, "admin")
    with services(request).db.begin() as conn:
        delete_user(conn, known_user_id(conn, u))
    services(request).auth.forget()
    return Response(status_code=204)


@router.get("/v1/sso/user-role/{u}", summary="A user's roles")
def get_roles(request: Request, u: str):
    _user_manager(request, u)
    with services(request).db.begin() as conn:
        return JSONResponse(list(roles_of(conn, known_user_id(conn, u))))


def _check_role_change(ident: Identity, role: str) -> None:
    if role not in ROLES or role == "admin":
        raise BossError(INVALID_ROLE, f"role {role!r} cannot be granted or revoked here: use "
                                      "user-manager or resource-manager (admins come from `ndex token create`)")
    if role == "user-manager" and not ident.admin:
        raise BossError(MISSING_ROLE, "only an admin may grant or revoke user-manager")


@router.get("/v1/sso/user-role/{u}/{role}", summary="Does the user hold the role?")
def has_role(request: Request, u: str, role: str):
    _user_manager(request, u)
    if role not in ROLES:
        raise BossError(INVALID_ROLE, f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    with services(request).db.begin() as conn:
        return JSONResponse(role in roles_of(conn, known_user_id(conn, u)))


@router.post("/v1/sso/user-role/{u}/{role}", status_code=201, summary="Grant a role")
def grant_role(request: Request, u: str, role: str):
    ident = _user_manager(request)
    _check_role_change(ident, role)
    with services(request).db.begin() as conn:
        add_role(conn, known_user_id(conn, u), role)
    services(request).auth.forget()
    return Response(status_code=201)


@router.delete("/v1/sso/user-role/{u}/{role}", status_code=204, summary="Revoke a role")
def revoke_role(request: Request, u: str, role: str):
    ident = _user_manager(request)
    _check_role_change(ident, role)
    with services(request).db.begin() as conn:
        remove_role(conn, known_user_id(conn, u), role)
    services(request).auth.forget()
    return Response(status_code=204)
