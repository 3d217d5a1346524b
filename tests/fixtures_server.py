"""pytest fixtures for tests that need an `ndex serve` (a plugin of tests/conftest.py).

* `ndex_server` (session): a real `ndex serve` subprocess on a free 127.0.0.1 port, temp --data dir,
  admin token from `ndex token create`.
* `server_app` (session): the same app in-process (uvicorn in a thread): faster, same attributes.
* `make_channel(server, ...)`: a fresh frame/collection/experiment/channel with unique names.

Both fixtures yield a `ServerHandle`: `.url`, `.token`, `.data_dir`, `.remote` (ndex.config.Remote),
`.intern_config()` (the dict intern's BossRemote takes) and `.headers`.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from ndex.cli.local_server import free_port
from ndex.config import Remote

__all__ = ["ServerHandle", "TestChannel", "app_server", "cli_token", "each_db_server", "make_channel", "ndex_server",
           "server_app", "serve_in_process", "start_serve", "start_uvicorn", "stop_process", "tls_server"]

STARTUP_SECONDS = 60


@dataclass(frozen=True)
class ServerHandle:
    url: str
    token: str = field(repr=False)
    data_dir: Path
    db_url: str = ""  # the server's --db; empty: SQLite in data_dir
    app: Any = field(default=None, repr=False, compare=False)  # the ASGI app, for servers run in-process

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'ndex.sqlite'}"

    def as_user(self, token: str) -> ServerHandle:
        """The same server, called with another token."""
        return ServerHandle(self.url, token, self.data_dir, self.db_url, self.app)

    @property
    def remote(self) -> Remote:
        host = self.url.split("://", 1)[1]
        return Remote("http", host, self.token, origin="test fixture")

    def intern_config(self) -> dict[str, str]:
        return self.remote.intern_config()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


@dataclass(frozen=True)
class TestChannel:
    __test__ = False  # not a test class, despite the name

    collection: str
    experiment: str
    channel: str
    frame: str
    datatype: str

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.experiment}/{self.channel}"


def wait_for_ping(url: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"ndex serve exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"{url}/ping/", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"ndex serve at {url} did not answer /ping/ within {STARTUP_SECONDS} s")


def ndex_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndex.cli.main", *args], capture_output=True, text=True,
                          check=True, timeout=120, **kw)


def cli_token(server: ServerHandle, user: str, role: str | None = None) -> ServerHandle:
    """The server called with a new token from `ndex token create` (which creates the user, with `role`,
    if it is new)."""
    args = ["token", "create", "--data", str(server.data_dir), "--db", server.db_url, "--user", user]
    return server.as_user(ndex_cli(*args, *(["--role", role] if role else [])).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def ndex_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("ndex-serve-data")
    token = ndex_cli("token", "create", "--data", str(data), "--user", "admin", "--role", "admin").stdout
    token = token.strip().splitlines()[-1]
    proc, url = start_serve(data)
    try:
        yield ServerHandle(url, token, data)
    finally:
        stop_process(proc)


def start_serve(data: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`ndex serve --data DATA FLAGS` as a subprocess on a free loopback port, answering /ping/; stop it with
    `stop_process`."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(data),
                             "--host", "127.0.0.1", "--port", str(port), "--quiet", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, proc)
    except RuntimeError:
        stop_process(proc)
        raise
    return proc, url


@contextmanager
def tls_server(directory: Path, *flags: str):
    """`ndex serve --ssl_certfile --ssl_keyfile` with a fresh self-signed certificate for 127.0.0.1 (made
    with the openssl CLI); yields (ServerHandle, requests session trusting that certificate)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    data = directory / "data"
    token = ndex_cli("token", "create", "--data", str(data), "--user", "admin", "--role", "admin").stdout.split()[-1]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(data), "--port", str(port),
                             "--ssl_certfile", str(cert), "--ssl_keyfile", str(key), "--quiet", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the test's own certificate
    session.verify = str(cert)
    # uvicorn's TLS keeps waiting at shutdown for a kept-alive connection that Python's ssl closes
    # without close_notify (curl and browsers send it): one connection per request
    session.headers["Connection"] = "close"
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if session.get(f"{url}/ping/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ndex serve over TLS did not start: {proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        yield ServerHandle(url, token, data), session
        session.close()
    finally:
        assert stop_process(proc), "ndex serve over TLS did not stop on SIGTERM"


def stop_process(proc: subprocess.Popen) -> bool:
    """Terminate a server subprocess (killed after 30 s); True if it stopped by itself."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
    finally:
        if proc.stderr is not None:
            proc.stderr.close()


def start_uvicorn(app) -> tuple[str, callable]:
    """Serve `app` on a free loopback port in a thread; returns (url, stop)."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="ndex-test-uvicorn")
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process ndex server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


def serve_in_process(data: Path, **settings) -> tuple[ServerHandle, object, callable]:
    """(handle, app, stop) of an in-process app on `data` with an admin token; `settings` go to ServerSettings."""
    from ndex.server.app import create_app
    from ndex.server.settings import ServerSettings
    from ndex.server.users import issue_token

    app = create_app(ServerSettings(data_dir=str(data), **{"cache_seconds": 0.5, **settings}))
    with app.state.services.db.begin() as conn:
        token = issue_token(conn, "admin", "admin")
    url, stop = start_uvicorn(app)
    return ServerHandle(url, token, data, settings.get("db_url", ""), app), app, stop


@pytest.fixture(scope="session")
def server_app(tmp_path_factory):
    handle, _, stop = serve_in_process(tmp_path_factory.mktemp("ndex-app-data"))
    try:
        yield handle
    finally:
        stop()


@contextmanager
def app_server(data: Path, db_url: str = "", cache_seconds: float = 0.5) -> Iterator[ServerHandle]:
    """`serve_in_process` as a context manager, on SQLite in `data` or on the database `db_url`."""
    handle, _, stop = serve_in_process(data, db_url=db_url, cache_seconds=cache_seconds)
    try:
        yield handle
    finally:
        stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def each_db_server(request, server_app, tmp_path_factory):
    """The tests of a module that use this run once on SQLite (the session's `server_app`) and once on a
    fresh PostgreSQL database of their own (which, unlike SQLite, enforces foreign keys)."""
    if request.param == "sqlite":
        yield server_app
        return
    url = request.getfixturevalue("postgres_server").create_database("each")
    with app_server(tmp_path_factory.mktemp("ndex-app-pg"), url) as server:
        yield server


def make_channel(server: ServerHandle, *, datatype: str = "uint8", kind: str = "image",
                 extent: tuple[int, int, int] = (1024, 1024, 64), time_samples: int = 1, levels: int = 1,
                 hierarchy: str = "isotropic", sources: tuple[str, ...] = (), public: bool = False,
                 voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0), session=None) -> TestChannel:
    """A new frame, collection, experiment and channel with unique names (annotation channels get an
    image source channel named `src` unless `sources` is given; `session`: a requests session to use)."""
    tag = uuid.uuid4().hex[:10]
    coll, exp, frame = f"col-{tag}", f"exp-{tag}", f"cf-{tag}"
    frame_body = {"x_start": 0, "x_stop": extent[0], "y_start": 0, "y_stop": extent[1], "z_start": 0,
                  "z_stop": extent[2], "x_voxel_size": voxel_size[0], "y_voxel_size": voxel_size[1],
                  "z_voxel_size": voxel_size[2], "voxel_unit": "nanometers"}
    _post(server, f"coord/{frame}", frame_body, session)
    _post(server, f"collection/{coll}", {"description": "test", "public": public}, session)
    _post(server, f"collection/{coll}/experiment/{exp}",
          {"coord_frame": frame, "num_hierarchy_levels": levels, "hierarchy_method": hierarchy,
           "num_time_samples": time_samples, "time_step": 0, "time_step_unit": "seconds", "public": public}, session)
    if kind == "annotation" and not sources:
        _post(server, f"collection/{coll}/experiment/{exp}/channel/src", {"type": "image", "datatype": "uint8"},
              session)
        sources = ("src",)
    _post(server, f"collection/{coll}/experiment/{exp}/channel/ch",
          {"type": kind, "datatype": datatype, "sources": list(sources), "public": public}, session)
    return TestChannel(coll, exp, "ch", frame, datatype)


def _post(server: ServerHandle, path: str, body: dict, session=None) -> None:
    r = (session or requests).post(f"{server.url}/v1/{path}", json=body, headers=server.headers, timeout=30)
    if r.status_code != 201:
        raise RuntimeError(f"creating {path} failed: {r.status_code} {r.text}")
