"""`create_app(settings, store=None, db=None)`: the BOSS-v1-compatible ASGI app of `ndex serve`.

Every error leaves as BOSS's envelope `{"status", "code", "message"}` except the two DRF shapes BOSS
itself uses (401 and 405 as `{"detail"}`); an unexpected exception is logged and answered 500/9002,
and the server keeps serving.
"""
from __future__ import annotations

import logging
import os
import re
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ndex import __version__
from ndex.errors import OutOfBounds, UsageError
from ndex.server import (
    limits,
    migrate,
    routes_auth,
    routes_data,
    routes_downsample,
    routes_image,
    routes_meta,
    routes_resources,
    web,
)
from ndex.server.auth import Authorizer
from ndex.server.catalog import Catalog
from ndex.server.channels import drop_data
from ndex.server.chunklocks import locks_for
from ndex.server.db import Database
from ndex.server.groups import GroupService
from ndex.server.http_errors import (
    ACCESS_DENIED_UNKNOWN,
    BOSS_SYSTEM_ERROR,
    INVALID_CUTOUT_ARGS,
    INVALID_POST_ARGUMENT,
    INVALID_URL,
    UNHANDLED_EXCEPTION,
    UNSUPPORTED_VERSION,
    BossError,
    NotAuthenticated,
    detail,
    envelope,
)
from ndex.server.jobs import DownsampleJobs
from ndex.server.metadata import MetadataService
from ndex.server.openapi import complete_openapi
from ndex.server.quota import DailyQuota, QuotaExceeded
from ndex.server.services import Services
from ndex.server.settings import ServerSettings
from ndex.server.users import ensure_builtin_groups
from ndex.server.volumes import VolumeStore

log = logging.getLogger(__name__)
ROUTE_MODULES = (routes_resources, routes_data, routes_downsample, routes_image, routes_meta, routes_auth)
SETTINGS_ENV = "NDEX_SERVE_SETTINGS"  # JSON settings for `app_from_env` (uvicorn workers import the app)


def create_app(settings: ServerSettings, store: VolumeStore | None = None, db: Database | None = None) -> FastAPI:
    """The app; collaborators not passed in are built from `settings` and closed at shutdown."""
    own_db, own_store = db is None, store is None
    db = db or Database(settings.database_url, upgrade_hint=settings.upgrade_hint)
    with db.begin() as conn:
        ensure_builtin_groups(conn)
    store = store or VolumeStore(settings.volume_url, cache_bytes=settings.store_cache_mb * 2**20,
                                 fsync=settings.fsync, locks=locks_for(db.engine))
    migrate.upgrade_store(store, upgrade_hint=settings.upgrade_hint)
    svc = build_services(settings, db, store)
    if settings.sqlite:
        svc.jobs.leases.forget_all()  # one server per SQLite directory (the lock): no other process holds one

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        svc.jobs.start_keeper()  # only a serving app adopts jobs (not one built and dropped by a test or tool)
        yield
        svc.jobs.close()
        if own_store:
            store.close()
        if own_db:
            db.close()

    app = FastAPI(title="ndex serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A BOSS API v1 compatible spatial database (see README.md).")
    app.state.services = svc
    install_error_handlers(app)
    limits.install(app, settings.request_timeout, settings.client_timeout, settings.cutout_memory_mb)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    add_misc_routes(app)
    complete_openapi(app)
    app.add_middleware(CutoutFastPath)  # the last added is the outermost: CatchAll, RequestGuard, NormalisePath, this
    app.add_middleware(NormalisePath)
    app.add_middleware(limits.RequestGuard, request_timeout=settings.request_timeout,
                       client_timeout=settings.client_timeout)
    app.add_middleware(CatchAll)
    web.install(app, settings)  # /docs offline, home page, viewer, /zarr/; /latest/ and CORS outermost
    return app


