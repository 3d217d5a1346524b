"""The web face in a real browser: Debian's chromium (headless, SwiftShader WebGL) driven by playwright.

The home page lists a pushed channel, a token login shows private ones, the viewer (from the home page,
and from `ndex view` on the server's API) renders the pushed test pattern, checked pixel by pixel in a
screenshot, with no console error and no request leaving 127.0.0.1.
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import requests
from fixtures_server import make_channel, serve_in_process, stop_process, tls_server
from PIL import Image

from ndex import codecs
from ndex.cli import push as push_cli

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
QUADRANTS = {"top_left": 250, "top_right": 20, "bottom_left": 90, "bottom_right": 170}  # grey levels pushed


def pattern_volume() -> np.ndarray:
    vol = np.zeros((16, 512, 512), np.uint8)
    vol[:, :256, :256], vol[:, :256, 256:] = QUADRANTS["top_left"], QUADRANTS["top_right"]
    vol[:, 256:, :256], vol[:, 256:, 256:] = QUADRANTS["bottom_left"], QUADRANTS["bottom_right"]
    return vol


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """An in-process ndex serve (its app reachable for the viewer's state), with an admin token."""
    server, app, stop = serve_in_process(tmp_path_factory.mktemp("web-data"), cache_seconds=0.2)
    yield server, app
    stop()


@pytest.fixture(scope="module")
def pushed(web, tmp_path_factory):
    """The test pattern pushed with ndpush into a private channel, plus a public channel beside it."""
    server, _ = web
    import tifffile

    slices = tmp_path_factory.mktemp("slices")
    for z, plane in enumerate(pattern_volume()):
        tifffile.imwrite(slices / f"img_{z:04d}.tif", plane)
    tag = uuid.uuid4().hex[:8]
    coll, exp = f"web-{tag}", f"exp-{tag}"
    args = ["--url", server.url, "--token", server.token, "-q", "--collection", coll, "--experiment", exp,
            "--base_path", str(slices), "--base_filename", "img_<p:4>", "--extension", "tif", "--datatype", "uint8",
            "--x_extent", "0", "512", "--y_extent", "0", "512", "--z_extent", "0", "16",
            "--log_dir", str(slices / "logs")]
    assert push_cli.main([*args, "--channel", "em", "--create_resources", "--voxel_size", "1", "1", "1"]) == 0
    assert push_cli.main([*args, "--channel", "em"]) == 0
    assert push_cli.main([*args, "--channel", "open", "--create_resources"]) == 0
    r = requests.put(f"{server.url}/v1/collection/{coll}/experiment/{exp}/channel/open/", json={"public": True},
                     headers=server.headers)
    assert r.status_code == 200, r.text
    for path in (f"collection/{coll}", f"collection/{coll}/experiment/{exp}"):
        assert requests.put(f"{server.url}/v1/{path}/", json={"public": True}, headers=server.headers).ok
    return coll, exp


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # the TLS test's certificate is self-signed; nothing but 127.0.0.1 is ever reached (Page refuses it)
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, "--ignore-certificate-errors"])
        yield chromium
        chromium.close()


class Page:
    """A fresh page that records console errors and refuses (and records) any request off 127.0.0.1."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 800, "height": 600})
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _guard(self, route) -> None:
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()


def quadrant_greys(png: bytes, centre: tuple[float, float]) -> dict[str, float]:
    """Mean grey of a 9x9 patch 64 px from the panel centre towards each corner (inside its quadrant at
    any zoom that shows the whole 512-voxel slice)."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L")).astype(float)
    cx, cy = int(centre[0]), int(centre[1])
    spots = {"top_left": (-64, -64), "top_right": (64, -64), "bottom_left": (-64, 64), "bottom_right": (64, 64)}
    return {k: img[cy + dy - 4: cy + dy + 5, cx + dx - 4: cx + dx + 5].mean() for k, (dx, dy) in spots.items()}


