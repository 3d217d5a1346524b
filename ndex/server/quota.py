"""A per-user daily quota of cutout bytes, refused as BOSS's throttle refuses (boss/throttling.py).

BOSS counts the bytes of every cutout per user and direction (egress for reads, ingress for writes). It
compares the count *before* adding a call's cost, so the call that crosses the limit still passes and
the next is refused. The refusal is DRF's `Throttled` without a wait: 429, no Retry-After header, the
message "User is throttled. Expected available tomorrow.", rendered by BOSS's binary renderers as
`{"status": 429, "message", "code": 3004}` and by its JSON renderer as `{"detail"}`. BOSS also mails its
administrators about each refusal; ndex logs a warning instead. Counts start again each UTC day and
live in the server process.
"""
from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

USER_THROTTLED = "User is throttled. Expected available tomorrow."
EGRESS, INGRESS = "egress", "ingress"


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


class QuotaExceeded(Exception):
    """A user's quota for today is spent (429)."""

    def __init__(self) -> None:
        super().__init__(USER_THROTTLED)
        self.message = USER_THROTTLED


class DailyQuota:
    """Bytes per user and direction per day; `limit` 0 charges nothing and refuses nothing."""

    def __init__(self, limit: int, today: Callable[[], datetime.date] = utc_today) -> None:
        self.limit = limit
        self._today = today
        self._day: datetime.date | None = None
        self._used: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def charge(self, user: str, direction: str, cost: int) -> None:
        """Count `cost` bytes for `user`, or raise QuotaExceeded if the count already passed the limit."""
        if not self.limit:
            return
        with self._lock:
            day = self._today()
            if day != self._day:
                self._day, self._used = day, {}
            used = self._used.get((user, direction), 0)
            if used > self.limit:
                log.warning("throttling user %r: %s of %d bytes today, limit %d", user, direction, used, self.limit)
                raise QuotaExceeded()
            self._used[(user, direction)] = used + cost
