"""Slow-client protection at the HTTP layer: a connection must finish its request headers in time.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a new connection that
sends nothing, or one that sends its headers a byte at a time, is kept open for ever: a few thousand
of them exhaust the server's file descriptors (slowloris). This protocol closes a connection whose
next request's headers are not complete `timeout_keep_alive` seconds (uvicorn's own setting, which
`ndex serve --client_timeout` sets) after the connection opened or its previous answer went out. A body
that stops arriving is limits.RequestGuard's business (408). Headers are also capped in size (httptools
has no cap of its own): a client streaming endless headers is answered 431 and closed.
"""
from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 1024  # request line and headers; BOSS requests send a few hundred bytes
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
             b"content-length: 40\r\nconnection: close\r\n\r\nrequest headers are over 64 KiB: refused")


class SlowClientProtocol(HttpToolsProtocol):
    """uvicorn's `http=` protocol for `ndex serve` (a plain class: uvicorn's worker processes import it)."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        waiting = getattr(self, "_header_timer", None) is not None
        super().data_received(data)
        if not waiting or getattr(self, "_header_timer", None) is None:
            self._header_bytes = 0  # the headers are complete (what followed them is body)
            return
        self._header_bytes = getattr(self, "_header_bytes", 0) + len(data)
        if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            self.transport.write(TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets the same time

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(self.timeout_keep_alive,
                                                                             self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
