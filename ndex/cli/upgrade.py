"""`ndex upgrade`: bring a data directory of an older release to this release's catalog schema and store
layout, printing each step first (`--dry_run` stops there)."""
from __future__ import annotations

import argparse
from typing import Any

from ndex.cli.common import add_logging_flags, run_guarded, setup_logging
from ndex.errors import UsageError
from ndex.server.settings import ServerSettings, help_of


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=ServerSettings().data_dir, help=help_of("data_dir"))
    parser.add_argument("--db", default="", help=help_of("db_url"))
    parser.add_argument("--store", default="", help=help_of("store_url"))
    parser.add_argument("--dry_run", action="store_true", help="print what would change, change nothing")
    add_logging_flags(parser)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    return run_guarded(lambda: upgrade(args))


def open_data(args: argparse.Namespace) -> tuple[ServerSettings, Any]:
    """The settings of an existing data directory and its lock (SQLite: no server may run meanwhile)."""
    from ndex.server.db import DataDirLock
    from ndex.server.migrate import sqlite_path

    settings = ServerSettings(data_dir=args.data, db_url=args.db, store_url=getattr(args, "store", ""))
    catalog = sqlite_path(settings.database_url)
    if catalog is not None and not catalog.exists():
        raise UsageError(f"no catalog at {catalog}: --data names the data directory of an ndex serve")
    return settings, DataDirLock(settings.data_dir).acquire() if settings.sqlite else None


def upgrade(args: argparse.Namespace) -> int:
    from ndex.server import migrate
    from ndex.server.volumes import VolumeStore

    settings, lock = open_data(args)
    try:
        catalog = migrate.read_catalog(settings.database_url)
        store = VolumeStore(settings.volume_url)
        try:
            layout = migrate.store_state(store)
            print_plan(catalog, layout)
            if not (catalog.steps or catalog.unversioned or layout.steps):
                print("up to date: nothing to change")
                return 0
            if args.dry_run:
                print("dry run: nothing changed")
                return 0
            done = migrate.upgrade_catalog(settings.database_url, allow_long=True)
            if done.backup:
                print(f"the catalog as it was is in {done.backup} (delete it once the server works)")
            migrate.upgrade_store(store, allow_long=True)
        finally:
            store.close()
    finally:
        if lock is not None:
            lock.release()
    print("upgraded: `ndex serve` opens it now")
    return 0


def print_plan(catalog, layout) -> None:
    print(catalog.describe())
    if catalog.unversioned:
        print(f"  record revision {catalog.unversioned} (its tables are there already)")
    for step in catalog.steps:
        print(f"  {step}")
    print(layout.describe())
    for step in layout.steps:
        print(f"  {step}")
