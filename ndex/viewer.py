"""neuroglancer for ndex: one viewer per opened page, each reading its channels as OME-Zarr over HTTP.

Why neuroglancer's own Python server (and not a client we build): the `neuroglancer` PyPI package
ships a built client, but only its Python-integration build, which runs only when served by that
server at `/v/<viewer token>/` (it stops with "Failed to determine token from URL" elsewhere). A
standalone client would have to be built from the `neuroglancer` npm package, which is library
source needing a bundler and a dependency (`ikonate`) that npm fetches from a git host, not from the
registry: it cannot be installed on an offline machine or in our CI. So `ndex serve` and `ndex view`
start neuroglancer's Python server in their own process, bound to the same address, and hand it the
data: besides neuroglancer's routes it answers `/zarr/<viewer token>/<c>/<e>/<ch>/...` for exactly
the channels that viewer was opened on (see zarr_http.py). The browser therefore reads the data from
the viewer's own origin, and the only credential it ever holds is the unguessable viewer token in
its URL: the API token (header or login cookie) stays with the server or the Python process.

Pure of server and client code: `ndex serve` and `ndex view` each pass a `ChunkReader`.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ndex import codecs, zarr_http
from ndex.errors import UsageError
from ndex.geometry import Box

log = logging.getLogger(__name__)

MAX_VIEWERS = 64  # per process; the oldest page's viewer goes first
MAX_AGE = 12 * 3600.0  # seconds a viewer URL reads data: a revoked permission ends with it at the latest
NG_UNITS = {"nanometers": "nm", "micrometers": "um", "millimeters": "mm", "centimeters": "cm"}
ZARR_PATH = re.compile(r"^/zarr/(?P<token>[^/]+)/(?P<c>[^/]+)/(?P<e>[^/]+)/(?P<ch>[^/]+)/(?P<rest>.*)$")

# (collection, experiment, channel, res, t, box) -> the stored chunk bytes, None when empty
ChunkReader = Callable[[str, str, str, int, int, Box], "bytes | None"]


@dataclass(frozen=True)
class ViewedChannel:
    collection: str
    experiment: str
    zarr: zarr_http.ZarrChannel

    @property
    def key(self) -> tuple[str, str, str]:
        return self.collection, self.experiment, self.zarr.name


@dataclass
class _Grant:
    viewer: object  # the neuroglancer.Viewer (its server keeps only a weak reference)
    channels: dict[tuple[str, str, str], zarr_http.ZarrChannel]
    read: ChunkReader
    created: float = field(default_factory=time.monotonic)


_host: ViewerHost | None = None
_host_lock = threading.Lock()


def viewer_host(bind_address: str = "127.0.0.1", port: int = 0) -> ViewerHost:
    """The process's ViewerHost: neuroglancer's server is one per process, so its viewers and their
    zarr answers are too (the first caller's address and port stay)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = ViewerHost(bind_address, port)
        elif (bind_address, port) != (_host.bind_address, _host.wanted_port):
            log.info("the viewer server keeps %s:%s", _host.bind_address, _host.wanted_port)
        return _host


class ViewerHost:
    """neuroglancer's Python server in this process, plus the zarr answers for its viewers (use
    `viewer_host()`: one per process)."""

    def __init__(self, bind_address: str = "127.0.0.1", port: int = 0) -> None:
        try:
            import neuroglancer  # noqa: F401
        except ImportError:
            raise UsageError("the viewer needs the neuroglancer package: pip install 'ndex[viewer]'") from None
        self.bind_address, self.wanted_port = bind_address, port
        self._grants: OrderedDict[str, _Grant] = OrderedDict()
        self._lock = threading.Lock()
        self._server = None

    @property
    def port(self) -> int:
        return self._start().port

    def _start(self):
        import neuroglancer
        from neuroglancer import server

        with self._lock:
            if self._server is None:
                neuroglancer.set_server_bind_address(self.bind_address, self.wanted_port)
                server.start()
                self._server = server.global_server
                zarr, favicon = _handlers()
                self._server.app.add_handlers(r".*", [(ZARR_PATH.pattern, zarr, {"host": self}),
                                                      (r"/favicon\.ico", favicon)])
            return self._server

    def open(self, channels: list[ViewedChannel], read: ChunkReader, public_host: str) -> str:
        """A new viewer on `channels` (first one on top); returns its URL as `public_host` reaches it."""
        import neuroglancer

        srv = self._start()
        token = secrets.token_urlsafe(24)
        viewer = neuroglancer.Viewer(token=token)
        base = f"http://{public_host}:{srv.port}"
        with viewer.txn() as state:
            for ch in channels:
                source = f"zarr3://{base}/zarr/{token}/{ch.collection}/{ch.experiment}/{ch.zarr.name}/"
                if ch.zarr.annotation:
                    state.layers[ch.zarr.name] = neuroglancer.SegmentationLayer(source=source)
                else:
                    state.layers[ch.zarr.name] = neuroglancer.ImageLayer(source=source,
                                                                         shader_controls=contrast(ch, read))
            state.layout = "xy"  # neuroglancer centres on the data's bounds by itself
            state.dimensions = dimensions(channels[0].zarr)
        with self._lock:
            self._grants[token] = _Grant(viewer, {ch.key: ch.zarr for ch in channels}, read)
            while len(self._grants) > MAX_VIEWERS:
                self._grants.popitem(last=False)
        return f"{base}/v/{token}/"

    def answer(self, token: str, c: str, e: str, ch: str, rest: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of one zarr request of a viewer."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is not None and time.monotonic() - grant.created > MAX_AGE:
            grant = None  # open the page again (on ndex serve, the permission is checked again)
        zc = grant.channels.get((c, e, ch)) if grant else None
        if zc is None:
            return 404, b"", "text/plain"
        if rest in ("", "zarr.json"):
            return 200, json.dumps(zarr_http.group_json(zc)).encode(), "application/json"
        res, _, key = rest.partition("/")
        lv = zc.level(int(res)) if res.isdigit() else None
        if lv is None:
            return 404, b"", "text/plain"
        if key == "zarr.json":
            return 200, json.dumps(zarr_http.array_json(zc, lv)).encode(), "application/json"
        found = zarr_http.chunk_region(zc, lv, key)
        body = grant.read(c, e, ch, lv.res, *found) if found else None  # type: ignore[union-attr]  # zc came from it
        return (200, body, "application/octet-stream") if body else (404, b"", "text/plain")


def contrast(ch: ViewedChannel, read: ChunkReader) -> dict:
    """The image shader's range for wider than 8-bit data: the 0.5-99.5 percentiles of the middle chunk
    of the coarsest level (neuroglancer's default, the type's full range, shows 12-bit data as black)."""
    zc = ch.zarr
    if np.dtype(zc.dtype).itemsize == 1:
        return {}
    lv = zc.levels[-1]
    middle = "c/0/{}/{}/{}".format(*(n // 2 // c for n, c in zip(reversed(lv.extent), zarr_http.CHUNK_TZYX[1:])))
    found = zarr_http.chunk_region(zc, lv, middle)
    try:
        body = read(ch.collection, ch.experiment, zc.name, lv.res, *found) if found else None
    except Exception:  # noqa: BLE001 - no sample, no hint: the viewer still opens
        log.warning("no contrast sample for %s", zc.name, exc_info=True)
        body = None
    if not body:
        return {}
    voxels = codecs.decode(body, zc.dtype, zarr_http.CHUNK_TZYX[1:])
    voxels = voxels[voxels > 0]
    if voxels.size == 0:
        return {}
    lo, hi = (float(v) for v in np.percentile(voxels, [0.5, 99.5]))
    return {"normalized": {"range": [lo, hi if hi > lo else lo + 1]}}


def dimensions(zc: zarr_http.ZarrChannel):
    """x, y, z, t in that order: neuroglancer shows the first three global axes, and the OME order
    (t, z, y, x) would show the t-z plane."""
    import neuroglancer

    unit = NG_UNITS.get(zc.voxel_unit, "nm")
    vx, vy, vz = zc.levels[0].voxel_size
    return neuroglancer.CoordinateSpace(names=["x", "y", "z", "t"], units=[unit, unit, unit, ""],
                                        scales=[vx, vy, vz, 1])


def _handlers():
    """The tornado handler classes (built lazily: tornado comes with neuroglancer)."""
    import tornado.web
    from tornado.ioloop import IOLoop

    class ZarrHandler(tornado.web.RequestHandler):
        def initialize(self, host: ViewerHost) -> None:
            self.host = host

        async def get(self, token, c, e, ch, rest):
            try:
                status, body, media = await IOLoop.current().run_in_executor(
                    None, self.host.answer, token, c, e, ch, rest)
            except Exception:  # noqa: BLE001 - a failed read must not take the viewer's server down
                log.exception("viewer zarr read %s failed", self.request.path)
                status, body, media = 500, b"", "text/plain"
            self.set_status(status)
            self.set_header("Content-Type", media)
            self.finish(body)

    class NoIcon(tornado.web.RequestHandler):
        def get(self):  # browsers ask every server for one; a 404 would be a console error on each page
            self.set_status(204)

    return ZarrHandler, NoIcon
