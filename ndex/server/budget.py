"""The server-wide memory budget of cutouts in flight (`--cutout_memory_mb`).

Each cutout GET or POST reserves the bytes its arrays need (the decoded array, its encoded or filtered
copy) before it reads a voxel or a byte of its body, and frees them when its answer is built. When the
reservations would pass the budget, the request is answered 503 with Retry-After at once (intern and
ndex's client wait and retry); a request larger than the whole budget can never fit and is a 413.
So many large requests at once queue in their clients rather than grow the server to several GB.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.requests import Request

from ndex.server.http_errors import BOSS_SYSTEM_ERROR, REQUEST_TOO_LARGE, BossError

RETRY_AFTER_SECONDS = 2


class CutoutBudget:
    """Bytes reserved by cutouts in flight in this process, at most `limit` (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0  # the most ever reserved at once, for tests and the curious
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        self._take(nbytes)
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= nbytes

    def _take(self, nbytes: int) -> None:
        if not self.limit:
            return self._count(nbytes)
        if nbytes > self.limit:
            raise BossError(REQUEST_TOO_LARGE, f"this cutout needs {_mib(nbytes)} of memory, more than the "
                                               f"server's whole cutout budget (--cutout_memory_mb {_mib(self.limit)}):"
                                               " ask for a smaller region")
        with self._lock:
            if self.in_use + nbytes > self.limit:
                raise BossError(BOSS_SYSTEM_ERROR, f"the server is busy: cutouts in flight hold {_mib(self.in_use)} "
                                                   f"of its {_mib(self.limit)} budget; retry in "
                                                   f"{RETRY_AFTER_SECONDS} s", status=503,
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self._count_locked(nbytes)
        return None

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self._count_locked(nbytes)

    def _count_locked(self, nbytes: int) -> None:
        self.in_use += nbytes
        self.peak = max(self.peak, self.in_use)


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB"


def budget_of(request: Request) -> CutoutBudget:
    """The app's budget (limits.install puts it there); an app built without one has no limit."""
    budget = getattr(request.app.state, "cutout_budget", None)
    if budget is None:
        budget = request.app.state.cutout_budget = CutoutBudget(0)
    return budget
