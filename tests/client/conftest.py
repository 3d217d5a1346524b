"""Fixtures of the client tests: a fake remote, a fast-retrying client, an HTTP mock, a raw socket server."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import responses
from client_fakes import TOKEN

from ndex.client import BossClient
from ndex.config import Remote


@pytest.fixture
def remote() -> Remote:
    return Remote("http", "127.0.0.1:9", TOKEN, origin="tests")


@pytest.fixture
def sleeps() -> list[float]:
    """Every pause the client asked for, instead of sleeping it."""
    return []


@pytest.fixture
def client(remote: Remote, sleeps: list[float]) -> Iterator[BossClient]:
    with BossClient(remote, threads=4, retries=3, backoff=0.01, sleep=sleeps.append) as boss:
        yield boss


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], str]]:
    """A 127.0.0.1 server that answers every connection with the given raw bytes, then hangs up.

    Calling the fixture value with the bytes starts it and returns its base URL.
    """
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def serve(listener: socket.socket, answer: bytes) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue  # wake up now and then to notice the end of the test
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    def start(answer: bytes) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.1)
        listeners.append(listener)
        thread = threading.Thread(target=serve, args=(listener, answer), daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    for listener in listeners:
        listener.close()