def shows_pattern(p: Page, timeout: float = 60) -> dict[str, float]:
    """Wait until the data panel shows the test pattern's four grey levels; their measured values."""
    panel = p.page.locator(".neuroglancer-rendered-data-panel").first
    panel.wait_for(timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while True:
        box = panel.bounding_box()  # None while neuroglancer rebuilds its panels (layout, new data bounds)
        greys = quadrant_greys(p.page.screenshot(), (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)) \
            if box else {}
        if greys and all(abs(greys[k] - v) <= 12 for k, v in QUADRANTS.items()):
            return greys
        if time.monotonic() > deadline:
            Path("/tmp/ndex-viewer-failure.png").write_bytes(p.page.screenshot())
            raise AssertionError(f"the viewer shows {greys}, not the pushed pattern {QUADRANTS} "
                                 "(screenshot: /tmp/ndex-viewer-failure.png)")
        time.sleep(0.5)


# --- home page and login ----------------------------------------------------------------------------------


def test_home_page_lists_public_channels_and_login_shows_private_ones(web, pushed, page):
    server, _ = web
    coll, exp = pushed
    page.page.goto(server.url + "/")
    text = page.page.inner_text("body")
    assert coll in text and "open" in text and "not logged in" in text
    assert "em" not in re.findall(r"\bem\b", text)  # private: invisible before login
    page.page.fill("input[name=token]", "wrong-token")
    page.page.click("text=Log in")
    assert "not valid" in page.page.inner_text("body")
    assert len(page.errors) == 1 and "401" in page.errors[0]  # the refused login is answered 401
    page.errors.clear()
    page.page.fill("input[name=token]", server.token)
    page.page.click("text=Log in")
    text = page.page.inner_text("body")
    assert "logged in as admin" in text and re.search(r"\bem\b", text)
    assert "512" in text and "uint8" in text and "NOT_DOWNSAMPLED" in text
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["ndex_token"]["httpOnly"] and cookies["ndex_token"]["sameSite"] == "Strict"
    assert page.page.evaluate("document.cookie") == ""  # scripts never see the token
    page.page.click("text=Log out")
    assert "not logged in" in page.page.inner_text("body")
    assert not page.errors and not page.outside


def test_viewer_from_the_home_page_shows_the_pushed_pattern(web, pushed, page):
    server, _ = web
    coll, exp = pushed
    page.page.goto(server.url + "/")
    page.page.fill("input[name=token]", server.token)
    page.page.click("text=Log in")
    page.page.click(f"a[href='/view/{coll}/{exp}/em/']")
    page.page.wait_for_url(re.compile(r"/v/[^/]+/$"))
    shows_pattern(page)
    assert not page.errors, page.errors
    assert not page.outside, page.outside


def test_viewer_needs_read_permission(web, pushed):
    server, _ = web
    coll, exp = pushed
    r = requests.get(f"{server.url}/view/{coll}/{exp}/em/", allow_redirects=False)
    assert r.status_code == 403 and r.json()["code"] == 3001
    r = requests.get(f"{server.url}/view/{coll}/{exp}/open/?channels=open,em", allow_redirects=False)
    assert r.status_code == 403
    public = requests.get(f"{server.url}/view/{coll}/{exp}/open/", allow_redirects=False)
    assert public.status_code == 303 and "/v/" in public.headers["location"]


def test_viewer_layers_voxel_size_and_several_channels(web):
    from ndex.viewer import viewer_host

    server, _ = web
    ch = make_channel(server, kind="annotation", datatype="uint64", voxel_size=(4.0, 4.0, 40.0))
    r = requests.get(f"{server.url}/view/{ch.collection}/{ch.experiment}/ch/?channels=src,ch", headers=server.headers,
                     allow_redirects=False)
    assert r.status_code == 303
    token = r.headers["location"].rstrip("/").rsplit("/", 1)[1]
    state = viewer_host()._grants[token].viewer.state.to_json()
    assert [(layer["name"], layer["type"]) for layer in state["layers"]] == [("src", "image"), ("ch", "segmentation")]
    sources = [layer["source"][0] if isinstance(layer["source"], list) else layer["source"] for layer in state["layers"]]
    assert all((src["url"] if isinstance(src, dict) else src).startswith("zarr3://") for src in sources), sources
    assert state["dimensions"]["x"] == [4e-9, "m"] and state["dimensions"]["z"] == [4e-8, "m"]
    # the viewer's own zarr answers the channels it was opened on, and nothing else
    base = r.headers["location"].split("/v/")[0]
    assert requests.get(f"{base}/zarr/{token}/{ch.collection}/{ch.experiment}/ch/zarr.json").status_code == 200
    assert requests.get(f"{base}/zarr/{token}/{ch.collection}/{ch.experiment}/other/zarr.json").status_code == 404
    assert requests.get(f"{base}/zarr/not-a-token/{ch.collection}/{ch.experiment}/ch/zarr.json").status_code == 404


# --- ndex view, ndpush's link ---------------------------------------------------------------------------


def test_ndex_view_shows_the_pattern_through_the_client(web, pushed, page):
    server, _ = web
    coll, exp = pushed
    proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "view", f"{coll}/{exp}/em", "--url", server.url,
                             "--token", server.token], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v/[^/]+/", url), (url, proc.poll())
        page.page.goto(url)
        shows_pattern(page)
        assert not page.errors, page.errors
        assert not page.outside, page.outside
        source = requests.get(url.replace("/v/", "/zarr/") + f"{coll}/{exp}/em/zarr.json").json()
        assert source["attributes"]["ome"]["multiscales"][0]["axes"][3]["name"] == "x"
    finally:
        proc.stdout.close()
        assert stop_process(proc)
    assert server.token not in url