def build_services(settings: ServerSettings, db: Database, store: VolumeStore) -> Services:
    auth = Authorizer(db, settings.cache_seconds)

    def channel_deleted(channel: dict) -> None:
        jobs.abandon(channel["id"])  # a pyramid build must not re-create arrays of a deleted channel
        drop_data(store, channel)

    catalog = Catalog(db, auth, allow_sourceless_annotations=settings.allow_sourceless_annotations,
                      cache_seconds=settings.cache_seconds, on_channel_deleted=channel_deleted)
    jobs = DownsampleJobs(catalog, store, settings.downsample_workers, settings.downsample_max_voxels,
                          settings.job_lease_seconds)
    return Services(settings, db, auth, catalog, MetadataService(catalog), store, jobs, GroupService(catalog, auth),
                    quota=DailyQuota(settings.quota_per_day))


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from the NDEX_SERVE_SETTINGS environment variable."""
    return create_app(ServerSettings.from_json(os.environ[SETTINGS_ENV]))


def add_misc_routes(app: FastAPI) -> None:
    @app.get("/ping", tags=["misc"], summary="Health check; no authentication")
    def ping(request: Request):
        return {"ip": request.url.hostname or "127.0.0.1"}

    @app.api_route("/v0.{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    def retired(rest: str):
        raise BossError(UNSUPPORTED_VERSION, "API versions 0.x are retired: use /v1/")


# --- errors ---------------------------------------------------------------------------------------


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BossError)
    async def boss_error(_request, exc: BossError):
        return envelope(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(QuotaExceeded)
    async def quota_exceeded(request, exc: QuotaExceeded):
        # BOSS's binary renderers send its envelope with code 3004, its JSON renderer DRF's {"detail"};
        # either way without Retry-After: the quota comes back tomorrow, not in seconds
        if _wants_json(request.headers.get("accept", "")):
            return detail(429, exc.message)
        return envelope(429, ACCESS_DENIED_UNKNOWN, exc.message)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(_request, exc: NotAuthenticated):
        return detail(401, exc.detail, {"WWW-Authenticate": 'Token realm="api"'})

    @app.exception_handler(routes_data.UnsupportedMedia)
    async def unsupported_media(_request, exc):
        return detail(415, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        if exc.status_code == 405:
            return detail(405, f'Method "{request.method}" not allowed.', dict(exc.headers or {}))
        if exc.status_code == 404:
            return envelope(404, INVALID_URL, f"no such route: {request.url.path} (see /docs for the API)")
        return envelope(exc.status_code, INVALID_URL, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
        return envelope(400, INVALID_POST_ARGUMENT, f"invalid request: {problems}")

    @app.exception_handler(OutOfBounds)
    async def out_of_bounds(_request, exc: OutOfBounds):
        return envelope(400, INVALID_CUTOUT_ARGS, str(exc))

    @app.exception_handler(UsageError)
    async def usage_error(_request, exc: UsageError):
        return envelope(400, BOSS_SYSTEM_ERROR, str(exc))


def _wants_json(accept: str) -> bool:
    """Would BOSS's content negotiation pick its JSON renderer for this Accept header?"""
    return "application/json" in accept and not any(t in accept for t in ("blosc", "npygz", "image/", "*/*"))


class CatchAll:
    """Outermost guard: an exception nothing else handled becomes 500/9002; the server keeps serving."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = envelope(500, UNHANDLED_EXCEPTION, f"internal server error ({type(exc).__name__}); "
                                                          "the server log has the details")
            await response(scope, receive, send)


class NormalisePath:
    """BOSS routes take an optional trailing slash and intern sends `/v1/collection//`: merge repeated
    slashes and drop the trailing one before routing, so one declared path serves every spelling."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = re.sub(r"/{2,}", "/", scope["path"])
            if len(path) > 1 and path.endswith("/"):
                path = path[:-1]
            if path != scope["path"]:
                scope = {**scope, "path": path, "raw_path": path.encode("utf-8")}
        await self.app(scope, receive, send)


class CutoutFastPath:
    """Answers a cutout GET of one stored cuboid (most of what ndpull and intern send) before the
    router: the framework's routing costs the event loop about as much per request as sending the
    4 MiB body does, and the loop, not the store, limits GET throughput. It matches the GET cutout
    routes' own path patterns, inside NormalisePath and CatchAll. Any other request, and any such
    request that is not a stored chunk or meets an error, goes on to the router, which gives the same
    answer (`routes_data.stored_cutout` is `get_cutout`'s first branch)."""

    def __init__(self, app) -> None:
        self.app = app
        self.paths = [route.path_regex for route in routes_data.router.routes
                      if isinstance(route, APIRoute) and route.endpoint is routes_data.get_cutout]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            found = next((m for path in self.paths if (m := path.match(scope["path"]))), None)
            if found is not None:
                request = Request({**scope, "path_params": found.groupdict()})
                body = await run_in_threadpool(routes_data.stored_cutout, request)
                if body is not None:
                    return await Response(body, media_type="application/blosc")(scope, receive, send)
        await self.app(scope, receive, send)
