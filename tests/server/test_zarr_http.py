"""`/zarr/{c}/{e}/{ch}/`: channels as read-only OME-Zarr v3 over HTTP, read by tensorstore and zarr-python
like any remote zarr, with the permission checks of a cutout GET."""
from __future__ import annotations

import time

import aiohttp
import numpy as np
import pytest
import requests
import tensorstore as ts
import zarr
from fixtures_server import make_channel

from ndex import codecs


def post(server, path: str, data: np.ndarray) -> None:
    r = requests.post(f"{server.url}/v1/cutout/{path}", data=codecs.encode(data),
                      headers={**server.headers, "Content-Type": "application/blosc"}, timeout=30)
    assert r.status_code == 201, r.text


def ts_open(server, ch, level: str, headers: dict | None = None):
    kvstore = {"driver": "http", "base_url": f"{server.url}/zarr/{ch.path}/", "path": f"{level}/"}
    if headers:
        kvstore["headers"] = [f"{k}: {v}" for k, v in headers.items()]
    return ts.open({"driver": "zarr3", "kvstore": kvstore, "open": True}).result()


def downsample(server, ch) -> None:
    url = f"{server.url}/v1/downsample/{ch.path}/"
    assert requests.post(url, headers=server.headers).status_code in (200, 201)
    deadline = time.monotonic() + 120
    while requests.get(url, headers=server.headers).json()["status"] != "DOWNSAMPLED":
        assert time.monotonic() < deadline, "downsample did not finish"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def volume(server_app):
    """A 3-level uint16 channel with 2 time samples, not cuboid-aligned at its edges, downsampled."""
    ch = make_channel(server_app, datatype="uint16", extent=(700, 600, 40), time_samples=2, levels=3, hierarchy="anisotropic",
                      voxel_size=(4.0, 4.0, 40.0))
    rng = np.random.default_rng(7)
    data = rng.integers(1, 60000, size=(2, 40, 600, 700), dtype=np.uint16)
    for t in range(2):
        post(server_app, f"{ch.path}/0/0:700/0:600/0:40/{t}:{t + 1}/", data[t:t + 1])
    downsample(server_app, ch)
    return ch, data


def test_group_metadata_is_ome_zarr_05(server_app, volume):
    ch, _ = volume
    group = requests.get(f"{server_app.url}/zarr/{ch.path}/zarr.json", headers=server_app.headers).json()
    assert group["zarr_format"] == 3 and group["node_type"] == "group"
    ms = group["attributes"]["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["t", "z", "y", "x"]
    assert ms["axes"][1]["unit"] == "nanometer"
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales[0] == [1.0, 40.0, 4.0, 4.0] and scales[1] == [1.0, 40.0, 8.0, 8.0]  # anisotropic: z kept
    translations = [d["coordinateTransformations"][1]["translation"] for d in ms["datasets"]]
    assert translations == [[0.0, 0.0, 0.0, 0.0]] * 3  # array index i is BOSS coordinate i, as ndpull writes


def test_tensorstore_reads_every_level_voxel_for_voxel(server_app, volume):
    ch, data = volume
    base = ts_open(server_app, ch, "0", server_app.headers)
    assert base.shape == (2, 40, 600, 700)  # exactly num_time_samples, the level's extent
    np.testing.assert_array_equal(base.read().result(), data)
    for res in (1, 2):
        arr = ts_open(server_app, ch, str(res), server_app.headers)
        cut = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/{res}/0:{arr.shape[3]}/0:{arr.shape[2]}/"
                           f"0:{arr.shape[1]}/0:2/", headers=server_app.headers)
        expected = codecs.decode(cut.content, "uint16", tuple(arr.shape))
        np.testing.assert_array_equal(arr.read().result(), expected)
    assert ts_open(server_app, ch, "1", server_app.headers).shape == (2, 40, 300, 350)


def test_zarr_python_reads_the_group(server_app, volume):
    ch, data = volume
    group = zarr.open_group(f"{server_app.url}/zarr/{ch.path}/", mode="r",
                            storage_options={"headers": server_app.headers})
    assert group.attrs["ome"]["version"] == "0.5"
    np.testing.assert_array_equal(group["0"][1, 3:37, 500:600, 600:700], data[1, 3:37, 500:600, 600:700])


def test_without_permission_nothing_is_read(server_app, volume):
    ch, _ = volume
    r = requests.get(f"{server_app.url}/zarr/{ch.path}/zarr.json")
    assert r.status_code == 403 and r.json()["code"] == 3001
    assert requests.get(f"{server_app.url}/zarr/{ch.path}/0/c/0/0/0/0").status_code == 403
    with pytest.raises(ValueError, match="403"):
        ts_open(server_app, ch, "0")
    with pytest.raises(aiohttp.ClientResponseError, match="403"):
        zarr.open_group(f"{server_app.url}/zarr/{ch.path}/", mode="r")


