"""`ndex token` and `ndex serve` from the command line, and the real-subprocess server fixture."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from fixtures_server import ndex_cli
from intern.remote.boss import BossRemote

from ndex.cli.local_server import free_port
from ndex.cli.main import main
from ndex.server.db import DataDirLock

# the steering repo's helper sits beside this repository (shared/ next to the clone), as in CI
SUITES = Path(__file__).resolve().parents[3] / "shared" / "tools" / "intern-suites"


def test_token_create_list_revoke(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert main(["token", "create", "--data", data, "--user", "ann", "--role", "resource-manager"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) == 40 and "\n" not in token
    assert main(["token", "create", "--data", data, "--user", "ann"]) == 0
    second = capsys.readouterr().out.strip()
    assert second != token
    assert main(["token", "list", "--data", data]) == 0
    listing = capsys.readouterr().out
    assert "ann" in listing and "resource-manager" in listing and token not in listing and second not in listing
    assert main(["token", "revoke", "--data", data, "--id", "1"]) == 0
    assert "revoked 1" in capsys.readouterr().out
    assert main(["token", "revoke", "--data", data, "--user", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert token not in (tmp_path / "data" / "ndex.sqlite").read_bytes().decode("latin-1")


def test_second_server_on_the_same_directory_is_refused(tmp_path, capsys):
    lock = DataDirLock(tmp_path).acquire()
    try:
        assert main(["serve", "--data", str(tmp_path), "--port", str(free_port())]) == 2
        err = capsys.readouterr().err
        assert f"pid {__import__('os').getpid()}" in err and "--data" in err
    finally:
        lock.release()


def test_workers_need_a_server_database(tmp_path, capsys):
    assert main(["serve", "--data", str(tmp_path), "--workers", "2"]) == 2
    assert "postgresql" in capsys.readouterr().err


def test_real_server_subprocess_serves_intern(ndex_server):
    assert requests.get(f"{ndex_server.url}/ping/", timeout=30).status_code == 200
    rmt = BossRemote(ndex_server.intern_config())
    assert isinstance(rmt.list_collections(), list)
    assert ndex_server.remote.url == ndex_server.url
    assert (ndex_server.data_dir / "ndex.sqlite").is_file()


def test_first_serve_creates_admin_and_says_how_to_get_a_token(tmp_path):
    port = str(free_port())
    proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(tmp_path), "--port", port],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert f"ndex token create --data {tmp_path} --user admin --role admin" in line
    assert "admin" in ndex_cli("token", "list", "--data", str(tmp_path)).stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the intern-suites script needs bash")
@pytest.mark.skipif(not SUITES.is_file(), reason=f"{SUITES} is not present on this machine")
def test_intern_integration_suites_pass(tmp_path):
    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(SUITES)], capture_output=True, text=True, timeout=900, env=env,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
