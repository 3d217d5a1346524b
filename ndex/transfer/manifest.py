"""The resume manifest of a push: one SQLite row per block with its state, attempts, hash and error.

A push records every planned block as `pending`, then `posted` once the server answered 201 (or
`empty` when the block was all zeros and not sent), `verified` once read back and compared, and
`failed` with the error when it could not be sent. The row is committed before the worker takes its
next block, so a run killed at any moment (even SIGKILL) leaves a manifest whose `posted` rows are
really on the server. A re-run of the same spec posts only the blocks not yet confirmed.

This replaces ndex 1.x's `parse_log` / `repeat_cutouts` workflow (grepping the log for failed
cutouts and re-posting them by hand): re-running the same command is the whole recovery procedure.

Rows are keyed by a hash of the spec (`key`): a manifest written for another push -- other files,
offsets, channel or server -- is never reused; its rows simply stay apart.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ndex.geometry import Box

PENDING, POSTED, VERIFIED, FAILED, EMPTY = "pending", "posted", "verified", "failed", "empty"
STATES = (PENDING, POSTED, VERIFIED, FAILED, EMPTY)
CONFIRMED = frozenset({POSTED, VERIFIED, EMPTY})  # nothing left to send for these

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    key TEXT NOT NULL,
    x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, z0 INTEGER NOT NULL,
    x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, z1 INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    hash TEXT,
    error TEXT,
    updated REAL,
    PRIMARY KEY (key, x0, y0, z0, x1, y1, z1)
);
CREATE TABLE IF NOT EXISTS specs (key TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL);
"""


def _coords(box: Box) -> tuple[int, ...]:
    return (*box.start, *box.stop)


class Manifest:
    """Block states of one spec (`key`) in an SQLite file (or in memory with path None); thread-safe."""

    def __init__(self, path: str | Path | None, key: str, spec_json: str = "") -> None:
        self.path = None if path is None else Path(path)
        self.key = key
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path),
                                   check_same_thread=False, isolation_level=None, timeout=30)
        # WAL: readers (ndex status, a second look) never block the writer; NORMAL sync keeps a
        # committed row across a process kill (only a power cut may lose the last commits)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO specs VALUES (?, ?, ?)", (key, spec_json, time.time()))

    def __repr__(self) -> str:
        return f"Manifest({str(self.path) if self.path else ':memory:'!r}, key={self.key[:12]!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def register(self, blocks: Iterable[Box]) -> None:
        """Add the planned blocks as pending (rows that exist keep their state)."""
        rows = [(self.key, *_coords(b)) for b in blocks]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO blocks (key, x0, y0, z0, x1, y1, z1) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def states(self) -> dict[Box, str]:
        """State of every block of this spec."""
        with self._lock:
            rows = self._db.execute("SELECT x0, y0, z0, x1, y1, z1, state FROM blocks WHERE key = ?",
                                    (self.key,)).fetchall()
        return {Box(r[0:3], r[3:6]): r[6] for r in rows}

    def row(self, box: Box) -> dict | None:
        """The full row of one block (state, attempts, hash, error), or None."""
        with self._lock:
            r = self._db.execute("SELECT state, attempts, hash, error FROM blocks WHERE key = ? AND x0 = ? "
                                 "AND y0 = ? AND z0 = ? AND x1 = ? AND y1 = ? AND z1 = ?",
                                 (self.key, *_coords(box))).fetchone()
        return None if r is None else {"state": r[0], "attempts": r[1], "hash": r[2], "error": r[3]}

    def mark(self, box: Box, state: str, *, digest: str | None = None, error: str | None = None,
             attempt: bool = False) -> None:
        """Set a block's state (committed before returning); `attempt` counts one more send."""
        if state not in STATES:
            raise ValueError(f"unknown block state {state!r}")
        with self._lock:
            self._db.execute(
                "UPDATE blocks SET state = ?, hash = COALESCE(?, hash), error = ?, "
                "attempts = attempts + ?, updated = ? "
                "WHERE key = ? AND x0 = ? AND y0 = ? AND z0 = ? AND x1 = ? AND y1 = ? AND z1 = ?",
                (state, digest, error, int(attempt), time.time(), self.key, *_coords(box)))

    def counts(self) -> dict[str, int]:
        """Number of blocks per state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM blocks WHERE key = ? GROUP BY state",
                                    (self.key,)).fetchall()
        return {state: n for state, n in rows}
