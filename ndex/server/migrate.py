"""Versions of a data directory, and their upgrades.

The catalog (SQL) records its schema revision in Alembic's `alembic_version` table; the revisions live in
ndex/server/migrations (README.md there says how to add one). The store records its layout version in a
small document at its root (`VolumeStore.layout_version`).

* A catalog is upgraded in one transaction (SQLite's and PostgreSQL's DDL are both transactional), so a
  crash or a failing revision leaves it as it was. A SQLite catalog is also copied aside first; the copy
  is named in the log and by `ndex upgrade`.
* A layout step rewrites the store in place and must be resumable: the marker moves on only after it.
* A catalog or store written by a newer ndex is refused, never opened.
* Steps marked quick are applied by `ndex serve` itself; any other needs `ndex upgrade`.
"""
from __future__ import annotations

import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ndex import __version__
from ndex.errors import NdexError, UsageError
from ndex.server.schema import metadata
from ndex.server.volumes import VolumeStore

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # it narrates each step at INFO; ndex logs the upgrade once
MIGRATIONS = Path(__file__).with_name("migrations")
EXTRA_ENV = "NDEX_EXTRA_MIGRATIONS"  # more version directories (os.pathsep-separated), after ndex's own
PG_LOCK = 0x6E646578  # advisory lock: one upgrade at a time when several servers start on one database
STORE_LAYOUT = 1  # the layout this release writes: {key}/{res}/ zarr v3 arrays, one chunk per BOSS cuboid


class NewerRelease(UsageError):
    """The data was written by a newer ndex: this one must not touch it."""


class UpgradeNeeded(UsageError):
    """The data needs a long upgrade that only `ndex upgrade` runs."""


class UpgradeFailed(NdexError):
    """An upgrade step failed; the message says what was left as it was."""


@dataclass(frozen=True)
class Step:
    part: str  # "catalog" | "store"
    name: str  # a revision id, or "layout N"
    description: str
    quick: bool

    def __str__(self) -> str:
        return f"{self.name}: {self.description}" + ("" if self.quick else " (long)")


@dataclass(frozen=True)
class CatalogState:
    url: str  # without its password
    recorded: str | None  # the revision in alembic_version
    unversioned: str | None  # no recorded revision, but tables: the revision they match (releases before 0001)
    steps: tuple[Step, ...]

    @property
    def fresh(self) -> bool:
        return self.recorded is None and self.unversioned is None

    def describe(self) -> str:
        now = (self.recorded or (f"none recorded (tables of an older release: {self.unversioned})"
                                 if self.unversioned else "empty"))
        return f"catalog {self.url}: schema {now} -> {head()}"


def refuse_long(what: str, steps: tuple[Step, ...], upgrade_hint: str) -> None:
    """UpgradeNeeded when a step is long: `ndex serve` leaves those to an operator who backed up first."""
    long_steps = [s.name for s in steps if not s.quick]
    if long_steps:
        raise UpgradeNeeded(f"{what} needs long steps ({', '.join(long_steps)}): back it up (ndex backup), then "
                            f"run `ndex upgrade {upgrade_hint}`")


# --- the catalog --------------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    extra = [p for p in os.environ.get(EXTRA_ENV, "").split(os.pathsep) if p]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join([str(MIGRATIONS / "versions"), *extra]))
    cfg.attributes["connection"] = connection
    return cfg


def scripts() -> ScriptDirectory:
    return _scripts(os.environ.get(EXTRA_ENV, ""))


@functools.lru_cache(maxsize=4)
def _scripts(_extra: str) -> ScriptDirectory:  # the key: what alembic_config() reads from the environment
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return scripts().get_current_head()  # type: ignore[return-value]  # the baseline revision always exists


def catalog_state(conn: Connection) -> CatalogState:
    """Where the catalog on `conn` stands; NewerRelease when a newer ndex wrote it."""
    sd = scripts()
    url = conn.engine.url.render_as_string()  # the password hidden: the URL goes into messages
    recorded = MigrationContext.configure(conn).get_current_revision()
    if recorded is not None:
        try:
            sd.get_revision(recorded)
        except (CommandError, RevisionError):
            raise NewerRelease(
                f"the catalog {url} has schema revision {recorded!r}, written by a newer ndex than this "
                f"one ({__version__}, newest revision {sd.get_current_head()}): not opened; install that "
                "release (pip install -U ndex)") from None
        return CatalogState(url, recorded, None, _pending(sd, recorded))
    if not set(inspect(conn).get_table_names()) & set(metadata.tables):
        return CatalogState(url, None, None, _pending(sd, None))
    matched = _unversioned_revision(conn, sd)
    return CatalogState(url, None, matched, _pending(sd, matched))


def _pending(sd: ScriptDirectory, since: str | None) -> tuple[Step, ...]:
    newest_first = list(sd.iterate_revisions("heads", since or "base"))
    return tuple(Step("catalog", s.revision, s.doc, getattr(s.module, "ndex_quick", False))
                 for s in reversed(newest_first) if s.revision != since)


def _columns(conn: Connection) -> dict[str, frozenset[str]]:
    found = inspect(conn)
    return {t: frozenset(c["name"] for c in found.get_columns(t))
            for t in found.get_table_names() if t != "alembic_version"}


