"""`ndex serve --fsync`: off by default, a server setting that reaches the store's file driver (in every
worker process: workers build their app from the settings), and a server started with it stores and
serves cutouts."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from ndex.cli import serve
from ndex.cli.local_server import LocalServer
from ndex.client import BossClient
from ndex.client.models import ChannelRef
from ndex.geometry import Box
from ndex.server.app import create_app
from ndex.server.settings import ServerSettings


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    return parser.parse_args(list(argv))


def test_fsync_is_off_unless_asked_and_its_help_names_the_trade():
    assert parsed().fsync is False and parsed("--fsync").fsync is True
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    text = " ".join(parser.format_help().split())
    assert "power cut" in text and "crash of the server process loses nothing" in text


@pytest.mark.parametrize("flags", [(), ("--fsync",)], ids=["default", "--fsync"])
def test_the_flag_reaches_the_file_driver_of_every_worker(tmp_path, flags):
    settings = serve.settings_from(parsed("--data", str(tmp_path), *flags))
    worker_settings = ServerSettings.from_json(settings.to_json())  # what a uvicorn worker builds its app from
    assert worker_settings == settings
    app = create_app(worker_settings)
    store = app.state.services.store
    try:
        # the kvstore spec with its context bound is the one place tensorstore tells the setting
        assert store.arrays.root.spec(retain_context=True).to_json()["file_io_sync"] is bool(flags)
    finally:
        store.close()
        app.state.services.db.close()


def test_a_server_with_fsync_round_trips_a_cutout(tmp_path):
    with LocalServer(tmp_path / "data", log_path=tmp_path / "serve.log", extra_args=("--fsync", "--quiet")) as server:
        with BossClient(server.remote, threads=1) as client:
            client.create_coord_frame("f", (0, 512), (0, 512), (0, 16))
            client.create_collection("c")
            client.create_experiment("c", "e", "f")
            ref = ChannelRef("c", "e", "ch")
            client.create_channel(ref, "image", "uint16")
            box = Box((0, 0, 0), (512, 512, 16))
            data = np.arange(box.nvoxels, dtype=np.uint16).reshape(box.shape_zyx) | 1
            client.post_cutout(ref, 0, box, data)
            assert np.array_equal(client.get_cutout(ref, 0, box, np.uint16), data)


def test_uvicorn_serves_with_httptools_and_uvloop():
    # `ndex serve` leaves http and loop on "auto": this is what auto picks here (h11/asyncio halve cutout GETs)
    import asyncio

    import uvicorn
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = uvicorn.Config(lambda scope, receive, send: None)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    loop = config.get_loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
