"""What BOSS web clients (neuroglancer's boss:// datasource, browser tools) need beyond intern's API:
the `/latest/` alias of `/v1/`, and CORS on every answer, errors included.

Both are ASGI middlewares outside the app's own error handling, so a 4xx or 500 envelope carries the
CORS headers too (a browser hides an answer without them, and the user sees "network error" instead
of BOSS's message).
"""
from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response

ALLOWED_HEADERS = "Authorization, Content-Type, Accept, Range"
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
EXPOSED_HEADERS = "Content-Length, Content-Type, Content-Range, ETag"
PUBLIC_PREFIXES = ("/zarr/",)  # read-only data any page may load, like a static zarr host (no cookies: '*')


class LatestAlias:
    """`/latest/...` answers exactly as `/v1/...` (BOSS routes both to the newest API version)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (scope["path"] == "/latest" or scope["path"].startswith("/latest/")):
            path = "/v1" + scope["path"][len("/latest"):]
            scope = {**scope, "path": path, "raw_path": path.encode("utf-8")}
        await self.app(scope, receive, send)


def parse_origins(text: str) -> frozenset[str]:
    """`--cors_origins`: '' (none), '*' (any) or a comma list of origins like https://host:port."""
    return frozenset(o.strip().rstrip("/") for o in text.split(",") if o.strip())


class Cors:
    """CORS headers for allowed origins on every answer, and OPTIONS preflights answered here.

    `origins` comes from --cors_origins; paths under PUBLIC_PREFIXES allow any origin regardless,
    since a viewer page served from another port reads them (they are never answered on cookies
    for another origin: a browser sends no cookies with a '*' CORS read)."""

    def __init__(self, app, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    def allowed(self, origin: str, path: str) -> str | None:
        """The Access-Control-Allow-Origin value for this origin and path, None if not allowed."""
        if "*" in self.origins or path.startswith(PUBLIC_PREFIXES):
            return "*"
        return origin if origin in self.origins else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allow = self.allowed(origin, scope["path"]) if origin else None
        if allow is None:
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            return await self.preflight(allow)(scope, receive, send)

        async def with_cors(message):
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = allow
                out["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                if allow != "*":
                    out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    def preflight(allow: str) -> Response:
        headers = {"Access-Control-Allow-Origin": allow, "Access-Control-Allow-Methods": ALLOWED_METHODS,
                   "Access-Control-Allow-Headers": ALLOWED_HEADERS, "Access-Control-Max-Age": "600"}
        if allow != "*":
            headers["Vary"] = "Origin"
        return Response(status_code=204, headers=headers)
