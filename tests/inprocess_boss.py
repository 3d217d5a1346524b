"""The real `BossClient` against the real server app, in this process: a requests transport adapter
that hands each request to the ASGI app on an event loop thread (no socket, the same bytes).

Faults are a wrapper around the real app, not a second implementation of BOSS: a `Faults` rule
answers in the server's place (a 429 with Retry-After, a 5xx, a BOSS error envelope), drops the
connection, cuts the body short, or rewrites the bytes going to or coming from the app. Every request
the client sends is recorded (`Boss.seen`), faulted or not, so tests count exactly what went over the
"wire".

    boss = Boss.start(tmp_path)              # a fresh app on its own SQLite and volume directory
    client = boss.client(threads=4)          # a real BossClient; pauses are recorded in boss.sleeps
    boss.faults.answer(429, headers={"Retry-After": "0"}, method="POST", times=2)
"""
from __future__ import annotations

import asyncio
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import blosc
import numpy as np
import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter

from ndex.client import BossClient, ChannelInfo, ChannelRef
from ndex.config import Remote
from ndex.geometry import Box

HOST = "127.0.0.1:9"  # a closed loopback port, never connected to: only the adapter mounted for it answers
APP_SECONDS = 120  # one request may take this long in the app before the test is stopped
CUTOUT = re.compile(r"^/v1/cutout/(?:to_black/)?(?P<coll>[^/]+)/(?P<exp>[^/]+)/(?P<chan>[^/]+)/(?P<res>\d+)/"
                    r"(?P<x>\d+):(?P<x1>\d+)/(?P<y>\d+):(?P<y1>\d+)/(?P<z>\d+):(?P<z1>\d+)/")


# --- what was sent ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as the client sent it."""

    method: str
    path: str
    query: str
    body: bytes = field(repr=False)

    @property
    def box(self) -> Box | None:
        """The cutout region addressed, if this was a cutout request."""
        m = CUTOUT.match(self.path)
        if m is None:
            return None
        return Box((int(m["x"]), int(m["y"]), int(m["z"])), (int(m["x1"]), int(m["y1"]), int(m["z1"])))

    @property
    def kind(self) -> str:
        """'post', 'get' or 'to_black' for cutouts; 'other' for everything else."""
        if self.path.startswith("/v1/cutout/to_black/"):
            return "to_black"
        if self.box is None:
            return "other"
        return self.method.lower()


def cutout_path(ref: ChannelRef | str, box: Box, res: int = 0) -> str:
    """The URL path of a cutout of `box`, for matching faults to one block."""
    (x0, x1), (y0, y1), (z0, z1) = box.x, box.y, box.z
    return f"/v1/cutout/{ref}/{res}/{x0}:{x1}/{y0}:{y1}/{z0}:{z1}/"


# --- faults -------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Fault:
    """A rule: requests whose method and path match, after `skip` of them went through, get `action`
    (at most `times` of them; None: all)."""

    method: str | None
    path: re.Pattern[str]
    action: str  # 'answer', 'drop', 'truncate', 'request', 'response'
    answer: Answer | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    times: int | None = None
    skip: int = 0

    def claims(self, seen: Seen) -> bool:
        if self.method not in (None, seen.method) or not self.path.search(seen.path):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True


class Faults:
    """What goes wrong between the client and the app, rule by rule (the first matching rule acts)."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def _add(self, action: str, method: str | None, path: str, times: int | None, skip: int, **kw: Any) -> Fault:
        rule = Fault(method, re.compile(path), action, times=times, skip=skip, **kw)
        with self._lock:
            self._rules.append(rule)
        return rule

    def answer(self, status: int, *, json_body: Any = None, body: bytes = b"", headers: dict[str, str] | None = None,
               method: str | None = None, path: str = "", times: int | None = None, skip: int = 0) -> Fault:
        """Answer in the app's place: `json_body` (or raw `body`) with `status` and `headers`."""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        return self._add("answer", method, path, times, skip, answer=Answer(status, dict(headers or {}), body))

    def boss_error(self, status: int, code: int, message: str, **match: Any) -> Fault:
        """BOSS's error envelope, as the server or a gateway in front of it would send."""
        return self.answer(status, json_body={"status": status, "code": code, "message": message}, **match)

    def drop(self, *, method: str | None = None, path: str = "", times: int | None = None, skip: int = 0) -> Fault:
        """The connection breaks before any answer (requests' ConnectionError)."""
        return self._add("drop", method, path, times, skip)

    def truncate(self, *, method: str | None = None, path: str = "", times: int | None = None,
                 skip: int = 0) -> Fault:
        """The app answers, but the body is cut off after half its announced length."""
        return self._add("truncate", method, path, times, skip)

    def rewrite_request(self, rewrite: Callable[[bytes], bytes], *, method: str | None = None, path: str = "",
                        times: int | None = None, skip: int = 0) -> Fault:
        """The app receives `rewrite(body)` instead of what the client sent (damage on the way in)."""
        return self._add("request", method, path, times, skip, rewrite=rewrite)

    def rewrite_response(self, rewrite: Callable[[bytes], bytes], *, method: str | None = None, path: str = "",
                         times: int | None = None, skip: int = 0) -> Fault:
        """The client receives `rewrite(body)` instead of what the app sent (a server that lies)."""
        return self._add("response", method, path, times, skip, rewrite=rewrite)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def match(self, seen: Seen) -> Fault | None:
        with self._lock:
            return next((rule for rule in self._rules if rule.claims(seen)), None)


