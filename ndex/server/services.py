"""The collaborators every route uses, bundled once per app, and the small request helpers routes share."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ndex.server.auth import Authorizer, Identity
from ndex.server.catalog import Catalog
from ndex.server.channels import ChannelInfo, drop_data
from ndex.server.db import Database
from ndex.server.groups import GroupService
from ndex.server.http_errors import invalid, not_found
from ndex.server.jobs import DownsampleJobs
from ndex.server.metadata import MetadataService
from ndex.server.quota import DailyQuota
from ndex.server.settings import ServerSettings
from ndex.server.values import parse_json
from ndex.server.volumes import VolumeStore
from ndex.server.web.session import cookie_authorization

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
    quota: DailyQuota = field(default_factory=lambda: DailyQuota(0))


def services(request: Request) -> Services:
    return request.app.state.services


def identify(request: Request) -> Identity:
    """The caller (401 for a bad token, or for an anonymous unsafe verb); the header wins over the
    home page's login cookie."""
    authorization = request.headers.get("authorization") or cookie_authorization(request)
    return services(request).auth.identify(request.method, authorization)


@contextmanager
def racing_delete(svc: Services, info: ChannelInfo) -> Iterator[None]:
    """Wrap a write into a channel's arrays so that a write racing a DELETE of the channel either lands
    before the delete (which then removes it) or fails, and never outlives the channel in the store.

    The DELETE commits the row first and clears the store after. Once the write is done, the row is
    looked up again: found, the write finished before that commit, so the clearing sees it; gone, the
    write may have landed after the clearing, so it removes the channel's arrays itself and answers 404.
    A write that failed because the arrays vanished under it is answered the same way.
    """
    try:
        yield
    except Exception:
        if svc.catalog.live(info.channel):
            raise
        _gone(svc, info)
    if not svc.catalog.live(info.channel):
        _gone(svc, info)


def _gone(svc: Services, info: ChannelInfo) -> None:
    drop_data(svc.store, info.channel)
    svc.catalog.changed()
    raise not_found(f"channel {info.collection['name']}/{info.experiment['name']}/{info.channel['name']} "
                    "(deleted while this write ran)")


async def read_limited(request: Request, limit: int, refuse: Callable[[str], Exception]) -> bytes:
    """The request body, refused as `refuse(size)` (size: '5000 bytes' or 'more than N bytes') without
    reading it all when it is longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise refuse(f"{declared} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refuse(f"more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    """The parsed JSON body (None when empty); malformed or unstorable JSON is a 400/1003 (values.parse_json)."""
    raw = await read_limited(request, MAX_JSON_BYTES, lambda size: invalid(
        f"the JSON body has {size}; resource bodies are small (at most {MAX_JSON_BYTES} bytes)"))
    if not raw.strip():
        return None
    return parse_json(raw)
