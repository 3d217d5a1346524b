"""A small fake render-ws on 127.0.0.1 serving a synthetic, deterministic 16-bit volume.

It answers the endpoints ndex's render source uses, with render's shapes:

    GET /render-ws/v1/owner/{owner}/project/{project}/stack/{stack}         stack metadata JSON
    GET .../stack/{stack}/z/{z}/box/{x},{y},{w},{h},{scale}/png-image        8-bit grey as RGBA PNG
    GET .../stack/{stack}/z/{z}/box/{x},{y},{w},{h},{scale}/tiff16-image     16-bit grey TIFF
    anything else, or another owner/project/stack                          404

The volume lives at render coordinates x ORIGIN[0].., y ORIGIN[1].., z ORIGIN[2]..; `volume[z, y, x]`
is indexed from that origin. png-image is `volume >> 8` (what an 8-bit rendering of it shows); a
box is scaled by nearest neighbour (pixel j of a box at `scale` shows stack pixel y + floor(j / scale)),
and parts outside the volume are 0, as render draws no tiles there.

Use it from a conftest:  `from tests.fixtures_render import render_server  # noqa: F401`
"""
from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import tifffile
from PIL import Image

OWNER, PROJECT, STACK = "flyTEM", "demo_project", "v1_acquire"
ORIGIN = (100, 40, 3)  # x, y, z of volume[0, 0, 0] in render coordinates
SHAPE_ZYX = (6, 150, 230)
CHANNELS = ["DAPI", "GFP"]

BOX = re.compile(r"/z/(-?\d+)/box/(-?\d+),(-?\d+),(\d+),(\d+),([0-9.eE+-]+)/(png|tiff16)-image$")


def synthetic_volume(shape_zyx: tuple[int, int, int] = SHAPE_ZYX) -> np.ndarray:
    """Deterministic uint16 values spread over the whole 0..65535 range, different in every voxel row."""
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.uint32) for n in shape_zyx), indexing="ij")
    return ((x * 283 + y * 1021 + z * 7919) % 65536).astype(np.uint16)


class FakeRender:
    """The server's state; the fixture yields one of these."""

    def __init__(self) -> None:
        self.owner, self.project, self.stack = OWNER, PROJECT, STACK
        self.origin = ORIGIN
        self.volume = synthetic_volume()
        self.channels = list(CHANNELS)
        self.requests: list[str] = []  # path?query of every request, in arrival order
        self.fail_next = 0  # answer this many next requests with HTTP 500 (to exercise retries)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/render-ws/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-render", daemon=True)

    @property
    def stack_path(self) -> str:
        return f"/render-ws/v1/owner/{self.owner}/project/{self.project}/stack/{self.stack}"

    def metadata(self) -> dict:
        (x0, y0, z0), (nz, ny, nx) = self.origin, self.volume.shape
        bounds = {"minX": float(x0), "maxX": float(x0 + nx - 1), "minY": float(y0), "maxY": float(y0 + ny - 1),
                  "minZ": float(z0), "maxZ": float(z0 + nz - 1)}
        return {"stackId": {"owner": self.owner, "project": self.project, "stack": self.stack},
                "state": "COMPLETE",
                "stats": {"stackBounds": bounds, "channelNames": self.channels, "maxTileWidth": 64,
                          "maxTileHeight": 64, "sectionCount": nz}}

    def box(self, z: int, x: int, y: int, w: int, h: int, scale: float) -> np.ndarray:
        """What render would draw for the box, as uint16."""
        out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
        (x0, y0, z0), (nz, ny, nx) = self.origin, self.volume.shape
        ys = y - y0 + np.floor(np.arange(out_h) / scale).astype(np.int64)
        xs = x - x0 + np.floor(np.arange(out_w) / scale).astype(np.int64)
        out = np.zeros((out_h, out_w), dtype=np.uint16)
        if not 0 <= z - z0 < nz:
            return out
        inside_y, inside_x = (ys >= 0) & (ys < ny), (xs >= 0) & (xs < nx)
        plane = self.volume[z - z0]
        out[np.ix_(inside_y, inside_x)] = plane[np.ix_(ys[inside_y], xs[inside_x])]
        return out

    def start(self) -> FakeRender:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def _encode(image16: np.ndarray, kind: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if kind == "tiff16":
        tifffile.imwrite(buffer, image16)
        return buffer.getvalue(), "image/tiff"
    grey = (image16 >> 8).astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    Image.fromarray(rgba).save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"


def _handler(fake: FakeRender) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with fake.lock:
                fake.requests.append(self.path)
                failing = fake.fail_next > 0
                fake.fail_next -= failing
            if failing:
                return self._send(500, b"synthetic failure", "text/plain")
            path = urllib.parse.urlsplit(self.path).path
            if path == fake.stack_path:
                return self._send(200, json.dumps(fake.metadata()).encode(), "application/json")
            match = BOX.fullmatch(path[len(fake.stack_path):]) if path.startswith(fake.stack_path) else None
            if match is None:
                return self._send(404, f"no such owner/project/stack or resource: {path}".encode(), "text/plain")
            z, x, y, w, h = (int(v) for v in match.groups()[:5])
            body, ctype = _encode(fake.box(z, x, y, w, h, float(match.group(6))), match.group(7))
            return self._send(200, body, ctype)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def render_server():
    """A running FakeRender: .base_url, .owner, .project, .stack, .volume (uint16 truth), .origin, .requests."""
    fake = FakeRender().start()
    try:
        yield fake
    finally:
        fake.stop()
