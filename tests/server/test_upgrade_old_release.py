"""A data directory written by the first release of `ndex serve` is upgraded and served by this one.

The old release is built from git in the test (its `ndex` package, run on this venv's dependencies), fills a
data directory through its own CLI and HTTP API (users, tokens, a group, permissions, metadata, voxels and a
downsampled pyramid) and stops; then the current code upgrades it and every voxel, token, permission and
metadata value is checked through the current server. SQLite (the old directory is built once per
session and copied per test) and PostgreSQL.
"""
from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import requests
import sqlalchemy
from fixtures_server import wait_for_ping

from ndex import codecs
from ndex.cli.local_server import free_port
from ndex.server import migrate

pytestmark = pytest.mark.slow  # starts the old and the new server
ROOT = Path(__file__).resolve().parents[2]
# The first commit whose `ndex serve` starts: 9c37804 shipped it but imported routes_downsample.py, which
# 1784974 added. Both create the same tables (schema.py is unchanged between them).
OLD = "1784974"
FIRST = "9c37804"
EXTENT = (600, 520, 40)  # x, y, z: partial cuboids at every edge
LEVELS = 3
C, E, CH = "lab", "brain", "em"
CHANNEL = f"{C}/{E}/{CH}"
META = {(C,): {"owner": "ann"}, (C, E, CH): {"stain": "osmium", "note": "ünïcode, spaces & symbols"}}


@dataclass
class OldData:
    data: Path
    db_url: str
    tokens: dict[str, str]
    levels: list[np.ndarray] = field(default_factory=list)  # (z, y, x) per level as the old server served it
    permissions: list = field(default_factory=list)


# --- the old release -------------------------------------------------------------------------------


