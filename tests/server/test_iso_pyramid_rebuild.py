"""Rebuilding the isotropic pyramid of an anisotropic channel: the seed level copied into it replaces
what an earlier build left there (zeros included), and every time sample is copied."""
from __future__ import annotations

import time

import blosc
import numpy as np
import requests
from fixtures_server import make_channel


def cutout_url(server, tc, ranges: str) -> str:
    return f"{server.url}/v1/cutout/{tc.path}/{ranges}/"


def post(server, tc, ranges: str, data: np.ndarray) -> None:
    r = requests.post(cutout_url(server, tc, ranges), headers=server.headers, timeout=30,
                      data=blosc.compress(data.tobytes(), typesize=data.itemsize))
    assert r.status_code == 201, r.text


def get_iso(server, tc, ranges: str, shape) -> np.ndarray:
    r = requests.get(cutout_url(server, tc, ranges) + "?iso=true", headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    return np.frombuffer(blosc.decompress(r.content), np.uint8).reshape(shape)


def downsample(server, tc) -> None:
    url = f"{server.url}/v1/downsample/{tc.path}/"
    r = requests.post(url, headers=server.headers, timeout=30)
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = requests.get(url, headers=server.headers, timeout=30).json()["status"]
        if status in ("DOWNSAMPLED", "FAILED"):
            assert status == "DOWNSAMPLED"
            return
        time.sleep(0.05)
    raise AssertionError(f"downsample of {tc.path} did not finish")


def anisotropic_channel(server, time_samples: int = 1):
    # voxels 4x4x8: level 1 is isotropic, so the iso pyramid is seeded with level 1 and builds level 2
    return make_channel(server, extent=(64, 64, 16), levels=3, hierarchy="anisotropic", voxel_size=(4, 4, 8),
                        time_samples=time_samples)


def test_a_rebuild_clears_what_the_previous_build_copied(server_app):
    tc = anisotropic_channel(server_app)
    post(server_app, tc, "0/0:8/0:8/0:4", np.full((4, 8, 8), 90, np.uint8))
    downsample(server_app, tc)
    assert (get_iso(server_app, tc, "2/0:2/0:2/0:1", (1, 2, 2)) == 90).all()
    r = requests.put(f"{server_app.url}/v1/cutout/to_black/{tc.path}/0/0:8/0:8/0:4/", headers=server_app.headers,
                     timeout=30)
    assert r.status_code == 200, r.text
    downsample(server_app, tc)
    assert not get_iso(server_app, tc, "2/0:16/0:16/0:8", (8, 16, 16)).any()


def test_the_copy_covers_the_last_time_sample(server_app):
    tc = anisotropic_channel(server_app, time_samples=1)  # BOSS addresses t = 0 and t = 1
    post(server_app, tc, "0/0:8/0:8/0:4/1:2", np.full((1, 4, 8, 8), 60, np.uint8))
    downsample(server_app, tc)
    both = get_iso(server_app, tc, "2/0:2/0:2/0:1/0:2", (2, 1, 2, 2))
    assert not both[0].any() and (both[1] == 60).all()
