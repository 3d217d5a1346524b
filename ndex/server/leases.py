"""Who runs a downsample job: a lease in the database, renewed while the job runs, taken over when it expires.

Several server processes (and hosts) share one database; each job runs in the process that holds its
lease. The holder renews it every third of its length; a process that dies (or hangs, or loses the
database) stops renewing, and once the lease has expired another process claims it and runs the job
again from the start. Claims are compare-and-set updates (or an insert the primary key makes unique),
so exactly one claimant wins. Expiry is measured on the database's clock, so the hosts' clocks do not
matter. A holder that cannot renew stops its job before the lease can expire (see DownsampleJobs), so
two processes never build one pyramid at once; the one exception, a process frozen mid-tile for longer
than the lease, can write that one tile again, and a tile is the same whoever computes it.
"""
from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import delete, exc, insert, select, text, update

from ndex.server.db import Database
from ndex.server.schema import channels, downsample_leases

L = downsample_leases
ACTIVE = ("QUEUED", "IN_PROGRESS")


def process_name() -> str:
    """host:pid:nonce, unique among every server process that ever shares the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobLeases:
    def __init__(self, db: Database, seconds: float, owner: str | None = None) -> None:
        self.db = db
        self.seconds = seconds
        self.owner = owner or process_name()

    def _now(self, conn) -> float:
        if conn.dialect.name == "postgresql":
            return float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar())
        return time.time()  # SQLite: one server process, one clock

    def claim(self, chan_id: int) -> bool:
        """Take the lease of a channel's job unless another process holds it unexpired."""
        try:
            with self.db.begin() as conn:
                now = self._now(conn)
                row = conn.execute(select(L.c.owner, L.c.expires).where(L.c.channel_id == chan_id)).first()
                values = {"owner": self.owner, "expires": now + self.seconds, "done": 0, "total": 0}
                if row is None:
                    conn.execute(insert(L).values(channel_id=chan_id, **values))
                    return True
                if row.owner != self.owner and row.expires > now:
                    return False
                return conn.execute(update(L).where(L.c.channel_id == chan_id, L.c.owner == row.owner,
                                                    L.c.expires == row.expires).values(**values)).rowcount == 1
        except exc.IntegrityError:
            return False  # another process inserted the row first: it won

    def renew(self, chan_id: int, done: int, total: int) -> bool:
        """Extend our lease (and record progress); False if it is no longer ours."""
        with self.db.begin() as conn:
            until = self._now(conn) + self.seconds
            return conn.execute(update(L).where(L.c.channel_id == chan_id, L.c.owner == self.owner).values(
                expires=until, done=done, total=total)).rowcount == 1

    def release(self, chan_id: int) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(L).where(L.c.channel_id == chan_id, L.c.owner == self.owner))

    def orphans(self) -> list[int]:
        """Channels whose job is queued or running but whose lease is missing or expired."""
        with self.db.begin() as conn:
            now = self._now(conn)
            query = (select(channels.c.id).select_from(channels.outerjoin(L, L.c.channel_id == channels.c.id))
                     .where(channels.c.downsample_status.in_(ACTIVE), (L.c.expires.is_(None)) | (L.c.expires < now)))
            return [r[0] for r in conn.execute(query)]

    def progress(self, chan_id: int) -> tuple[int, int] | None:
        """(done, total) tiles as last recorded by the job's holder, wherever it runs."""
        with self.db.begin() as conn:
            row = conn.execute(select(L.c.done, L.c.total).where(L.c.channel_id == chan_id)).first()
        return None if row is None else (row.done, row.total)

    def forget_all(self) -> None:
        """Drop every lease: for a SQLite server at start-up, when no other process can hold one."""
        with self.db.begin() as conn:
            conn.execute(delete(L))