def extract(commit: str, dest: Path) -> Path:
    """The `ndex` package of `commit`, extracted from git (nothing built is committed)."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "ndex"], capture_output=True, timeout=60)
    if tar.returncode:
        raise RuntimeError(f"git archive {commit} failed ({tar.stderr.decode().strip()}): these tests need the "
                           "repository's history (a full clone)")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(dest, filter="data")
    return dest


@pytest.fixture(scope="session")
def old_release(tmp_path_factory) -> Path:
    return extract(OLD, tmp_path_factory.mktemp(f"ndex-{OLD}"))


def old_ndex(src: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ndex.cli.main", *args], capture_output=True, text=True,
                          timeout=120, cwd=src, env={**os.environ, "PYTHONPATH": str(src)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def start_serve(data: Path, db_url: str = "", *, old: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(data), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(old)} if old else dict(os.environ)
    proc = subprocess.Popen([*argv, *(["--db", db_url] if db_url else [])], cwd=old or ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_ping(url, proc)
    return proc, url


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def fill_with_old_release(src: Path, data: Path, db_url: str = "") -> OldData:
    db = ["--db", db_url] if db_url else []
    tokens = {user: old_ndex(src, "token", "create", "--data", str(data), *db, "--user", user,
                             *(["--role", "admin"] if user == "admin" else [])).strip().splitlines()[-1]
              for user in ("admin", "alice", "bob")}
    old = OldData(data, db_url, tokens)
    proc, url = start_serve(data, db_url, old=src)
    try:
        http = Http(url, tokens["admin"])
        make_resources(http)
        volume = np.random.default_rng(15).integers(1, 60000, size=EXTENT[::-1], dtype=np.uint16)
        http.post_cutout(0, (0, EXTENT[0]), (0, EXTENT[1]), (0, EXTENT[2]), volume)
        http.call("POST", f"downsample/{CHANNEL}/", expect=201)
        deadline = time.monotonic() + 120
        while http.call("GET", f"downsample/{CHANNEL}/").json()["status"] != "DOWNSAMPLED":
            assert time.monotonic() < deadline, "the old release did not finish its pyramid"
            time.sleep(0.2)
        old.levels = [http.get_level(r) for r in range(LEVELS)]
        assert np.array_equal(old.levels[0], volume)
        old.permissions = http.call("GET", "permissions/?group=readers").json()["permission-sets"]
    finally:
        stop(proc)
    return old


def make_resources(http: Http) -> None:
    http.call("POST", "coord/frame1/", {"x_start": 0, "x_stop": EXTENT[0], "y_start": 0, "y_stop": EXTENT[1],
                                        "z_start": 0, "z_stop": EXTENT[2], "x_voxel_size": 4.0,
                                        "y_voxel_size": 4.0, "z_voxel_size": 40.0, "voxel_unit": "nanometers"})
    http.call("POST", f"collection/{C}/", {"description": "an old lab"})
    http.call("POST", f"collection/{C}/experiment/{E}/",
              {"coord_frame": "frame1", "num_hierarchy_levels": LEVELS, "hierarchy_method": "anisotropic",
               "num_time_samples": 1})
    http.call("POST", f"collection/{C}/experiment/{E}/channel/{CH}/", {"type": "image", "datatype": "uint16"})
    http.call("POST", "groups/readers/")
    http.call("POST", "groups/readers/members/alice/", expect=204)
    for resource, perms in (({"collection": C}, ["read"]), ({"collection": C, "experiment": E}, ["read"]),
                            ({"collection": C, "experiment": E, "channel": CH}, ["read", "read_volumetric_data"])):
        http.call("POST", "permissions/", {"group": "readers", **resource, "permissions": perms})
    for path, pairs in META.items():
        for key, value in pairs.items():
            http.call("POST", f"meta/{'/'.join(path)}/", params={"key": key, "value": value})


@dataclass
class Http:
    url: str
    token: str

    def call(self, method: str, path: str, body: dict | None = None, *, params=None,
             expect: int | None = None) -> requests.Response:
        r = requests.request(method, f"{self.url}/v1/{path}", json=body, params=params, timeout=60,
                             headers={"Authorization": f"Token {self.token}"})
        want = expect or (201 if method == "POST" else 200)
        assert r.status_code == want, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r

    def cutout_path(self, res: int, x, y, z) -> str:
        return f"cutout/{CHANNEL}/{res}/{x[0]}:{x[1]}/{y[0]}:{y[1]}/{z[0]}:{z[1]}/"

    def post_cutout(self, res: int, x, y, z, voxels: np.ndarray, expect: int = 201) -> requests.Response:
        return requests.post(f"{self.url}/v1/{self.cutout_path(res, x, y, z)}", data=codecs.encode(voxels),
                             headers={"Authorization": f"Token {self.token}",
                                      "Content-Type": "application/octet-stream"}, timeout=60)

    def get_level(self, res: int) -> np.ndarray:
        shape = self.call("GET", f"downsample/{CHANNEL}/").json()["extent"][str(res)]
        r = self.call("GET", self.cutout_path(res, (0, shape[0]), (0, shape[1]), (0, shape[2])))
        return codecs.decode(r.content, "uint16", tuple(shape[::-1]))


@pytest.fixture(scope="session")
def old_sqlite_dir(old_release, tmp_path_factory) -> OldData:
    return fill_with_old_release(old_release, tmp_path_factory.mktemp("old-data") / "data")


# --- the checks --------------------------------------------------------------------------------------


def check_served(url: str, old: OldData) -> None:
    """Everything the old release held, through the current server."""
    admin, alice, bob = (Http(url, old.tokens[u]) for u in ("admin", "alice", "bob"))
    for res, expected in enumerate(old.levels):
        assert np.array_equal(admin.get_level(res), expected), f"level {res} differs after the upgrade"
    assert np.array_equal(alice.get_level(0), old.levels[0])  # her group's permissions survived
    assert alice.post_cutout(0, (0, 16), (0, 16), (0, 1), np.ones((1, 16, 16), np.uint16)).status_code == 403
    bob.call("GET", alice.cutout_path(0, (0, 16), (0, 16), (0, 1)), expect=403)
    Http(url, "f" * 40).call("GET", f"collection/{C}/", expect=401)
    assert admin.call("GET", "permissions/?group=readers").json()["permission-sets"] == old.permissions
    assert admin.call("GET", "groups/readers/members/").json()["members"] == ["admin", "alice"]  # the creator too
    for path, pairs in META.items():
        for key, value in pairs.items():
            got = admin.call("GET", f"meta/{'/'.join(path)}/", params={"key": key}).json()
            assert got["value"] == value
    assert admin.call("GET", f"downsample/{CHANNEL}/").json()["status"] == "DOWNSAMPLED"
    frame = {k: v for k, v in admin.call("GET", "coord/frame1/").json().items() if k not in ("name", "creator")}
    assert (frame["x_stop"], frame["y_stop"], frame["z_stop"]) == EXTENT  # the widened columns kept their values
    admin.call("POST", "coord/deep/", {**frame, "z_stop": 2**40})  # BIGINT extents since revision 0002
    # still writable, and a new token works
    patch = np.full((1, 16, 16), 7, np.uint16)
    assert admin.post_cutout(0, (0, 16), (0, 16), (0, 1), patch).status_code == 201


def check_catalog(db_url: str, old: OldData, tokens: int = 3) -> None:
    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar_one()
            hashes = [h for (h,) in conn.execute(sqlalchemy.text("SELECT token_hash FROM tokens"))]
    finally:
        engine.dispose()
    assert version == migrate.head()
    assert len(hashes) == tokens and all(len(h) == 64 for h in hashes)
    assert not set(old.tokens.values()) & set(hashes)  # hashes stay hashes: no token is stored


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def ndex(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndex.cli.main", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


# --- the tests ---------------------------------------------------------------------------------------


def test_old_sqlite_directory_is_upgraded_by_serve_and_keeps_everything(old_sqlite_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(old_sqlite_dir.data, data)
    old = OldData(data, "", old_sqlite_dir.tokens, old_sqlite_dir.levels, old_sqlite_dir.permissions)
    before = dump(data / "ndex.sqlite")

    dry = ndex("upgrade", "--data", str(data), "--dry_run")
    assert dry.returncode == 0, dry.stderr
    assert "tables of an older release: 0001" in dry.stdout and "layout none recorded" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert dump(data / "ndex.sqlite") == before and not (data / "store" / "ndex-store.json").exists()

    proc, url = start_serve(data)
    try:
        check_served(url, old)
    finally:
        log = stop(proc)
    assert "upgraded the catalog" in log
    check_catalog(f"sqlite:///{data / 'ndex.sqlite'}", old)
    assert sqlite3.connect(data / "ndex.sqlite").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert (data / "store" / "ndex-store.json").exists()
    again = ndex("upgrade", "--data", str(data))
    assert again.returncode == 0 and "up to date" in again.stdout


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_old_sqlite_directory_backed_up_then_ndex_upgrade_then_serve(old_sqlite_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(old_sqlite_dir.data, data)
    old = OldData(data, "", old_sqlite_dir.tokens, old_sqlite_dir.levels, old_sqlite_dir.permissions)
    copy = tmp_path / "backup"
    done = ndex("backup", "--data", str(data), "--to", str(copy))
    assert done.returncode == 0, done.stderr
    assert dump(copy / "ndex.sqlite") == dump(data / "ndex.sqlite")
    assert (copy.stat().st_mode | (copy / "ndex.sqlite").stat().st_mode) & 0o077 == 0  # token hashes: owner only
    assert files(copy / "store") == files(data / "store") and len(files(copy / "store")) > 10
    refused = ndex("backup", "--data", str(data), "--to", str(copy))
    assert refused.returncode == 2 and "not empty" in refused.stderr

    done = ndex("upgrade", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "upgraded" in done.stdout
    proc, url = start_serve(data)
    try:
        check_served(url, old)
    finally:
        log = stop(proc)
    assert "upgraded the catalog" not in log  # nothing left to do


def test_old_postgresql_catalog_is_upgraded_and_keeps_everything(old_release, fresh_postgres_url, tmp_path):
    old = fill_with_old_release(old_release, tmp_path / "data", fresh_postgres_url)
    proc, url = start_serve(old.data, fresh_postgres_url)
    try:
        check_served(url, old)
    finally:
        log = stop(proc)
    assert "upgraded the catalog" in log
    check_catalog(fresh_postgres_url, old)


def test_a_catalog_of_the_very_first_commit_is_recognised(tmp_path):
    """9c37804 cannot serve, but its `ndex token create` wrote catalogs; the current server accepts them."""
    src = extract(FIRST, tmp_path / "src")
    data = tmp_path / "data"
    token = old_ndex(src, "token", "create", "--data", str(data), "--user", "ann", "--role", "admin").split()[-1]
    dry = ndex("upgrade", "--data", str(data), "--dry_run")
    assert "tables of an older release: 0001" in dry.stdout, dry.stdout + dry.stderr
    proc, url = start_serve(data)
    try:
        assert Http(url, token).call("GET", "collection/").json() == {"collections": []}
        Http(url, token).call("POST", "collection/new-lab/", {"description": "after the upgrade"})
    finally:
        stop(proc)
    check_catalog(f"sqlite:///{data / 'ndex.sqlite'}", OldData(data, "", {"ann": token}), tokens=1)
