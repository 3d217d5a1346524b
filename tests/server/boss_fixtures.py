"""Helpers for the tests of BOSS's own rules: an app with its own settings and users, channels on offset
frames or with a base resolution, and cutout calls that return the response instead of asserting."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import blosc
import numpy as np
import requests
from fixtures_server import ServerHandle, TestChannel, start_uvicorn

from ndex.server.app import create_app
from ndex.server.settings import ServerSettings
from ndex.server.users import issue_token


@dataclass(frozen=True)
class World:
    """An in-process server of its own: `users[name]` is a handle with that user's token."""

    app: Any
    users: dict[str, ServerHandle]

    def status(self, tc: TestChannel, value: str) -> None:
        """Set a channel's downsample status directly, as a job in that state would have."""
        svc = self.app.state.services
        svc.catalog.set_status(svc.catalog.channel_info(tc.collection, tc.experiment, tc.channel).id, value)


@contextlib.contextmanager
def own_server(tmp_path, users: tuple[tuple[str, str], ...] = (), **settings) -> Iterator[World]:
    """A fresh in-process server with `settings`; user 'admin' (role admin) and `users` ((name, role))."""
    app = create_app(ServerSettings(data_dir=str(tmp_path), cache_seconds=0, **settings))
    with app.state.services.db.begin() as conn:
        tokens = {name: issue_token(conn, name, role) for name, role in (("admin", "admin"), *users)}
    url, stop = start_uvicorn(app)
    try:
        yield World(app, {name: ServerHandle(url, token, tmp_path) for name, token in tokens.items()})
    finally:
        stop()


def boss_channel(server: ServerHandle, *, start=(0, 0, 0), stop=(64, 64, 16), levels: int = 1,
                 hierarchy: str = "isotropic", base: int = 0, voxel_size=(1.0, 1.0, 1.0),
                 datatype: str = "uint8") -> TestChannel:
    """A new frame (which may start away from 0), collection, experiment and channel."""
    tag = uuid.uuid4().hex[:10]
    coll, exp, frame = f"col-{tag}", f"exp-{tag}", f"cf-{tag}"
    body = {f"{a}_{k}": v for k, vals in (("start", start), ("stop", stop)) for a, v in zip("xyz", vals)}
    body.update({f"{a}_voxel_size": v for a, v in zip("xyz", voxel_size)}, voxel_unit="nanometers")
    _create(server, f"coord/{frame}", body)
    _create(server, f"collection/{coll}", {"description": "test"})
    _create(server, f"collection/{coll}/experiment/{exp}",
            {"coord_frame": frame, "num_hierarchy_levels": levels, "hierarchy_method": hierarchy,
             "num_time_samples": 1})
    _create(server, f"collection/{coll}/experiment/{exp}/channel/ch",
            {"type": "image", "datatype": datatype, "base_resolution": base})
    return TestChannel(coll, exp, "ch", frame, datatype)


def _create(server: ServerHandle, path: str, body: dict) -> None:
    r = requests.post(f"{server.url}/v1/{path}", json=body, headers=server.headers, timeout=30)
    assert r.status_code == 201, f"creating {path}: {r.status_code} {r.text}"


def cutout_url(server: ServerHandle, tc: TestChannel, res: int, x, y, z) -> str:
    return f"{server.url}/v1/cutout/{tc.path}/{res}/{x[0]}:{x[1]}/{y[0]}:{y[1]}/{z[0]}:{z[1]}/"


def post(server: ServerHandle, tc: TestChannel, res: int, x, y, z, data: np.ndarray,
         **kw) -> requests.Response:
    body = blosc.compress(np.ascontiguousarray(data).tobytes(), typesize=data.itemsize)
    return requests.post(cutout_url(server, tc, res, x, y, z), data=body, headers=server.headers, timeout=30, **kw)


def get(server: ServerHandle, tc: TestChannel, res: int, x, y, z) -> requests.Response:
    return requests.get(cutout_url(server, tc, res, x, y, z), headers=server.headers, timeout=30)


def read(server: ServerHandle, tc: TestChannel, res: int, x, y, z) -> np.ndarray:
    r = get(server, tc, res, x, y, z)
    assert r.status_code == 200, r.text
    shape = (z[1] - z[0], y[1] - y[0], x[1] - x[0])
    return np.frombuffer(blosc.decompress(r.content), dtype=tc.datatype).reshape(shape)


def downsample(server: ServerHandle, tc: TestChannel, verb: str = "POST") -> requests.Response:
    return requests.request(verb, f"{server.url}/v1/downsample/{tc.path}/", headers=server.headers, timeout=30)
