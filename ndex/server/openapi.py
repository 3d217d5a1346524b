"""The OpenAPI description completed: every path template's parameters and the query strings routes read.

Most routes take the raw `Request` and read `request.path_params` or `request.query_params` themselves
(BOSS's URLs carry names, ranges and flags the views parse at the edge), so FastAPI cannot see them.
Declaring them here makes /docs truthful and lets API fuzzers (schemathesis, tests/server/
test_fuzz_routes.py) reach every operation.
"""
from __future__ import annotations

import re

from fastapi import FastAPI

PATH_PARAM = re.compile(r"{(\w+)}")
# query parameters read from request.query_params, by the first path segment after /v1/ and method
QUERY = {
    ("cutout", "get"): ("filter", "iso"),
    ("cutout", "post"): ("iso",),
    ("ids", "get"): ("iso",),
    ("boundingbox", "get"): ("type",),
    ("downsample", "get"): ("iso",),
    ("meta", "get"): ("key",),
    ("meta", "post"): ("key", "value"),
    ("meta", "put"): ("key", "value"),
    ("meta", "delete"): ("key",),
    ("groups", "get"): ("filter",),
    ("permissions", "get"): ("group", "collection", "experiment", "channel"),
    ("permissions", "delete"): ("group", "collection", "experiment", "channel"),
}
JSON_BODY = {"collection", "coord", "permissions", "sso"}  # first segments whose POST/PUT/PATCH take JSON


def complete_openapi(app: FastAPI) -> None:
    """Wrap `app.openapi` so that the generated description declares what the views read themselves."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    _complete(path, method, operation)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def _complete(path: str, method: str, operation: dict) -> None:
    params = operation.setdefault("parameters", [])
    have = {(p["in"], p["name"]) for p in params}
    section = path.split("/")[2] if path.startswith("/v1/") else ""
    wanted = [("path", name) for name in PATH_PARAM.findall(path)]
    wanted += [("query", name) for name in QUERY.get((section, method), ())]
    for where, name in wanted:
        if (where, name) not in have:
            params.append({"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}})
    if method not in ("post", "put", "patch") or "requestBody" in operation or "to_black" in path:
        return
    if section == "cutout":
        binary = {"schema": {"type": "string", "format": "binary"}}
        content = {media: binary for media in ("application/blosc", "application/blosc-python", "application/npygz")}
    elif section in JSON_BODY:
        content = {"application/json": {"schema": {"type": "object"}}}
    else:
        return
    operation["requestBody"] = {"required": section == "cutout", "content": content}
