"""The resource database: engine set-up (SQLite by default, any SQLAlchemy URL) and the data-dir lock."""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy import Connection, Engine, create_engine, event

from ndex.errors import UsageError

log = logging.getLogger(__name__)
LOCK_NAME = "ndex.lock"


DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "pymysql": "pymysql"}


def redact(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return "<unparsable URL>"


class Database:
    """One engine plus the schema; `begin()` yields a connection inside a transaction."""

    def __init__(self, url: str, *, upgrade_hint: str = "") -> None:
        """Opens the catalog at `url`: an empty one is created, one of an older release is upgraded when
        every step is quick (logged), anything else is refused (see ndex.server.migrate)."""
        from ndex.server import migrate  # it imports this module

        self.url = url
        try:
            self.engine = make_engine(url)
            migrate.upgrade_catalog(url, upgrade_hint=upgrade_hint)
        except ModuleNotFoundError as exc:  # SQLAlchemy imports the database's driver on first use
            raise UsageError(f"--db {redact(url)} needs the Python driver {exc.name!r}, which is not installed: "
                             f"pip install {DRIVERS.get(exc.name, exc.name)}") from None
        except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
            raise UsageError(f"cannot use the database {redact(url)}: {reason}: check --db") from None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers proceed while one writer commits: request threads and `ndex token` share the file
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class DataDirLock:
    """An exclusive flock on <data>/ndex.lock: two servers on one SQLite directory would corrupt it."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.fh = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise UsageError(f"another ndex serve (pid {pid}) is using {self.path.parent}: stop it first, or pass a "
                             "different --data directory (several servers may share data only through "
                             "--db postgresql://...)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self.fh = fh
        return self

    def release(self) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None
