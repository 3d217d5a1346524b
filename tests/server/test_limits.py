"""Bounded work and memory: scans follow stored chunks, requests have a deadline, cutouts in flight share a
memory budget (503 + Retry-After above it), a cutout no blosc-1 frame carries is a 413, bodies are refused
on their declared size, slow clients are cut off, and SIGTERM stops the server with a request in flight."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import anyio
import blosc
import numpy as np
import pytest
import requests
from fixtures_backends import serve_app
from fixtures_server import make_channel, ndex_cli, wait_for_ping

from ndex import codecs
from ndex.cli.local_server import free_port
from ndex.server.values import MAX_EXTENT


@pytest.fixture
def served(tmp_path):
    """serve(**settings) -> (handle, app) of an in-process server with those settings; stopped afterwards."""
    stops = []

    def serve(**settings):
        handle, stop, app = serve_app(tmp_path / f"d{len(stops)}", **settings)
        stops.append(stop)
        return handle, app

    yield serve
    for stop in stops:
        stop()


def get(server, path: str, **kw) -> requests.Response:
    r = requests.get(server.url + path, headers=server.headers, timeout=120, **kw)
    assert r.status_code < 500 or r.status_code == 503, r.text  # busy, never broken
    return r


def post_blosc(server, path: str, data: np.ndarray) -> requests.Response:
    return requests.post(server.url + path, data=codecs.encode(data), timeout=120,
                         headers={**server.headers, "Content-Type": "application/blosc"})


class Counted:
    """Counts calls of one method of an object while the test runs (the real method still runs)."""

    def __init__(self, monkeypatch, obj, name: str) -> None:
        self.calls = 0
        real = getattr(obj, name)

        def counting(*args, **kw):
            self.calls += 1
            return real(*args, **kw)

        monkeypatch.setattr(obj, name, counting)


# --- bounded work -------------------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_scans_of_a_frame_2_40_deep_read_only_the_stored_chunk(served, monkeypatch, request, db):
    db_url = request.getfixturevalue("fresh_postgres_url") if db == "postgresql" else ""
    server, app = served(db_url=db_url)
    deep = make_channel(server, kind="annotation", datatype="uint64", extent=(1024, 1024, MAX_EXTENT))
    block = np.zeros((16, 512, 512), np.uint64)
    block[3:5, 10:20, 30:40] = 7
    z0 = MAX_EXTENT - 2**10  # 2**36 chunk rows deep (13-digit coordinates): a scan that walked the frame would not finish
    assert post_blosc(server, f"/v1/cutout/{deep.path}/0/512:1024/0:512/{z0}:{z0 + 16}", block).status_code == 201
    store = app.state.services.store
    reads, listings = Counted(monkeypatch, store, "read"), Counted(monkeypatch, store.arrays, "chunk_rows")
    loose = get(server, f"/v1/boundingbox/{deep.path}/0/7").json()
    tight = get(server, f"/v1/boundingbox/{deep.path}/0/7", params={"type": "tight"}).json()
    assert loose == {"x_range": [512, 1024], "y_range": [0, 512], "z_range": [z0, z0 + 16], "t_range": [0, 1]}
    assert tight == {"x_range": [542, 552], "y_range": [10, 20], "z_range": [z0 + 3, z0 + 5], "t_range": [0, 1]}
    assert reads.calls == 2 and listings.calls == 0  # one stored chunk per scan, one listing of the time sample
    ids = get(server, f"/v1/ids/{deep.path}/0/0:1024/0:1024/{z0 - 64}:{z0 + 128}").json()  # 48 cuboids
    assert ids == {"ids": ["7"]}
    assert reads.calls == 3
    back = blosc.decompress(get(server, f"/v1/cutout/{deep.path}/0/512:1024/0:512/{z0}:{z0 + 16}").content)
    assert np.array_equal(np.frombuffer(back, np.uint64).reshape(block.shape), block)


def test_a_scan_past_the_request_deadline_stops_with_413(served):
    server, _app = served(request_timeout=1e-6)
    chan = make_channel(server, kind="annotation", datatype="uint64", extent=(512, 512, 16))
    assert post_blosc(server, f"/v1/cutout/{chan.path}/0/0:512/0:512/0:16", np.ones((16, 512, 512), np.uint64)
                      ).status_code == 201
    r = get(server, f"/v1/boundingbox/{chan.path}/0/1")
    assert r.status_code == 413 and "--request_timeout" in r.json()["message"]
    assert get(server, f"/v1/ids/{chan.path}/0/0:512/0:512/0:16").status_code == 413


# --- memory -------------------------------------------------------------------------------------------


def test_cutouts_over_the_memory_budget_get_503_with_retry_after(served):
    server, app = served(cutout_memory_mb=28)
    chan = make_channel(server, kind="annotation", datatype="uint64", extent=(512, 512, 16))
    path = f"/v1/cutout/{chan.path}/0/0:512/0:128/0:16"  # 8 MiB of uint64: 16 MiB with its encoded copy
    data = np.full((16, 128, 512), 5, np.uint64)
    assert post_blosc(server, path, data).status_code == 201
    budget = app.state.cutout_budget
    with budget.reserve(27 * 2**20):  # other cutouts in flight hold nearly all of it
        for r in (get(server, path), get(server, path, params={"filter": "5"}),
                  post_blosc(server, path, np.full_like(data, 9))):
            assert r.status_code == 503 and r.headers["Retry-After"].isdigit(), r.text
    assert budget.in_use == 0
    back = blosc.decompress(get(server, path).content)
    assert np.array_equal(np.frombuffer(back, np.uint64).reshape(data.shape), data)  # the refused POST saved nothing
    r = get(server, f"/v1/cutout/{chan.path}/0/0:512/0:512/0:16", params={"filter": "5"})  # 3 x 32 MiB > budget
    assert r.status_code == 413 and "--cutout_memory_mb" in r.json()["message"]


def test_concurrent_cutouts_never_hold_more_than_the_budget(served):
    server, app = served(cutout_memory_mb=40)
    chan = make_channel(server, datatype="uint16", extent=(2048, 512, 16))
    path = f"/v1/cutout/{chan.path}/0/0:1024/0:512/0:16"  # 32 MiB with its encoded copy: one fits at a time
    answers = []

    def pull():
        answers.append(requests.get(server.url + path, headers=server.headers, timeout=120))

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status_code for r in answers} <= {200, 503} and 200 in {r.status_code for r in answers}
    assert 0 < app.state.cutout_budget.peak <= 40 * 2**20


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_cutout_no_blosc_frame_carries_is_413_naming_the_limit(served, method):
    server, _app = served()
    chan = make_channel(server, kind="annotation", datatype="uint64", extent=(4096, 4096, 16))
    url = f"{server.url}/v1/cutout/{chan.path}/0/0:4096/0:4096/0:16"  # 2 GiB: under the counted cap, over a frame
    r = requests.request(method, url, data=b"x" * 1000, timeout=120,
                         headers={**server.headers, "Content-Type": "application/blosc"})
    assert r.status_code == 413 and str(codecs.MAX_FRAME_BYTES) in r.json()["message"]


def raw_exchange(url: str, head: bytes, wait: float = 30) -> bytes:
    """Send `head` on a fresh connection and return what comes back until the server closes or `wait` passes."""
    host, port = url.split("://")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b'"message"' in answer:
                    break
        except TimeoutError:
            pass
        return answer


@pytest.mark.parametrize(("path", "status"), [("/v1/cutout/c/e/ch/0/0:8/0:8/0:1", b"413"),
                                              ("/v1/collection/c", b"413"), ("/ping", b"413")])
def test_bodies_are_refused_on_their_declared_size_before_they_arrive(served, path, status):
    server, _app = served()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {server.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {2**40}\r\n\r\n").encode()
    answer = raw_exchange(server.url, head)  # no body is ever sent: only the headers can decide
    assert answer.split(b" ")[1] == status, answer[:300]


def test_a_json_body_longer_than_any_resource_body_is_refused_unread(served):
    server, _app = served()
    head = (f"POST /v1/collection/c HTTP/1.1\r\nHost: x\r\nAuthorization: Token {server.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {2**21}\r\n\r\n").encode()
    assert raw_exchange(server.url, head).split(b" ")[1] == b"400"


# --- slow clients and shutdown (a real `ndex serve`) -----------------------------------------------------


@pytest.fixture
def ndex_serve(tmp_path):
    """start(*flags) -> (url, token, process) of `ndex serve` on a free port; stopped afterwards."""
    procs = []

    def start(*flags: str):
        data = tmp_path / f"data{len(procs)}"
        token = ndex_cli("token", "create", "--data", str(data), "--user", "admin", "--role", "admin").stdout
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(data), "--port",
                                 str(port), "--quiet", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ})
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, proc)
        return url, token.strip().splitlines()[-1], proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("sent", [b"", b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: "])
def test_connections_that_never_finish_their_headers_are_closed(ndex_serve, sent):
    url, _token, _proc = ndex_serve("--client_timeout", "1")
    start = time.monotonic()
    assert raw_exchange(url, sent, wait=60) == b""  # closed by the server, with nothing to answer
    assert time.monotonic() - start < 50


def test_a_body_that_stops_arriving_gets_408_and_the_server_keeps_serving(ndex_serve):
    url, token, _proc = ndex_serve("--client_timeout", "1")
    head = (f"POST /v1/collection/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"descr").encode()
    answer = raw_exchange(url, head, wait=60)
    assert answer.split(b" ")[1] == b"408" and b"--client_timeout" in answer
    assert requests.get(f"{url}/v1/collection/slow", headers={"Authorization": f"Token {token}"},
                        timeout=30).status_code == 404


def test_sigterm_stops_the_server_with_a_request_in_flight(ndex_serve):
    url, token, proc = ndex_serve("--client_timeout", "600")
    host, port = url.split("://")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall((f"POST /v1/collection/held HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{").encode())
        time.sleep(0.5)  # the request is in the app, waiting for the rest of its body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled


def test_endless_headers_are_refused_with_431(ndex_serve):
    url, _token, _proc = ndex_serve("--client_timeout", "60")
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"y" * 1000) for i in range(100))
    assert raw_exchange(url, head, wait=60).split(b" ")[1] == b"431"


def test_the_body_timeout_does_not_cut_a_long_answer():
    """Once the body is in, reads of the ASGI channel wait for a disconnect (Starlette's streaming answers
    do): the client timeout must not end them."""
    from ndex.server.limits import RequestGuard

    messages = [{"type": "http.request", "body": b"x", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await anyio.sleep(0.3)  # longer than the client timeout below
        return {"type": "http.disconnect"}

    async def app(scope, receive_, send):
        assert (await receive_())["body"] == b"x"
        assert (await receive_())["type"] == "http.disconnect"

    guard = RequestGuard(app, request_timeout=0, client_timeout=0.1)
    anyio.run(guard, {"type": "http", "path": "/", "query_string": b"", "headers": []}, receive, None)
