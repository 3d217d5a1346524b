"""Schema versions of the catalog and layout versions of the store (ndex.server.migrate).

Revisions that fail, take long or are killed part way are real Alembic revisions written into a temporary
directory and added with NDEX_EXTRA_MIGRATIONS on top of ndex's own head, in a subprocess.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ndex.server import migrate
from ndex.server.db import Database
from ndex.server.schema import metadata
from ndex.server.volumes import LAYOUT_KEY

ROOT = Path(__file__).resolve().parents[2]

REVISION = '''"""{doc}"""
import os
import time

import sqlalchemy as sa
from alembic import op

revision = "test9"
down_revision = {head!r}
branch_labels = None
depends_on = None
ndex_quick = {quick}


def upgrade():
    op.add_column("users", sa.Column("nickname", sa.String(64), nullable=True))
    op.execute("UPDATE users SET nickname = username")
    with op.batch_alter_table("tokens") as batch:  # SQLite rebuilds the table: the longest kind of step
        batch.add_column(sa.Column("label", sa.String(64), nullable=True))
    if os.environ.get("TEST_MIGRATION_STARTED"):
        open(os.environ["TEST_MIGRATION_STARTED"], "w").close()
        time.sleep(120)
    {tail}


def downgrade():
    pass
'''


def extra_revision(tmp_path: Path, *, quick: bool = True, fail: bool = False) -> dict[str, str]:
    """The environment of a subprocess whose ndex has one more revision, `test9`, after the real head."""
    versions = tmp_path / "extra-versions"
    versions.mkdir()
    tail = 'raise RuntimeError("revision test9 broke on purpose")' if fail else "pass"
    (versions / "test9_extra.py").write_text(REVISION.format(doc="test revision: nicknames and token labels",
                                                             head=migrate.head(), quick=quick, tail=tail))
    return {**os.environ, migrate.EXTRA_ENV: str(versions)}


def ndex(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndex.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def new_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert ndex("token", "create", "--data", str(data), "--user", "ann").returncode == 0
    return data


def state(url: str) -> tuple[str, set[str], set[str]]:
    """(recorded revision, columns of users, columns of tokens)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            found = sqlalchemy.inspect(conn)
            return (MigrationContext.configure(conn).get_current_revision(),
                    {c["name"] for c in found.get_columns("users")}, {c["name"] for c in found.get_columns("tokens")})
    finally:
        engine.dispose()


def sqlite_url(data: Path) -> str:
    return f"sqlite:///{data / 'ndex.sqlite'}"


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# --- schema.py and the revisions agree -----------------------------------------------------------------


def assert_head_is_schema(url: str) -> None:
    db = Database(url)  # an empty catalog is created by running every revision
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            recorded = MigrationContext.configure(conn).get_current_revision()
    finally:
        db.close()
    assert recorded == migrate.head()
    assert diff == [], ("ndex/server/schema.py differs from what the migrations build: add a revision "
                        f"(ndex/server/migrations/README.md): {diff}")


def test_schema_py_equals_the_migrated_head_on_sqlite(tmp_path):
    assert_head_is_schema(f"sqlite:///{tmp_path / 'ndex.sqlite'}")


def test_schema_py_equals_the_migrated_head_on_postgresql(fresh_postgres_url):
    assert_head_is_schema(fresh_postgres_url)


def test_revisions_form_one_line_each_with_a_docstring():
    scripts = list(migrate.scripts().walk_revisions())
    assert len(migrate.scripts().get_heads()) == 1
    assert all(s.doc and hasattr(s.module, "ndex_quick") for s in scripts)


# --- newer releases are refused -------------------------------------------------------------------------


def test_catalog_of_a_newer_release_is_refused_and_left_alone(tmp_path):
    data = new_data_dir(tmp_path)
    with sqlite3.connect(data / "ndex.sqlite") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00d'")
    conn.close()
    before = (data / "ndex.sqlite").read_bytes()
    for argv in (["serve", "--data", str(data), "--port", "9"], ["token", "list", "--data", str(data)],
                 ["upgrade", "--data", str(data)]):
        done = ndex(*argv)
        assert done.returncode != 0
        line = one_line(done.stderr)
        assert "'f00d'" in line and "newer ndex" in line and "not opened" in line
    assert (data / "ndex.sqlite").read_bytes() == before


def test_store_of_a_newer_release_is_refused(tmp_path):
    data = new_data_dir(tmp_path)
    (data / "store").mkdir()
    (data / "store" / LAYOUT_KEY).write_text('{"layout": 99}')
    done = ndex("serve", "--data", str(data), "--port", "9")
    assert done.returncode != 0
    assert "layout 99" in one_line(done.stderr) and "newer ndex" in done.stderr


