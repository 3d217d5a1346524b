"""Downsample jobs (status life cycle, pyramid contents, cancel), PNG slices, and the 500 guard."""
from __future__ import annotations

import io
import time

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import ServerHandle, make_channel, start_uvicorn
from PIL import Image

from ndex.server.app import create_app
from ndex.server.settings import ServerSettings
from ndex.server.users import issue_token
from ndex.server.volumes import VolumeStore


def post_cutout(server, tc, ranges, data):
    r = requests.post(f"{server.url}/v1/cutout/{tc.path}/{ranges}/", headers=server.headers, timeout=30,
                      data=blosc.compress(np.ascontiguousarray(data).tobytes(), typesize=data.itemsize * 8))
    assert r.status_code == 201, r.text


def get_cutout(server, tc, ranges, dtype, shape):
    r = requests.get(f"{server.url}/v1/cutout/{tc.path}/{ranges}/", headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    return np.frombuffer(blosc.decompress(r.content), dtype=dtype).reshape(shape)


def wait_status(server, tc, wanted, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = requests.get(f"{server.url}/v1/downsample/{tc.path}/", headers=server.headers, timeout=30).json()
        if status["status"] in wanted:
            return status
        time.sleep(0.05)
    raise AssertionError(f"downsample never reached {wanted}: {status}")


def test_downsample_builds_levels_and_reports_geometry(server_app):
    tc = make_channel(server_app, extent=(64, 64, 16), levels=3, hierarchy="anisotropic", voxel_size=(4, 4, 40))
    post_cutout(server_app, tc, "0/0:4/0:4/0:1", np.full((1, 4, 4), 200, np.uint8))
    url = f"{server_app.url}/v1/downsample/{tc.path}/"
    before = requests.get(url, headers=server_app.headers, timeout=30).json()
    assert before["status"] == "NOT_DOWNSAMPLED" and before["num_hierarchy_levels"] == 3
    assert before["extent"] == {"0": [64, 64, 16], "1": [32, 32, 16], "2": [16, 16, 16]}
    assert before["voxel_size"]["2"] == [16.0, 16.0, 40.0] and before["cuboid_size"]["1"] == [512, 512, 16]
    assert requests.post(url, headers=server_app.headers, timeout=30).status_code == 201
    done = wait_status(server_app, tc, {"DOWNSAMPLED", "FAILED"})
    assert done["status"] == "DOWNSAMPLED"
    assert (get_cutout(server_app, tc, "1/0:2/0:2/0:1", np.uint8, (1, 2, 2)) == 200).all()
    r = requests.delete(url, headers=server_app.headers, timeout=30)
    assert r.status_code == 409 and r.json()["code"] == 2006
    chan = requests.get(f"{server_app.url}/v1/collection/{tc.collection}/experiment/{tc.experiment}/channel/ch",
                        headers=server_app.headers, timeout=30).json()
    assert chan["downsample_status"] == "DOWNSAMPLED"
    post_cutout(server_app, tc, "0/0:4/0:4/0:1", np.full((1, 4, 4), 100, np.uint8))  # stale pyramid
    assert requests.get(url, headers=server_app.headers, timeout=30).json()["status"] == "NOT_DOWNSAMPLED"


def test_second_post_while_queued_is_409_and_delete_cancels(server_app):
    tc = make_channel(server_app, extent=(2048, 2048, 64), levels=4)
    post_cutout(server_app, tc, "0/0:16/0:16/0:16", np.full((16, 16, 16), 3, np.uint8))
    url = f"{server_app.url}/v1/downsample/{tc.path}/"
    assert requests.post(url, headers=server_app.headers, timeout=30).status_code == 201
    r = requests.post(url, headers=server_app.headers, timeout=30)
    if r.status_code != 201:  # unless the job already finished, a second start is refused
        assert r.status_code == 409 and r.json()["code"] == 2006
    r = requests.delete(url, headers=server_app.headers, timeout=30)
    status = requests.get(url, headers=server_app.headers, timeout=30).json()["status"]
    if r.status_code == 204:
        assert status == "NOT_DOWNSAMPLED"
    else:  # the job was faster than the DELETE
        assert r.status_code == 409 and status == "DOWNSAMPLED"


@pytest.mark.parametrize("orient,path,shape", [("xy", "0:8/0:4/1", (4, 8)), ("xz", "0:8/2/0:3", (3, 8)),
                                               ("yz", "5/0:4/0:3", (3, 4))])
def test_png_slices_scale_16_bit(server_app, orient, path, shape):
    tc = make_channel(server_app, datatype="uint16", extent=(64, 64, 16))
    data = (np.arange(3 * 4 * 8, dtype=np.uint16).reshape(3, 4, 8) + 1) * 256
    post_cutout(server_app, tc, "0/0:8/0:4/0:3", data)
    r = requests.get(f"{server_app.url}/v1/image/{tc.path}/{orient}/0/{path}/", headers=server_app.headers, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    expected = {"xy": data[1], "xz": data[:, 2, :], "yz": data[:, :, 5]}[orient] // 256
    assert img.shape == shape and np.array_equal(img, expected.astype(np.uint8))


class ExplodingStore(VolumeStore):
    def read(self, *args, **kwargs):
        raise RuntimeError("disk on fire")


def test_unhandled_exception_is_500_and_the_server_keeps_serving(tmp_path):
    settings = ServerSettings(data_dir=str(tmp_path))
    app = create_app(settings, store=ExplodingStore(str(tmp_path / "store")))
    with app.state.services.db.begin() as conn:
        token = issue_token(conn, "admin", "admin")
    url, stop = start_uvicorn(app)
    try:
        server = ServerHandle(url, token, tmp_path)
        tc = make_channel(server, extent=(64, 64, 16))
        r = requests.get(f"{url}/v1/cutout/{tc.path}/0/0:4/0:4/0:1/", headers=server.headers, timeout=30)
        assert r.status_code == 500 and r.json()["code"] == 9002 and "RuntimeError" in r.json()["message"]
        assert requests.get(f"{url}/v1/collection/{tc.collection}", headers=server.headers, timeout=30).ok
    finally:
        stop()


def test_iso_pyramid_for_anisotropic_experiments(server_app):
    # voxels 4x4x8: level 1 is isotropic, so level 2 of the iso pyramid halves z while the plain one does not
    tc = make_channel(server_app, extent=(64, 64, 16), levels=3, hierarchy="anisotropic", voxel_size=(4, 4, 8))
    post_cutout(server_app, tc, "0/0:8/0:8/0:4", np.full((4, 8, 8), 90, np.uint8))
    url = f"{server_app.url}/v1/downsample/{tc.path}/"
    iso = requests.get(url + "?iso=true", headers=server_app.headers, timeout=30).json()
    assert iso["extent"]["2"] == [16, 16, 8] and iso["voxel_size"]["2"] == [16.0, 16.0, 16.0]
    assert requests.post(url, headers=server_app.headers, timeout=30).status_code == 201
    assert wait_status(server_app, tc, {"DOWNSAMPLED", "FAILED"})["status"] == "DOWNSAMPLED"
    r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/2/0:2/0:2/0:1/?iso=true", headers=server_app.headers,
                     timeout=30)
    assert (np.frombuffer(blosc.decompress(r.content), np.uint8) == 90).all()
    plain = get_cutout(server_app, tc, "2/0:2/0:2/0:4", np.uint8, (4, 2, 2))
    assert (plain == 90).all()
    # iso level 2 holds 8 z slices; as in BOSS, the level-0 frame (16 slices) bounds the request, the rest is 0
    r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/2/0:16/0:16/0:9/?iso=true", headers=server_app.headers,
                     timeout=30)
    deep = np.frombuffer(blosc.decompress(r.content), np.uint8).reshape(9, 16, 16)
    assert (deep[:2, :2, :2] == 90).all() and not deep[2:].any()
    r = requests.get(f"{server_app.url}/v1/cutout/{tc.path}/2/0:16/0:16/0:17/?iso=true", headers=server_app.headers,
                     timeout=30)
    assert r.status_code == 400 and r.json()["code"] == 1001


def test_deleting_a_channel_drops_its_data(server_app):
    tc = make_channel(server_app, extent=(64, 64, 16))
    store = server_app.data_dir / "store"
    before = {p.name for p in store.iterdir()} if store.exists() else set()
    post_cutout(server_app, tc, "0/0:4/0:4/0:1", np.full((1, 4, 4), 1, np.uint8))
    (key,) = {p.name for p in store.iterdir()} - before
    chan_url = f"{server_app.url}/v1/collection/{tc.collection}/experiment/{tc.experiment}/channel/ch"
    assert requests.delete(chan_url, headers=server_app.headers, timeout=30).status_code == 204
    assert not any((store / key).rglob("*.json"))


def test_deleting_a_channel_drops_its_iso_pyramid_too(server_app):
    tc = make_channel(server_app, extent=(64, 64, 16), levels=3, hierarchy="anisotropic", voxel_size=(4, 4, 8))
    store = server_app.data_dir / "store"
    before = {p.name for p in store.iterdir()} if store.exists() else set()
    post_cutout(server_app, tc, "0/0:8/0:8/0:4", np.full((4, 8, 8), 90, np.uint8))
    assert requests.post(f"{server_app.url}/v1/downsample/{tc.path}/", headers=server_app.headers,
                         timeout=30).status_code == 201
    assert wait_status(server_app, tc, {"DOWNSAMPLED", "FAILED"})["status"] == "DOWNSAMPLED"
    keys = {p.name for p in store.iterdir()} - before
    assert len(keys) == 2 and any(k.endswith("-iso") for k in keys)  # the plain and the isotropic pyramid
    chan_url = f"{server_app.url}/v1/collection/{tc.collection}/experiment/{tc.experiment}/channel/ch"
    assert requests.delete(chan_url, headers=server_app.headers, timeout=30).status_code == 204
    assert not any(any((store / key).rglob("*.json")) for key in keys)
