"""`ndex backup`: a consistent copy of a data directory (SQLite catalog + local store) into a new directory.

It holds the data directory's lock, so no server writes meanwhile and catalog and store agree. Restore by
serving the copy (`ndex serve --data COPY`) or moving it into place.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from urllib.parse import urlparse

from ndex.cli.common import add_logging_flags, run_guarded, setup_logging
from ndex.cli.upgrade import open_data
from ndex.errors import UsageError
from ndex.server.settings import ServerSettings, help_of


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=ServerSettings().data_dir, help=help_of("data_dir"))
    parser.add_argument("--to", required=True, help="new (or empty) directory to write the copy into")
    add_logging_flags(parser)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    return run_guarded(lambda: backup(args))


def backup(args: argparse.Namespace) -> int:
    from ndex.server.migrate import backup_sqlite, sqlite_path

    dest = Path(args.to)
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"--to {dest} is not empty: name a new directory")
    args.db = ""  # only a data directory's own SQLite catalog and store: a server database has its own tools
    settings, lock = open_data(args)
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)  # the copy holds token hashes: owner only
        backup_sqlite(sqlite_path(settings.database_url), dest / "ndex.sqlite")  # type: ignore[arg-type]  # SQLite: db cleared above
        store = Path(urlparse(settings.volume_url).path)
        if store.exists():
            shutil.copytree(store, dest / "store")
    finally:
        lock.release()
    print(f"copied {settings.data_dir} to {dest}: serve it with `ndex serve --data {dest}`")
    return 0