def _unversioned_revision(conn: Connection, sd: ScriptDirectory) -> str:
    """The first revision whose tables and columns are the catalog's: releases before versions were recorded
    created their tables without alembic_version, so their catalog is recognised by its shape."""
    wanted = _columns(conn)
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as mem:
            for script in reversed(list(sd.walk_revisions())):
                command.upgrade(alembic_config(mem), script.revision)
                if _columns(mem) == wanted:
                    return script.revision
    finally:
        scratch.dispose()
    raise UsageError(f"the catalog {conn.engine.url.render_as_string()} has tables but no recorded schema version, and "
                     "they match no ndex release: is --db the right database?")


def migration_engine(url: str, *, write: bool = True) -> Engine:
    """An engine whose transactions include DDL: SQLite's Python driver would commit before each
    CREATE/ALTER by itself, so it is left in autocommit and SQLAlchemy's BEGIN IMMEDIATE opens the
    transaction (also taking the write lock up front). Reading needs none of that."""
    if not (url.startswith("sqlite") and write):
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
    event.listen(engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None))
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def read_catalog(url: str) -> CatalogState:
    engine = migration_engine(url, write=False)
    try:
        with engine.connect() as conn:
            return catalog_state(conn)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class CatalogUpgrade:
    before: CatalogState
    backup: Path | None  # the SQLite catalog as it was


def upgrade_catalog(url: str, *, allow_long: bool = False, upgrade_hint: str = "") -> CatalogUpgrade:
    """Bring the catalog at `url` to the newest revision in one transaction (an empty one is created).

    UpgradeNeeded when a step is long and not `allow_long` (nothing is changed); UpgradeFailed when a step
    fails (the transaction is rolled back: nothing is changed)."""
    before = read_catalog(url)
    if not before.steps and not before.unversioned:
        return CatalogUpgrade(before, None)
    if not allow_long and not before.fresh:
        refuse_long(before.describe(), before.steps, upgrade_hint or "--db URL")
    backup = None if before.fresh or not before.steps else backup_sqlite_aside(url)
    engine = migration_engine(url)
    try:
        with engine.begin() as conn:
            _apply(conn)
    except (UsageError, UpgradeFailed):
        raise
    except Exception as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        kept = f"; a copy from before is in {backup}" if backup else ""
        raise UpgradeFailed(f"upgrading {before.describe()} failed: {reason}: the transaction was rolled back "
                            f"and the catalog is as it was{kept}") from exc
    finally:
        engine.dispose()
    if not before.fresh:
        log.warning("upgraded the %s%s", before.describe(), f" (the catalog as it was: {backup})" if backup else "")
    return CatalogUpgrade(before, backup)


def _apply(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK})
    state = catalog_state(conn)  # again, under the lock: another server may have upgraded meanwhile
    cfg = alembic_config(conn)
    if state.unversioned:
        command.stamp(cfg, state.unversioned)
    if state.steps:
        command.upgrade(cfg, "heads")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def backup_sqlite(source: Path, dest: Path) -> None:
    """A consistent copy of a SQLite database (sqlite's online backup), written whole or not at all."""
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # a copy of tokens: owner only
    src = sqlite3.connect(source)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    os.replace(partial, dest)


def backup_sqlite_aside(url: str) -> Path | None:
    path = sqlite_path(url)
    if path is None:
        return None
    dest = path.with_name(f"{path.name}.before-upgrade-{time.strftime('%Y%m%dT%H%M%S')}")
    backup_sqlite(path, dest)
    return dest


# --- the store ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayoutStep:
    description: str
    quick: bool
    run: Callable[[VolumeStore], None]  # resumable: a crash part way and a second run finish the job


LAYOUT_STEPS: dict[int, LayoutStep] = {}  # n: how a store of layout n becomes layout n + 1 (none yet)


@dataclass(frozen=True)
class StoreState:
    url: str
    recorded: int | None  # None: written before layouts were recorded, which is layout 1
    steps: tuple[Step, ...]

    def describe(self) -> str:
        now = self.recorded if self.recorded is not None else "none recorded (layout 1)"
        return f"store {self.url}: layout {now} -> {STORE_LAYOUT}"


def store_state(store: VolumeStore) -> StoreState:
    recorded = store.layout_version()
    current = recorded or 1
    if current > STORE_LAYOUT:
        raise NewerRelease(f"the store {store.url} has layout {current}, written by a newer ndex than this one "
                           f"({__version__}, layout {STORE_LAYOUT}): not opened; install that release "
                           "(pip install -U ndex)")
    steps = [Step("store", f"layout {n + 1}", LAYOUT_STEPS[n].description, LAYOUT_STEPS[n].quick)
             for n in range(current, STORE_LAYOUT)]
    if recorded is None:
        steps.insert(0, Step("store", "layout 1", "record the layout version", True))
    return StoreState(store.url, recorded, tuple(steps))


def upgrade_store(store: VolumeStore, *, allow_long: bool = False, upgrade_hint: str = "") -> StoreState:
    """Bring the store to STORE_LAYOUT, one recorded step at a time; returns where it stood."""
    before = store_state(store)
    if not allow_long:
        refuse_long(before.describe(), before.steps, upgrade_hint or "--data DIR")
    current = before.recorded or 1
    if before.recorded is None:
        store.record_layout(1)
    while current < STORE_LAYOUT:
        LAYOUT_STEPS[current].run(store)
        current += 1
        store.record_layout(current)
    if before.steps:
        log.info("upgraded the %s", before.describe())
    return before
