"""The resource database: engine set-up (SQLite by default, any SQLAlchemy URL), the locks that keep a
second server off a data directory or a local store, and the private file modes of what a server writes."""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import sqlalchemy
from sqlalchemy import Connection, Engine, create_engine, event

from ndex.errors import UsageError

log = logging.getLogger(__name__)
LOCK_NAME = "ndex.lock"
PRIVATE_UMASK = 0o077  # files 0600, directories 0700: a data directory holds other people's data and tokens
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def private_files() -> None:
    """Make everything this process creates from now on readable by its own user only (the store's
    chunk files are created by tensorstore, which follows the umask). For `ndex serve`, whose process
    writes nothing meant for other users."""
    os.umask(PRIVATE_UMASK)


def shared_modes(*paths: str | os.PathLike) -> list[tuple[Path, int]]:
    """(path, mode) of each existing path that users other than its owner may read or enter: a data
    directory made before ndex kept its files private, or by hand."""
    found = []
    for path in map(Path, paths):
        if path.exists() and path.stat().st_mode & 0o077:
            found.append((path, path.stat().st_mode & 0o777))
    return found


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as a directory only its owner may enter."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """Open (creating if needed) a file that only its owner may read: the mode does not depend on the umask."""
    return os.open(path, flags | os.O_CREAT, PRIVATE_FILE)


def create_private(path: Path) -> None:
    """Create an empty file only its owner may read, unless it exists. An existing database file is never
    opened here: closing any descriptor of a file drops every POSIX lock this process holds on it, which
    would undo the locks of SQLite connections already open in the process."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass


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
                             f"pip install {DRIVERS.get(exc.name or '', exc.name)}") from None
        except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
            raise UsageError(f"cannot use the database {redact(url)}: {reason}: check --db") from None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_path(url)
    if path is not None:
        make_private_dir(path.parent)
        create_private(path)  # SQLite gives its -wal and -shm files the database file's mode
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers proceed while one writer commits: request threads and `ndex token` share the file
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class DirLock:
    """An exclusive flock on <directory>/ndex.lock; the file holds the holder's pid for the refusal."""

    REFUSAL = "another ndex serve (pid {pid}) is using {dir}"

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.fh: IO[str] | None = None

    def acquire(self) -> DirLock:
        make_private_dir(self.path.parent)
        fh = os.fdopen(open_private(self.path), "r+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise UsageError(self.REFUSAL.format(pid=pid, dir=self.path.parent)) from None
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


class DataDirLock(DirLock):
    """Two servers on one SQLite directory would corrupt it."""

    REFUSAL = ("another ndex serve (pid {pid}) is using {dir}: stop it first, or pass a different --data "
               "directory (several servers may share data only through --db postgresql://...)")


class StoreLock(DirLock):
    """A local store belongs to one database: a second server with a database of its own on the same
    store would delete and overwrite arrays it does not know about."""

    REFUSAL = ("another ndex serve (pid {pid}) is using the store {dir}: stop it first, or pass a different "
               "--store (servers share a store only through one --db postgresql://...)")


def lock_server_dirs(data_dir: str | os.PathLike, store_dir: str | None) -> ExitStack:
    """The locks of a SQLite server: its data directory and its local store (None: not local), held until
    the returned stack is closed. A second server on either is refused, whatever its other flags."""
    stack = ExitStack()
    with ExitStack() as undo:
        undo.callback(stack.close)  # a refused second lock releases the first
        stack.callback(DataDirLock(data_dir).acquire().release)
        if store_dir is not None:
            stack.callback(StoreLock(store_dir).acquire().release)
        undo.pop_all()
    return stack