def change_first_voxel(dtype: Any) -> Callable[[bytes], bytes]:
    """A rewrite of a blosc cutout body that adds 1 to its first voxel (data damaged in transit)."""
    def rewrite(body: bytes) -> bytes:
        data = np.frombuffer(blosc.decompress(body), dtype=dtype).copy()
        data[0] += 1
        return blosc.compress(data.tobytes(), typesize=data.dtype.itemsize)
    return rewrite


# --- the transport ------------------------------------------------------------------------------------


class AppLoop:
    """An event loop on a daemon thread that runs the app's coroutines for callers on other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ndex-inprocess-app")
        self.thread.start()

    def run(self, coro: Any, timeout: float = APP_SECONDS) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def call_asgi(app: Any, method: str, url: str, headers: dict[str, str], body: bytes) -> Answer:
    """One HTTP exchange with an ASGI app, as uvicorn would carry it."""
    parts = urlsplit(url)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": parts.scheme, "path": unquote(parts.path), "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(), "root_path": "",
        "headers": [(k.lower().encode("latin-1"), str(v).encode("latin-1"))
                    for k, v in {"host": parts.netloc, **headers}.items()],
        "client": ("127.0.0.1", 40000), "server": (parts.hostname or HOST, 80),
    }
    done = asyncio.Event()
    delivered = False
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # a streaming response listens for the client leaving: it leaves when done
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    answer_headers: dict[str, str] = {}
    for key, value in start.get("headers", []):
        answer_headers[key.decode("latin-1")] = value.decode("latin-1")
    return Answer(int(start["status"]), answer_headers, b"".join(chunks))


class AppAdapter(BaseAdapter):
    """requests' transport for `http://127.0.0.1:9/`: every request goes to the app in-process."""

    def __init__(self, boss: Boss, *, recorded: bool) -> None:
        super().__init__()
        self.boss, self.recorded = boss, recorded
        self._builder = HTTPAdapter()

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        assert request.url and request.method
        parts = urlsplit(request.url)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else bytes(body)
        seen = Seen(request.method, parts.path, parts.query, body)
        fault = self.boss.record(seen) if self.recorded else None
        if fault is not None and fault.action == "drop":
            raise requests.ConnectionError(f"connection to {HOST} dropped (injected fault)", request=request)
        if fault is not None and fault.action == "answer":
            assert fault.answer is not None
            return self._response(request, fault.answer)
        if fault is not None and fault.action == "request":
            assert fault.rewrite is not None
            body = fault.rewrite(body)
        with self.boss.active():
            answer = self.boss.loop.run(call_asgi(self.boss.app, request.method, request.url,
                                                  dict(request.headers), body))
        if fault is not None and fault.action == "response":
            assert fault.rewrite is not None
            body_out = fault.rewrite(answer.body)
            answer = Answer(answer.status, {**answer.headers, "content-length": str(len(body_out))}, body_out)
        if fault is not None and fault.action == "truncate":
            answer = Answer(answer.status, answer.headers, answer.body[: len(answer.body) // 2])
        return self._response(request, answer)

    def _response(self, request: requests.PreparedRequest, answer: Answer) -> requests.Response:
        headers = {"content-length": str(len(answer.body)), **answer.headers}
        raw = urllib3.HTTPResponse(body=io.BytesIO(answer.body), headers=headers, status=answer.status,
                                   preload_content=False, decode_content=False, enforce_content_length=True,
                                   request_method=request.method)
        return self._builder.build_response(request, raw)

    def close(self) -> None:
        self._builder.close()


# --- the server, seen from a test ---------------------------------------------------------------------


class Boss:
    """A fresh ndex server app in this process, real clients for it, and what they sent.

    `client()` gives clients whose requests are recorded and go through `faults`; `admin` is a quiet
    client (neither recorded nor faulted) for setting data up and reading it back.
    """

    def __init__(self, app: Any, token: str, data_dir: Path) -> None:
        self.app, self.token, self.data_dir = app, token, data_dir
        self.loop = AppLoop()
        self.faults = Faults()
        self.seen: list[Seen] = []
        self.sleeps: list[float] = []
        self.max_active = 0
        self._active = 0
        self._lock = threading.Lock()
        self._clients: list[BossClient] = []
        self.admin = self.client(recorded=False)

    @classmethod
    def start(cls, data_dir: Path, **settings: Any) -> Boss:
        from ndex.server.app import create_app
        from ndex.server.settings import ServerSettings
        from ndex.server.users import issue_token

        app = create_app(ServerSettings(data_dir=str(data_dir), **{"cache_seconds": 0.0, **settings}))
        with app.state.services.db.begin() as conn:
            token = issue_token(conn, "admin", "admin")
        return cls(app, token, data_dir)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.loop.run(self._shutdown())
        self.loop.close()

    async def _shutdown(self) -> None:
        async with self.app.router.lifespan_context(self.app):
            pass  # leaving the lifespan closes the app's jobs, store and database

    # --- clients ----------------------------------------------------------------------------------

    @property
    def remote(self) -> Remote:
        return Remote("http", HOST, self.token, origin="in-process test server")

    def session(self, recorded: bool = True) -> requests.Session:
        session = requests.Session()
        session.mount(f"http://{HOST}/", AppAdapter(self, recorded=recorded))  # longer than ndex's "http://"
        return session

    def client(self, *, recorded: bool = True, threads: int = 4, retries: int = 3, **kw: Any) -> BossClient:
        """A real BossClient for this app; its pauses are appended to `sleeps`, never slept."""
        kw.setdefault("sleep", self.sleeps.append)
        client = BossClient(self.remote, threads=threads, retries=retries,
                            session_factory=lambda: self.session(recorded), **kw)
        self._clients.append(client)
        return client

    def record(self, seen: Seen) -> Fault | None:
        with self._lock:
            self.seen.append(seen)
        return self.faults.match(seen)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Counts requests inside the app at once (`max_active`: what a client's thread limit allows)."""
        with self._lock:
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    # --- what was sent ----------------------------------------------------------------------------

    def count(self, kind: str) -> int:
        """Cutout requests of `kind` ('post', 'get', 'to_black') sent so far, retries included."""
        return sum(1 for s in self.seen if s.kind == kind)

    def boxes(self, kind: str) -> list[Box]:
        return [s.box for s in self.seen if s.kind == kind and s.box is not None]

    def forget(self) -> None:
        with self._lock:
            self.seen.clear()

    # --- data, set up and read back through the quiet client --------------------------------------

    def make_channel(self, ref: ChannelRef, datatype: str = "uint8", extent: tuple[int, int, int] = (1024, 1024, 64),
                     *, time_samples: int = 1, voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
                     levels: int = 1) -> ChannelInfo:
        """Collection, frame 0..extent, experiment and channel (an annotation channel for uint64)."""
        admin = self.admin
        admin.create_collection(ref.collection)
        frame = f"{ref.collection}_{ref.experiment}"
        admin.create_coord_frame(frame, (0, extent[0]), (0, extent[1]), (0, extent[2]), voxel_size=voxel_size)
        admin.create_experiment(ref.collection, ref.experiment, frame, num_hierarchy_levels=levels,
                                num_time_samples=time_samples)
        kind, sources = "image", ()
        if datatype == "uint64":
            src = ChannelRef(ref.collection, ref.experiment, f"{ref.channel}_src")
            admin.create_channel(src, "image", "uint8")
            kind, sources = "annotation", (src.channel,)
        admin.create_channel(ref, kind, datatype, sources=sources)
        return admin.channel_info(ref)

    def volume(self, ref: ChannelRef, box: Box | None = None, time_range: tuple[int, int] | None = None) -> np.ndarray:
        """What the server stores in `box` (default: the whole frame), as (z, y, x) or (t, z, y, x)."""
        info = self.admin.channel_info(ref)
        return self.admin.get_cutout(ref, 0, box or info.frame.box, info.dtype, time_range=time_range)

    def store(self, ref: ChannelRef, data: np.ndarray, start: tuple[int, int, int] = (0, 0, 0),
              time_range: tuple[int, int] | None = None) -> None:
        """Write `data` ((t,) z, y, x) at `start` (x, y, z), in pieces of at most 64 MiB."""
        zyx = data.shape[-3:]
        step = max(1, (64 * 2**20) // max(1, data[..., :1, :, :].nbytes))
        for z in range(0, zyx[0], step):
            piece = np.ascontiguousarray(data[..., z:z + step, :, :])
            box = Box((start[0], start[1], start[2] + z),
                      (start[0] + zyx[2], start[1] + zyx[1], start[2] + z + piece.shape[-3]))
            self.admin.post_cutout(ref, 0, box, piece, time_range=time_range)


def started(data_dir: Path, **settings: Any) -> Iterator[Boss]:
    """A fixture body: a fresh app, closed afterwards."""
    boss = Boss.start(data_dir, **settings)
    try:
        yield boss
    finally:
        boss.close()

