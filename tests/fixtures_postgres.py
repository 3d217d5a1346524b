"""A real PostgreSQL server for the whole test session, on 127.0.0.1 and a free port.

* `postgres_server` (session): a fresh cluster (`initdb`) in a temporary directory, started with
  `pg_ctl`, stopped and removed at the end. Its `.url(dbname)` is an SQLAlchemy URL (psycopg 3).
* `postgres_url` (session): one database, `ndex_test`, created on that server for the session.
* `fresh_postgres_url` (function): a new, empty database per test, for tests that need their own catalog.

The binaries come from Debian's `postgresql` package, which `scripts/dev.py test` installs on a fresh
machine. PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to Debian's
`postgres` user and the commands run through `runuser`.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ndex.cli.local_server import free_port

__all__ = ["PostgresServer", "fresh_postgres_url", "postgres_server", "postgres_url", "start_postgres",
           "stop_postgres"]

SUPERUSER = "ndex"


def postgres_bindir() -> Path:
    """Where initdb/pg_ctl live: Debian keeps them out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: run `python3 scripts/dev.py test` (it installs Debian's "
                           "postgresql package) or `apt-get install postgresql`")
    return Path(versions[-1]).parent


@dataclass
class PostgresServer:
    root: Path
    port: int
    bindir: Path

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "ndex") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*_as_owner(), str(self.bindir / tool), *args], check=True, capture_output=True,
                       timeout=60)


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _start(root: Path, bindir: Path) -> PostgresServer:
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    owner = _as_owner()
    subprocess.run([*owner, str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                    "--encoding=UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
    port = free_port()
    # fsync off: a crashed test cluster is thrown away anyway, and it keeps the suite fast on slow disks
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c full_page_writes=off -c max_connections=200"
    subprocess.run([*owner, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True, timeout=90)
    return PostgresServer(root, port, bindir)


def start_postgres() -> PostgresServer:
    """A fresh cluster in a new temporary directory, started (the session fixture; benchmarks too)."""
    root = Path(tempfile.mkdtemp(prefix="ndex-pg-"))
    os.chmod(root, 0o755)
    return _start(root, postgres_bindir())


def stop_postgres(server: PostgresServer) -> None:
    subprocess.run([*_as_owner(), str(server.bindir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate",
                    "-w", "stop"], capture_output=True, timeout=60)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("ndex_test")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()