def test_ndex_view_names_a_bad_target_in_one_line(web):
    server, _ = web
    done = subprocess.run([sys.executable, "-m", "ndex.cli.main", "view", "only/two", "--url", server.url,
                           "--token", server.token], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "COLLECTION/EXPERIMENT/CHANNEL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_ndpush_prints_the_viewer_link(web, pushed, tmp_path, capsys):
    server, _ = web
    coll, exp = pushed
    import tifffile

    tifffile.imwrite(tmp_path / "img_0000.tif", pattern_volume()[0])
    assert push_cli.main(["--url", server.url, "--token", server.token, "-q", "--collection", coll, "--experiment",
                          exp, "--channel", "em", "--base_path", str(tmp_path), "--base_filename", "img_<p:4>",
                          "--extension", "tif", "--x_extent", "0", "512", "--y_extent", "0", "512",
                          "--z_extent", "0", "1", "--log_dir", str(tmp_path / "logs")]) == 0
    link = re.search(r"(http://\S+/view/\S+/)", capsys.readouterr().out).group(1)
    assert link == f"{server.url}/view/{coll}/{exp}/em/"
    assert requests.get(link, headers=server.headers, allow_redirects=False).status_code == 303


# --- neuroglancer's own boss:// datasource on ndex serve --------------------------------------------------


def test_neuroglancers_boss_datasource_reads_ndex_serve(tmp_path, page):
    """What BossDB users do: neuroglancer's boss:// datasource (https only) on the server, through
    /latest/, CORS and the JPEG cutouts of a uint8 channel."""
    import neuroglancer

    from ndex.viewer import viewer_host

    with tls_server(tmp_path, "--cors_origins", "*") as (server, session):
        ch = make_channel(server, extent=(512, 512, 16), public=True, session=session)
        r = session.post(f"{server.url}/v1/cutout/{ch.path}/0/0:512/0:512/0:16/", data=codecs.encode(pattern_volume()),
                         headers={**server.headers, "Content-Type": "application/blosc"})
        assert r.status_code == 201
        host = viewer_host()
        viewer = neuroglancer.Viewer()
        with viewer.txn() as state:
            state.layers["boss"] = neuroglancer.ImageLayer(source=f"boss://{server.url}/{ch.path}")
            state.layout = "xy"
        page.page.goto(f"http://127.0.0.1:{host.port}/v/{viewer.token}/")
        shows_pattern(page)
        assert not page.errors, page.errors


def test_a_viewer_url_stops_reading_after_max_age(web, pushed, monkeypatch):
    import ndex.viewer

    server, _ = web
    coll, exp = pushed
    location = requests.get(f"{server.url}/view/{coll}/{exp}/em/", headers=server.headers,
                            allow_redirects=False).headers["location"]
    zarr_json = location.replace("/v/", "/zarr/") + f"{coll}/{exp}/em/zarr.json"
    assert requests.get(zarr_json).status_code == 200
    monkeypatch.setattr(ndex.viewer, "MAX_AGE", 0.0)
    assert requests.get(zarr_json).status_code == 404


def test_16_bit_images_open_with_their_own_contrast_range(web):
    from ndex.viewer import viewer_host

    server, _ = web
    ch = make_channel(server, datatype="uint16", extent=(600, 520, 20))
    data = np.random.default_rng(5).integers(1000, 2001, size=(20, 520, 600), dtype=np.uint16)
    r = requests.post(f"{server.url}/v1/cutout/{ch.path}/0/0:600/0:520/0:20/", data=codecs.encode(data),
                      headers={**server.headers, "Content-Type": "application/blosc"})
    assert r.status_code == 201
    location = requests.get(f"{server.url}/view/{ch.path}/", headers=server.headers,
                            allow_redirects=False).headers["location"]
    token = location.rstrip("/").rsplit("/", 1)[1]
    layer = viewer_host()._grants[token].viewer.state.to_json()["layers"][0]
    lo, hi = layer["shaderControls"]["normalized"]["range"]
    assert 1000 <= lo < 1020 and 1980 < hi <= 2000