def test_login_cookie_reads_like_the_token(server_app, volume):
    ch, _ = volume
    session = requests.Session()
    login = session.post(f"{server_app.url}/login", data={"token": server_app.token}, allow_redirects=False)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert session.get(f"{server_app.url}/zarr/{ch.path}/0/zarr.json").status_code == 200
    session.post(f"{server_app.url}/logout")
    assert session.get(f"{server_app.url}/zarr/{ch.path}/0/zarr.json").status_code == 403


def test_public_channel_needs_no_login(server_app):
    ch = make_channel(server_app, extent=(512, 512, 16), public=True)
    data = np.arange(16 * 512 * 512, dtype=np.uint32).reshape(16, 512, 512).astype(np.uint8)
    post(server_app, f"{ch.path}/0/0:512/0:512/0:16/", data)
    arr = ts_open(server_app, ch, "0")
    np.testing.assert_array_equal(arr.read().result()[0], data)


def test_unwritten_chunks_read_as_zero_and_bad_paths_are_404(server_app):
    ch = make_channel(server_app, kind="annotation", datatype="uint64", extent=(1024, 512, 16))
    block = np.zeros((16, 512, 512), np.uint64)
    block[3, 5, 7] = 2**63 + 5
    post(server_app, f"{ch.path}/0/512:1024/0:512/0:16/", block)
    assert requests.get(f"{server_app.url}/zarr/{ch.path}/0/c/0/0/0/0", headers=server_app.headers).status_code == 404
    arr = ts_open(server_app, ch, "0", server_app.headers).read().result()
    assert arr.dtype == np.uint64 and arr[0, 3, 5, 512 + 7] == 2**63 + 5 and arr.sum(dtype=np.float64) == 2**63 + 5
    for bad in ("7/zarr.json", "0/c/0/0/0/9", "0/c/5/0/0/0", "0/c/x"):
        r = requests.get(f"{server_app.url}/zarr/{ch.path}/{bad}", headers=server_app.headers)
        assert r.status_code == 404 and r.json()["code"] == 4004, bad
    assert requests.get(f"{server_app.url}/zarr/{ch.collection}/{ch.experiment}/nope/zarr.json",
                        headers=server_app.headers).status_code == 404


def test_levels_not_built_are_not_listed(server_app):
    ch = make_channel(server_app, extent=(512, 512, 16), levels=4)
    group = requests.get(f"{server_app.url}/zarr/{ch.path}/zarr.json", headers=server_app.headers).json()
    assert [d["path"] for d in group["attributes"]["ome"]["multiscales"][0]["datasets"]] == ["0"]
    assert requests.get(f"{server_app.url}/zarr/{ch.path}/1/zarr.json", headers=server_app.headers).status_code == 404


def test_levels_line_up_with_what_ndpull_writes(server_app, volume, tmp_path):
    """A region pulled by ndpull into OME-Zarr sits, in physical units, where /zarr/ has the same voxels."""
    import json

    from ndex.cli import pull as pull_cli

    ch, _ = volume
    x, y, z = (100, 300), (50, 250), (8, 24)  # level-1 voxels
    assert pull_cli.main(["--url", server_app.url, "--token", server_app.token, "-q", "--collection", ch.collection,
                          "--experiment", ch.experiment, "--channel", ch.channel, "--res", "1",
                          "--x", *map(str, x), "--y", *map(str, y), "--z", *map(str, z), "--outdir", str(tmp_path),
                          "--output", "zarr", "--stack_filename", "region.ome.zarr"]) == 0
    pulled_dir = tmp_path / "region.ome.zarr"
    pulled_ms = json.loads((pulled_dir / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    scale, translation = (t[k] for t, k in zip(pulled_ms["datasets"][0]["coordinateTransformations"],
                                                ("scale", "translation")))
    group = requests.get(f"{server_app.url}/zarr/{ch.path}/zarr.json", headers=server_app.headers).json()
    level = next(d for d in group["attributes"]["ome"]["multiscales"][0]["datasets"] if d["path"] == "1")
    served_scale, served_shift = (t[k] for t, k in zip(level["coordinateTransformations"], ("scale", "translation")))
    assert served_scale[1:] == scale[-3:]
    start = (z[0], y[0], x[0])
    assert [served_shift[i + 1] + start[i] * served_scale[i + 1] for i in range(3)] == translation[-3:]
    pulled = zarr.open_array(str(pulled_dir / "0"), mode="r")[...]
    served = ts_open(server_app, ch, "1", server_app.headers)[0, z[0]:z[1], y[0]:y[1], x[0]:x[1]].read().result()
    np.testing.assert_array_equal(pulled.reshape(served.shape), served)
