"""What BOSS web clients need from ndex serve: /latest/, CORS (answers, errors, preflights), Bearer
tokens, npygz / JPEG / window cutouts decoded and compared voxel for voxel, TLS, offline /docs."""
from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from fixtures_server import make_channel, serve_in_process, stop_process, tls_server
from PIL import Image

from ndex import codecs
from ndex.cli.local_server import free_port

ORIGIN = "http://127.0.0.1:8443"


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory):
    """An in-process server with --cors_origins set to one origin."""
    server, _, stop = serve_in_process(tmp_path_factory.mktemp("cors-data"), cors_origins=ORIGIN)
    yield server
    stop()


def post(server, path: str, data: np.ndarray) -> None:
    r = requests.post(f"{server.url}/v1/cutout/{path}", data=codecs.encode(data),
                      headers={**server.headers, "Content-Type": "application/blosc"}, timeout=30)
    assert r.status_code == 201, r.text


def pattern(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


# --- /latest/, Bearer ----------------------------------------------------------------------------------


def test_latest_answers_as_v1(server_app):
    ch = make_channel(server_app)
    latest = requests.get(f"{server_app.url}/latest/collection/{ch.collection}/", headers=server_app.headers)
    v1 = requests.get(f"{server_app.url}/v1/collection/{ch.collection}/", headers=server_app.headers)
    assert latest.status_code == 200 and latest.json() == v1.json()
    assert requests.get(f"{server_app.url}/latest/collection/nope-x", headers=server_app.headers).json()["code"] == 4000


def test_bearer_token_is_accepted_and_a_bad_one_refused(server_app):
    ch = make_channel(server_app)
    url = f"{server_app.url}/v1/collection/{ch.collection}/"
    assert requests.get(url, headers={"Authorization": f"Bearer {server_app.token}"}).status_code == 200
    anonymous = requests.get(url)  # a private collection
    assert anonymous.status_code == 403
    bad = requests.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


# --- CORS ----------------------------------------------------------------------------------------------


def test_cors_headers_on_success_and_on_errors(cors_server):
    ch = make_channel(cors_server)
    ok = requests.get(f"{cors_server.url}/v1/collection/{ch.collection}/", headers={**cors_server.headers,
                                                                                   "Origin": ORIGIN})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    for url in (f"{cors_server.url}/v1/collection/nope-x/", f"{cors_server.url}/v1/no/such/route",
                f"{cors_server.url}/v1/cutout/{ch.path}/0/0:10/0:10/0:99999/"):
        err = requests.get(url, headers={**cors_server.headers, "Origin": ORIGIN})
        assert err.status_code >= 400 and err.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "code" in err.json()
    unauth = requests.post(f"{cors_server.url}/v1/collection/x-y/", json={}, headers={"Origin": ORIGIN})
    assert unauth.status_code == 401 and unauth.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = requests.get(f"{cors_server.url}/v1/collection/", headers={"Origin": "http://127.0.0.1:6666"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_preflight_allows_authorization(cors_server):
    r = requests.options(f"{cors_server.url}/v1/cutout/a/b/c/0/0:1/0:1/0:1/", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    refused = requests.options(f"{cors_server.url}/v1/collection/", headers={
        "Origin": "http://127.0.0.1:6666", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_no_cors_by_default(server_app):
    r = requests.get(f"{server_app.url}/v1/collection/", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in r.headers


# --- npygz, JPEG, window --------------------------------------------------------------------------------


def npygz_array(body: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(body)), allow_pickle=False)


@pytest.mark.parametrize("datatype", ["uint8", "uint16", "uint64"])
def test_npygz_cutout_equals_what_was_written(server_app, datatype):
    kind = "annotation" if datatype == "uint64" else "image"
    ch = make_channel(server_app, datatype=datatype, kind=kind, extent=(600, 520, 20))
    data = pattern((20, 520, 600), datatype)
    post(server_app, f"{ch.path}/0/0:600/0:520/0:20/", data)
    r = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/10:600/3:517/2:19/",
                     headers={**server_app.headers, "Accept": "application/npygz"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/npygz"
    got = npygz_array(r.content)
    assert got.dtype == np.dtype(datatype) and got.shape == (17, 514, 590)
    np.testing.assert_array_equal(got, data[2:19, 3:517, 10:600])


def test_npygz_4d_keeps_the_time_axis(server_app):
    ch = make_channel(server_app, extent=(512, 512, 16), time_samples=3)
    first, second = pattern((1, 16, 512, 512), "uint8", 1), pattern((1, 16, 512, 512), "uint8", 2)
    post(server_app, f"{ch.path}/0/0:512/0:512/0:16/0:1/", first)
    post(server_app, f"{ch.path}/0/0:512/0:512/0:16/1:2/", second)
    r = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/0:512/0:512/0:16/0:2/",
                     headers={**server_app.headers, "Accept": "application/npygz"})
    np.testing.assert_array_equal(npygz_array(r.content), np.concatenate([first, second]))


def test_jpeg_cutout_is_bosss_film_strip(server_app):
    ch = make_channel(server_app, extent=(512, 512, 16))
    data = np.zeros((16, 512, 512), np.uint8)
    for z in range(16):  # smooth content: JPEG keeps it within a few grey levels
        data[z] = (np.add.outer(np.arange(512), np.arange(512)) // 8 + z * 10).astype(np.uint8)
    post(server_app, f"{ch.path}/0/0:512/0:512/0:16/", data)
    r = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/0:256/0:128/4:8/",
                     headers={**server_app.headers, "Accept": "image/jpeg"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    image = np.asarray(Image.open(io.BytesIO(r.content)))
    assert image.shape == (4 * 128, 256)  # (z*y, x): slice after slice, top to bottom
    strip = data[4:8, :128, :256].reshape(4 * 128, 256).astype(int)
    assert np.abs(image.astype(int) - strip).mean() < 2


def test_jpeg_refuses_16_bit_without_window_and_4d(server_app):
    ch = make_channel(server_app, datatype="uint16", extent=(512, 512, 16), time_samples=2)
    jpeg = {**server_app.headers, "Accept": "image/jpeg"}
    r = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/0:64/0:64/0:4/", headers=jpeg)
    assert r.status_code == 400 and r.json()["code"] == 2001 and "window" in r.json()["message"]
    r = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/0:64/0:64/0:4/0:2/?window=0,100", headers=jpeg)
    assert r.status_code == 400 and r.json()["code"] == 2005


def test_window_scales_16_bit_into_the_jpeg_and_npygz_ignores_it(server_app):
    ch = make_channel(server_app, datatype="uint16", extent=(512, 512, 16))
    data = np.zeros((16, 512, 512), np.uint16)
    data[:, :, :128], data[:, :, 128:256], data[:, :, 256:] = 50, 1050, 3000
    post(server_app, f"{ch.path}/0/0:512/0:512/0:16/", data)
    url = f"{server_app.url}/v1/cutout/{ch.path}/0/0:512/0:8/0:2/?window=50,2050.0"
    jpeg = requests.get(url, headers={**server_app.headers, "Accept": "image/jpeg"})
    assert jpeg.status_code == 200, jpeg.text
    image = np.asarray(Image.open(io.BytesIO(jpeg.content))).astype(int)
    assert image.shape == (2 * 8, 512)
    assert image[:, 20:100].max() <= 3 and abs(image[:, 150:230] - 128).max() <= 3 and image[:, 300:].min() >= 252
    # as on BOSS, npygz answers the channel's own datatype whatever the window (neuroglancer relies on it)
    npy = requests.get(url, headers={**server_app.headers, "Accept": "application/npygz"})
    np.testing.assert_array_equal(npygz_array(npy.content), data[:2, :8, :])
    bad = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/0:8/0:8/0:2/?window=9,3",
                       headers={**server_app.headers, "Accept": "image/jpeg"})
    assert bad.status_code == 400 and "window" in bad.json()["message"]


def test_blosc_stays_the_default(server_app):
    ch = make_channel(server_app, extent=(512, 512, 16))
    data = pattern((16, 512, 512), "uint8", 3)
    post(server_app, f"{ch.path}/0/0:512/0:512/0:16/", data)
    for accept in (None, "*/*", "application/blosc"):
        headers = {**server_app.headers, **({"Accept": accept} if accept else {})}
        r = requests.get(f"{server_app.url}/v1/cutout/{ch.path}/0/0:512/0:512/0:16/", headers=headers)
        assert r.headers["content-type"] == "application/blosc"
        np.testing.assert_array_equal(codecs.decode(r.content, "uint8", (16, 512, 512)), data)


# --- docs offline ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_the_internet(server_app, page):
    r = requests.get(server_app.url + page)
    assert r.status_code == 200
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", r.text), r.text
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", r.text)
    assert len(assets) >= 2
    for asset in assets:
        got = requests.get(server_app.url + asset)
        assert got.status_code == 200 and len(got.content) > 1000, asset


def test_openapi_names_only_files_in_the_repo(server_app):
    text = requests.get(server_app.url + "/openapi.json").text
    repo = Path(__file__).resolve().parents[2]
    for name in set(re.findall(r"[\w./-]+\.(?:md|txt|py)\b", text)):
        assert (repo / name).exists(), name


# --- TLS ------------------------------------------------------------------------------------------------


def test_serve_over_tls(tmp_path):
    with tls_server(tmp_path) as (server, session):
        r = session.get(f"{server.url}/latest/collection/", headers={"Authorization": f"Bearer {server.token}"})
        assert r.status_code == 200 and r.json() == {"collections": []}
        home = session.get(server.url + "/")
        assert home.status_code == 200 and "ndex serve" in home.text
        with pytest.raises(requests.ConnectionError):  # plain http is not answered on the TLS port
            requests.get(server.url.replace("https://", "http://") + "/ping/", timeout=5,
                         headers={"Connection": "close"})


def test_tls_flags_come_in_pairs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(tmp_path),
                           "--ssl_certfile", str(tmp_path / "cert.pem")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--ssl_keyfile" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# --- home page (the browser tests drive it; these are the HTTP details) ----------------------------------


def test_home_page_is_plain_html_and_a_stale_login_is_cleared(server_app):
    ch = make_channel(server_app, public=True)
    anonymous = requests.get(server_app.url + "/")
    assert anonymous.status_code == 200 and anonymous.headers["content-type"].startswith("text/html")
    assert ch.collection in anonymous.text and f'href="/view/{ch.path}/"' in anonymous.text
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", anonymous.text) and "<script" not in anonymous.text
    stale = requests.get(server_app.url + "/", cookies={"ndex_token": "revoked-token"})
    assert stale.status_code == 200 and "no longer valid" in stale.text and ch.collection in stale.text
    assert 'ndex_token=""' in stale.headers["set-cookie"] or "Max-Age=0" in stale.headers["set-cookie"]


def test_the_login_cookie_reads_but_never_writes(server_app):
    cookies = {"ndex_token": server_app.token}
    assert requests.get(f"{server_app.url}/v1/collection/", cookies=cookies).status_code == 200
    r = requests.post(f"{server_app.url}/v1/collection/cookie-{time.time_ns()}/", json={}, cookies=cookies)
    assert r.status_code == 401  # a write needs the Authorization header


def test_serve_prints_its_home_page(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(tmp_path), "--port",
                             str(port)], stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline() for _ in range(2)]
    finally:
        stop_process(proc)
    assert any(f"home page http://127.0.0.1:{port}/" in line for line in lines), lines


def test_home_page_without_neuroglancer_says_how_to_get_the_viewer(server_app, monkeypatch):
    from ndex.server.web import home

    ch = make_channel(server_app, public=True)
    monkeypatch.setattr(home, "viewer_installed", lambda: False)
    page = requests.get(server_app.url + "/").text
    assert ch.collection in page and f"/view/{ch.path}/" not in page and "ndex[viewer]" in page
