"""ndpull's precomputed output opened by neuroglancer itself: the client in headless chromium reads the
volume over HTTP from 127.0.0.1 (a `precomputed://` source) and shows the pushed test pattern, pixel for pixel."""
from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_browser import Page, browser, pushed, shows_pattern, web  # noqa: F401  # fixtures and helpers shared

from ndex.cli.pull import main as ndpull


class CorsFiles(SimpleHTTPRequestHandler):
    """Static files with the CORS header neuroglancer (served from another port) needs."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # the base class's name
        pass


@pytest.fixture
def file_server(tmp_path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(CorsFiles, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_neuroglancer_shows_a_pulled_precomputed_volume(web, pushed, browser, file_server):  # noqa: F811
    import neuroglancer

    from ndex.viewer import viewer_host

    server, _ = web
    coll, exp = pushed
    url, root = file_server
    assert ndpull(["--url", server.url, "--token", server.token, "-q", "--collection", coll, "--experiment", exp,
                   "--channel", "em", "--full_extent", "--stack_filename", "em.precomputed", "--outdir", str(root)]) == 0
    host = viewer_host()
    viewer = neuroglancer.Viewer()
    with viewer.txn() as state:
        state.layers["pulled"] = neuroglancer.ImageLayer(source=f"precomputed://{url}/em.precomputed")
        state.layout = "xy"
    page = Page(browser)
    try:
        page.page.goto(f"http://127.0.0.1:{host.port}/v/{viewer.token}/")
        shows_pattern(page)
        assert not page.errors, page.errors
        assert not page.outside, page.outside
    finally:
        page.close()
