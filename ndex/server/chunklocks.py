"""Per-chunk mutual exclusion for the volume store: every write that touches a stored chunk holds it.

A partial cutout POST is a read-modify-write of each chunk it touches (zeros keep what is stored), so
two writers of one chunk must not interleave, whether they are threads of one process, processes of
one host or processes of several hosts. Two layers, always taken in this order:

* thread stripes (`threading.Lock`), so that threads of one process queue here and not in the database;
* a lock every process sees, when several may run (`AdvisoryLocks`): PostgreSQL's transaction-level
  advisory locks, one per chunk, keyed by a stable 64-bit hash of (store key, level, t, chunk index).

Why PostgreSQL advisory locks rather than the alternatives (measured and read, 2026-11):

* The database is the one thing every process of a deployment shares whatever the store is (several
  processes are refused without `--db postgresql://...`), so one mechanism covers a local directory,
  NFS and S3 alike. File locks (fcntl) work only between processes of one host (and not reliably on
  NFS). Optimistic conditional writes (write only if the chunk is still the version read) would need
  every store to support them alike (S3 gained If-Match writes only in 2024, S3-compatible stores
  differ) and turn each conflict into a re-read, re-merge and retry.
* A transaction-level lock is released by PostgreSQL when the holder's connection closes, so a
  `kill -9`ed worker or a crashed host never leaves a chunk locked.
* The cost is two round trips per locked slab (lock, commit) on a pooled connection: under 10% of an
  aligned whole-cuboid POST (benchmarks/bench_scale.py measures it on every run).

Stripes and keys are sorted before they are taken, and a thread takes every stripe before any
advisory lock, so no set of threads or processes can wait on each other in a cycle.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

from sqlalchemy import Engine, create_engine, exc

LOCK_STRIPES = 256  # more stripes, fewer false conflicts between unrelated chunks of one process

ChunkId = tuple[str, int, int, tuple[int, int, int]]  # (store key, level, t, (x, y, z) chunk index)


def chunk_hash(chunk: ChunkId) -> int:
    """A signed 64-bit key that every process computes alike (Python's hash() differs per process)."""
    key, res, t, (cx, cy, cz) = chunk
    digest = hashlib.blake2b(f"{key}/{res}/{t}/{cz}/{cy}/{cx}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SharedLocks(Protocol):
    """Locks that hold across processes (and hosts): `hold(keys)` holds every key until it exits."""

    def hold(self, keys: list[int]) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


class AdvisoryLocks:
    """PostgreSQL transaction-level advisory locks, on a pool of their own.

    A hold costs two round trips: `BEGIN; SELECT pg_advisory_xact_lock(k)...` sent as one simple query,
    then `ROLLBACK`, which releases every key (nothing was written). Through SQLAlchemy's Connection it
    took four (a pre-ping, BEGIN, the lock, ROLLBACK), and this runs on every chunk write. The pool has
    no pre-ping, so a connection PostgreSQL dropped (a restart) fails on first use: it is discarded and
    the lock taken once more on a fresh one. A connection whose ROLLBACK fails is discarded too, and
    PostgreSQL releases its locks when it closes.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)

    @contextlib.contextmanager
    def hold(self, keys: list[int]) -> Iterator[None]:
        # keys are ints computed here, so formatting them in is safe; in one statement, in the listed
        # order (a simple query runs its statements one after the other)
        query = "BEGIN; " + "; ".join(f"SELECT pg_advisory_xact_lock({int(k)})" for k in keys)
        conn = self._locked(query)
        try:
            yield
        finally:
            self._release(conn)

    def _locked(self, query: str):
        for attempt in (1, 2):
            conn = self.engine.raw_connection()
            try:
                with conn.cursor() as cur:  # type: ignore[attr-defined]  # psycopg's cursor is a context manager
                    cur.execute(query)
                return conn
            except exc.OperationalError:
                conn.invalidate()  # dropped by the server (restart, idle timeout): try once on a new one
                if attempt == 2:
                    raise
            except BaseException:
                conn.invalidate()  # we may hold some keys: closing the connection releases them
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _release(conn) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        except BaseException:
            conn.invalidate()
            raise
        finally:
            conn.close()  # back to the pool (a no-op after invalidate)


class ChunkLocks:
    """Holds chunks for a read-modify-write: thread stripes, then the shared locks if there are any."""

    def __init__(self, shared: SharedLocks | None = None, stripes: int = LOCK_STRIPES) -> None:
        self.shared = shared
        self._stripes = [threading.Lock() for _ in range(stripes)]

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()

    @contextlib.contextmanager
    def hold(self, chunks: Iterable[ChunkId]) -> Iterator[None]:
        keys = sorted({chunk_hash(c) for c in chunks})
        with contextlib.ExitStack() as stack:
            for i in sorted({k % len(self._stripes) for k in keys}):
                stack.enter_context(self._stripes[i])
            if self.shared is not None:
                stack.enter_context(self.shared.hold(keys))
            yield


def locks_for(engine: Engine) -> ChunkLocks:
    """The chunk locks a server on this database needs: shared ones on PostgreSQL, where several
    processes may run; SQLite allows one server process (ndex.server.db.DataDirLock), threads suffice."""
    return ChunkLocks(AdvisoryLocks(engine) if engine.dialect.name == "postgresql" else None)
