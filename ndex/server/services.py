"""The collaborators every route uses, bundled once per app, and the small request helpers routes share."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ndex.server.auth import Authorizer, Identity
from ndex.server.catalog import Catalog
from ndex.server.db import Database
from ndex.server.groups import GroupService
from ndex.server.http_errors import invalid
from ndex.server.jobs import DownsampleJobs
from ndex.server.metadata import MetadataService
from ndex.server.settings import ServerSettings
from ndex.server.volumes import VolumeStore

MAX_JSON_BYTES = 2**20  # resource and permission bodies are a few hundred bytes


@dataclass(frozen=True)
class Services:
    settings: ServerSettings
    db: Database
    auth: Authorizer
    catalog: Catalog
    meta: MetadataService
    store: VolumeStore
    jobs: DownsampleJobs
    groups: GroupService


def services(request: Request) -> Services:
    return request.app.state.services


def identify(request: Request) -> Identity:
    """The caller (401 for a bad token, or for an anonymous unsafe verb)."""
    return services(request).auth.identify(request.method, request.headers.get("authorization"))


async def json_body(request: Request) -> Any:
    """The parsed JSON body (None when empty); malformed JSON is a 400/1003 with the parser's reason."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise invalid(f"the JSON body has {declared} bytes; resource bodies are small (at most {MAX_JSON_BYTES})")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise invalid(f"the JSON body exceeds {MAX_JSON_BYTES} bytes; resource bodies are small")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"the request body is not valid JSON ({exc}): send a JSON object") from None
