"""What `ndex serve` writes is readable by the server's user only, and a local store has one server."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import ServerHandle, make_channel, ndex_cli, start_serve, stop_process

from ndex.cli.local_server import free_port
from ndex.cli.main import main
from ndex.server.db import DataDirLock, StoreLock


def loose(root: Path) -> list[str]:
    """Everything under root (root included) that a group or other user could read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return found


def test_data_and_store_are_private_to_the_servers_user(tmp_path):
    old = os.umask(0o022)  # what most shells have: ndex must not depend on a strict one
    try:
        data, store = tmp_path / "data", tmp_path / "elsewhere" / "store"
        token = ndex_cli("token", "create", "--data", str(data), "--user", "admin", "--role", "admin").stdout.strip()
        proc, url = start_serve(data, "--store", str(store))
        try:
            server = ServerHandle(url, token, data)
            tc = make_channel(server, extent=(512, 512, 16), levels=2)
            r = requests.post(f"{url}/v1/cutout/{tc.path}/0/0:512/0:512/0:16/", headers=server.headers, timeout=60,
                              data=blosc.compress(np.arange(512 * 512 * 16, dtype=np.uint8).tobytes(), typesize=1))
            assert r.status_code == 201
            assert requests.post(f"{url}/v1/downsample/{tc.path}/", headers=server.headers,
                                 timeout=30).status_code == 201
            files = [p for p in store.rglob("*") if p.is_file()]
            assert len(files) > 3 and (data / "ndex.sqlite").is_file()
            assert loose(data) == [] and loose(store) == []
        finally:
            stop_process(proc)
    finally:
        os.umask(old)


def test_a_data_directory_open_to_other_users_is_named_at_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older ndex, or a mkdir by hand, left it
    proc, _ = start_serve(data)
    try:
        line = proc.stderr.readline().decode()
    finally:
        stop_process(proc)
    assert f"{data} is open to other users (mode 755): chmod go= {data}" in line


@pytest.mark.parametrize("spelling", ["path", "file-url", "default"])
def test_a_second_server_on_the_same_store_with_another_data_dir_is_refused(tmp_path, spelling, capsys):
    first_data = tmp_path / "one"
    store = first_data / "store" if spelling == "default" else tmp_path / "store"
    given = {"path": str(store), "file-url": f"file://{store}", "default": str(store)}[spelling]
    lock = StoreLock(store).acquire()  # what the first server holds
    try:
        assert main(["serve", "--data", str(tmp_path / "two"), "--store", given, "--port", "1"]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and str(store) in err and "--store" in err
        assert DataDirLock(tmp_path / "two").acquire().release() is None  # the refused server let go of --data
    finally:
        lock.release()


def test_a_real_second_server_on_a_running_servers_store_is_refused_and_may_start_after_it(tmp_path):
    store = tmp_path / "store"
    proc, _ = start_serve(tmp_path / "one", "--store", str(store))
    try:
        second = subprocess.run([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(tmp_path / "two"),
                                 "--store", str(store), "--port", str(free_port())],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"pid {proc.pid}" in second.stderr and "--store" in second.stderr
    finally:
        stop_process(proc)
    proc, _ = start_serve(tmp_path / "two", "--store", str(store))  # the lock went with the first server
    stop_process(proc)