def test_a_fresh_data_directory_records_both_versions(tmp_path):
    data = new_data_dir(tmp_path)
    assert state(sqlite_url(data))[0] == migrate.head()
    done = ndex("upgrade", "--data", str(data))  # the store's marker is written on first open
    assert done.returncode == 0, done.stderr
    assert '"layout": 1' in (data / "store" / LAYOUT_KEY).read_text()
    assert "up to date" in ndex("upgrade", "--data", str(data)).stdout


def test_upgrade_refuses_a_missing_directory(tmp_path):
    done = ndex("upgrade", "--data", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "no catalog" in one_line(done.stderr)
    assert not (tmp_path / "nothing").exists()


# --- long, failing and killed revisions -----------------------------------------------------------------


def test_a_long_revision_stops_serve_with_the_command_then_ndex_upgrade_runs_it(tmp_path):
    data = new_data_dir(tmp_path)
    env = extra_revision(tmp_path, quick=False)
    done = ndex("serve", "--data", str(data), "--port", "9", env=env)
    assert done.returncode != 0
    assert f"ndex upgrade --data {data}" in one_line(done.stderr)
    assert state(sqlite_url(data))[0] == migrate.head()

    dry = ndex("upgrade", "--data", str(data), "--dry_run", env=env)
    assert "test9: test revision" in dry.stdout and "(long)" in dry.stdout
    assert state(sqlite_url(data))[0] == migrate.head()
    done = ndex("upgrade", "--data", str(data), env=env)
    assert done.returncode == 0, done.stderr
    backup = next(data.glob("ndex.sqlite.before-upgrade-*"))
    assert str(backup) in done.stdout
    assert backup.stat().st_mode & 0o077 == 0  # a copy of the token hashes is the owner's only
    revision, users, tokens = state(sqlite_url(data))
    assert revision == "test9" and "nickname" in users and "label" in tokens
    assert state(f"sqlite:///{backup}")[0] == migrate.head()  # the copy is the catalog as it was


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_failing_revision_leaves_the_catalog_as_it_was(tmp_path, backend, request):
    url = sqlite_url(tmp_path / "data") if backend == "sqlite" else request.getfixturevalue("fresh_postgres_url")
    db = ["--db", url] if backend == "postgresql" else []
    assert ndex("token", "create", "--data", str(tmp_path / "data"), *db, "--user", "ann").returncode == 0
    done = ndex("upgrade", "--data", str(tmp_path / "data"), *db, env=extra_revision(tmp_path, fail=True))
    assert done.returncode != 0
    line = one_line(done.stderr)
    assert "broke on purpose" in line and "rolled back" in line
    assert state(url) == (migrate.head(), {"id", "username", "first_name", "last_name", "email", "created"},
                          {"id", "user_id", "token_hash", "created"})


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_in_the_middle_of_a_migration_leaves_it_resumable(tmp_path, backend, request):
    url = sqlite_url(tmp_path / "data") if backend == "sqlite" else request.getfixturevalue("fresh_postgres_url")
    db = ["--db", url] if backend == "postgresql" else []
    data = str(tmp_path / "data")
    assert ndex("token", "create", "--data", data, *db, "--user", "ann").returncode == 0
    before = state(url)
    started = tmp_path / "started"
    env = {**extra_revision(tmp_path), "TEST_MIGRATION_STARTED": str(started)}
    proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "upgrade", "--data", data, *db], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # every DDL of the revision has run, uncommitted
            assert proc.poll() is None and time.monotonic() < deadline, "the migration did not start"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert state(url) == before  # nothing half-converted
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "data" / "ndex.sqlite") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
    env.pop("TEST_MIGRATION_STARTED")
    done = ndex("upgrade", "--data", data, *db, env=env)  # the same command again finishes it
    assert done.returncode == 0, done.stderr
    revision, users, tokens = state(url)
    assert revision == "test9" and "nickname" in users and "label" in tokens
    listing = ndex("token", "list", "--data", data, *db, env=env)
    assert listing.returncode == 0 and "ann" in listing.stdout


def test_upgrade_and_backup_wait_for_no_server(tmp_path):
    from ndex.server.db import DataDirLock

    data = new_data_dir(tmp_path)
    lock = DataDirLock(data).acquire()  # what a running ndex serve holds
    try:
        for argv in (["upgrade", "--data", str(data)], ["backup", "--data", str(data), "--to", str(tmp_path / "b")]):
            done = ndex(*argv)
            assert done.returncode != 0 and "another ndex serve" in one_line(done.stderr)
    finally:
        lock.release()
    assert not (tmp_path / "b" / "ndex.sqlite").exists()


def test_tables_of_no_release_are_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "ndex.sqlite") as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT)")
    conn.close()
    done = ndex("token", "list", "--data", str(data))
    assert done.returncode == 2 and "match no ndex release" in one_line(done.stderr)
    with sqlite3.connect(data / "ndex.sqlite") as conn:
        assert [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["users"]
    conn.close()
