"""Limits every request meets before and while a route runs (SECURITY.md lists them with their flags).

`RequestGuard`, an ASGI middleware just inside the app's catch-all, refuses before routing what no
route can take: a path or query string that is not valid UTF-8 or holds control characters, a path
segment longer than any name, a declared body larger than any route accepts. It then gives the
request a deadline (`--request_timeout`), which scans check with `check_deadline()`, and makes every
read of the body wait at most `--client_timeout` seconds for the next piece (slow-client protection).

`install` also maps the database's own refusals, which a race or a value the validation missed
can still meet, to BOSS's 400 so they never surface as a 500: the transaction was rolled back, so
nothing was saved.
"""
from __future__ import annotations

import logging
import threading
import time
from contextvars import ContextVar
from urllib.parse import unquote_to_bytes

import anyio
import sqlalchemy.exc
from fastapi import FastAPI

from ndex.errors import NdexError
from ndex.server.budget import CutoutBudget
from ndex.server.http_errors import (
    BOSS_SYSTEM_ERROR,
    INVALID_POST_ARGUMENT,
    INVALID_URL,
    REQUEST_TOO_LARGE,
    BossError,
    envelope,
)

MAX_SEGMENT = 1024  # names are at most 255: a longer one still gets its own 400 from the name check
MAX_PATH = 4096
MAX_QUERY = 256 * 1024  # a metadata value (values.MAX_LONG_TEXT characters) percent-encoded
MAX_BODY = 2**31 + 2**26  # the largest body any route accepts: a cutout of one blosc-1 frame, npygz-encoded
log = logging.getLogger(__name__)
_deadline: ContextVar[tuple[float | None, threading.Event] | None] = ContextVar("ndex_request_deadline", default=None)


class OutOfTime(NdexError):
    """A request ran past its deadline (`--request_timeout`); raised by `check_deadline`."""


class ServerStopping(OutOfTime):
    """The server is shutting down (SIGTERM): work still running stops at its next deadline check."""


class ClientTooSlow(NdexError):
    """The client sent no part of the body for `--client_timeout` seconds."""


def check_deadline() -> None:
    """Raise OutOfTime if the current request's deadline has passed; free outside requests.

    The deadline travels in a context variable, which Starlette copies into the worker thread of a
    route, so store loops can call this without knowing about HTTP."""
    limit = _deadline.get()
    if limit is None:
        return
    end, stopping = limit
    if stopping.is_set():
        raise ServerStopping("the server is stopping")
    if end is not None and time.monotonic() > end:
        raise OutOfTime("the request ran longer than the server's --request_timeout")


def install(app: FastAPI, request_timeout: float, client_timeout: float, cutout_memory_mb: int) -> None:
    """The cutout memory budget and the error mapping of this module (the app adds `RequestGuard` itself,
    where it belongs in its middleware order)."""
    app.state.cutout_budget = CutoutBudget(cutout_memory_mb * 2**20)

    @app.exception_handler(OutOfTime)
    async def out_of_time(_request, exc):
        if isinstance(exc, ServerStopping):
            return envelope(503, BOSS_SYSTEM_ERROR, "the server is stopping: retry shortly", {"Retry-After": "5"})
        return envelope(413, REQUEST_TOO_LARGE, f"the request needed more than the server's {request_timeout:g} s "
                                                "(--request_timeout): ask for a smaller region")

    @app.exception_handler(ClientTooSlow)
    async def too_slow(_request, _exc):
        return envelope(408, INVALID_URL, f"no part of the body arrived for {client_timeout:g} s (--client_timeout):"
                                          " send the body without pausing", {"Connection": "close"})

    @app.exception_handler(sqlalchemy.exc.IntegrityError)
    async def integrity(request, exc):
        log.warning("%s %s refused by the database: %s", request.method, request.url.path, exc.orig)
        return envelope(400, INVALID_POST_ARGUMENT, "the change conflicts with an existing object (another request "
                                                    "may have created the same name just now): nothing was saved; "
                                                    "pick another name or read the current state")

    @app.exception_handler(sqlalchemy.exc.DataError)
    async def data_error(request, exc):  # validation should have refused it first: logged to be fixed there
        log.warning("%s %s refused by the database: %s", request.method, request.url.path, exc.orig)
        return envelope(400, INVALID_POST_ARGUMENT, "a value does not fit the database (too long or out of range):"
                                                    " nothing was saved")


class RequestGuard:
    """Refuses malformed requests before routing; sets the deadline and the body read timeout."""

    def __init__(self, app, request_timeout: float, client_timeout: float) -> None:
        self.app = app
        self.request_timeout = request_timeout
        self.client_timeout = client_timeout
        self.stopping = threading.Event()  # set at lifespan shutdown: scans in worker threads stop

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, self._watch_shutdown(receive), send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        problem = refusal(scope)
        if problem is not None:
            return await envelope(problem.status, problem.code, problem.message)(scope, receive, send)
        end = time.monotonic() + self.request_timeout if self.request_timeout > 0 else None
        token = _deadline.set((end, self.stopping))
        try:
            await self.app(scope, self._timed(receive), send)
        finally:
            _deadline.reset(token)

    def _watch_shutdown(self, receive):
        async def watching_receive():
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                self.stopping.set()
            return message

        return watching_receive

    def _timed(self, receive):
        if self.client_timeout <= 0:
            return receive

        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:  # later reads wait for a disconnect (a streaming answer): no limit on those
                return await receive()
            with anyio.move_on_after(self.client_timeout) as scope:
                message = await receive()
                body_done = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            if scope.cancelled_caught:
                raise ClientTooSlow(f"no body for {self.client_timeout} s")
            return None  # unreachable: the block either returned or was cancelled

        return timed_receive


def refusal(scope) -> BossError | None:
    """Why the request's target or declared size is unacceptable, or None."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    path = _decoded(raw_path.split(b"?", 1)[0])
    if path is None or len(path) > MAX_PATH or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return BossError(INVALID_URL, "the URL path is not valid UTF-8 text without control characters")
    if any(len(segment) > MAX_SEGMENT for segment in path.split("/")):
        return BossError(INVALID_URL, f"a URL path segment is longer than {MAX_SEGMENT} characters")
    query = scope.get("query_string", b"")
    text = _decoded(query.replace(b"+", b" ")) if len(query) <= MAX_QUERY else None
    if text is None or "\x00" in text:
        return BossError(INVALID_URL, f"the query string must be valid UTF-8 without NUL, at most {MAX_QUERY} bytes")
    return _size_refusal(dict(scope.get("headers") or ()))


def _size_refusal(headers: dict[bytes, bytes]) -> BossError | None:
    declared = headers.get(b"content-length")
    if declared is None:
        return None
    if not declared.isdigit():
        return BossError(INVALID_URL, "Content-Length must be a number of bytes")
    if int(declared) > MAX_BODY:
        return BossError(REQUEST_TOO_LARGE, f"a body of {int(declared)} bytes is larger than any this server accepts "
                                            f"({MAX_BODY} bytes)")
    return None


def _decoded(raw: bytes) -> str | None:
    try:
        return unquote_to_bytes(raw).decode("utf-8")  # strict: a lone surrogate or stray byte is refused
    except (UnicodeDecodeError, ValueError):
        return None
