"""`ndex token` and `ndex serve` from the command line, and the real-subprocess server fixture."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import intern
import pytest
import requests
from fixtures_server import ndex_cli, start_serve, stop_process
from intern.remote.boss import BossRemote

from ndex.cli.local_server import free_port
from ndex.cli.main import main
from ndex.server.db import DataDirLock


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


# intern's own integration suites, as shipped in the intern package (boss-api.md section 11.0: these four
# pass two stale trailing arguments to CoordinateFrameResource, which current intern refuses; they are dropped)
INTERN_SUITES = ("project", "volume", "metadata", "permission")
STALE_FRAME_ARGS = re.compile(r"(1, 1, 1, 'nanometers'), [01], 'nanoseconds'\)")


@pytest.mark.slow
def test_intern_integration_suites_pass(tmp_path):
    """The official client's own integration suites against a fresh `ndex serve`, run here rather than
    through a helper outside the repository, so a clean clone checks them too."""
    data, suite = tmp_path / "data", tmp_path / "suite"
    token = ndex_cli("token", "create", "--data", str(data), "--user", "suite", "--role", "admin")
    token = token.stdout.strip().splitlines()[-1]
    shipped = Path(intern.__file__).parent / "remote" / "boss" / "tests"
    suite.mkdir()
    for name in INTERN_SUITES:
        text = (shipped / f"int_test_{name}_v1.py").read_text()
        (suite / f"int_test_{name}_v1.py").write_text(STALE_FRAME_ARGS.sub(r"\1)", text))
    proc, url = start_serve(data)
    try:
        host = url.split("://", 1)[1]
        (suite / "test.cfg").write_text(f"[Default]\nprotocol = http\nhost = {host}\ntoken = {token}\n")
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              *sorted(str(f.name) for f in suite.glob("int_test_*_v1.py"))],
                             capture_output=True, text=True, timeout=900, cwd=suite)
    finally:
        stop_process(proc)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|failed|error)", run.stdout))
    assert counts.get("passed", 0) >= 60 and not counts.get("failed") and not counts.get("error"), run.stdout[-2000:]
