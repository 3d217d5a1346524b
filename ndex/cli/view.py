"""`ndex view COLLECTION/EXPERIMENT/CHANNEL`: neuroglancer on a channel of any BOSS server (BossDB
included), on this machine, without the server's web login.

The channel is read through ndex's client, so the API token stays in this Python process: a local
neuroglancer server (ndex/viewer.py) hands the browser the channel as OME-Zarr, one BOSS cuboid per
chunk, fetched from the BOSS server when the browser asks for it. The command prints the viewer's URL
and serves until Ctrl+C.

    ndex view mycoll/myexp/em                       every built level
    ndex view mycoll/myexp/em,seg                   several channels of one experiment
    ndex view mycoll/myexp/em --res 2 --open        one level, and open the default web browser
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
import webbrowser

from ndex import zarr_http
from ndex.cli.common import EXIT_OK, add_connection_flags, add_logging_flags, run_guarded, setup_logging
from ndex.client import BossClient, ChannelRef
from ndex.config import discover
from ndex.errors import UsageError
from ndex.geometry import Box

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("channel", metavar="COLLECTION/EXPERIMENT/CHANNEL[,CHANNEL...]",
                        help="the channel to view (a comma list of channels of the experiment for several)")
    parser.add_argument("--res", type=int, default=None, help="show only this resolution level (default: every "
                                                               "built level)")
    parser.add_argument("--host", default="127.0.0.1", help="address the viewer listens on")
    parser.add_argument("--port", type=int, default=0, help="port the viewer listens on (default: any free one)")
    parser.add_argument("--open", action="store_true", help="open the viewer in the default web browser")
    add_connection_flags(parser)
    add_logging_flags(parser)


def parse_target(text: str) -> tuple[str, str, list[str]]:
    parts = text.strip("/").split("/")
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"{text!r} is not COLLECTION/EXPERIMENT/CHANNEL: name the channel as "
                         "collection/experiment/channel, e.g. ndex view mycoll/myexp/em")
    names = [n for n in parts[2].split(",") if n]
    return parts[0], parts[1], names


def zarr_channel(client: BossClient, ref: ChannelRef, res: int | None) -> zarr_http.ZarrChannel:
    info = client.channel_info(ref)
    if res is not None:
        info.check_res(res)
    wanted = [res] if res is not None else [r for r in info.levels if info.is_built(r)]
    levels = tuple(zarr_http.Level(r, info.extent_at(r).stop, info.voxel_size_at(r)) for r in wanted)
    return zarr_http.ZarrChannel(ref.channel, info.channel.datatype, info.channel.type == "annotation",
                                 info.experiment.num_time_samples, info.frame.voxel_unit, levels)


def chunk_reader(client: BossClient, kinds: dict[str, str]):
    """Reads one chunk through the client: the BOSS cutout of exactly the chunk's (clipped) box."""
    def read(c: str, e: str, ch: str, res: int, t: int, box: Box) -> bytes | None:
        block = client.get_cutout(ChannelRef(c, e, ch), res, box, kinds[ch], time_range=(t, t + 1))[0]
        return zarr_http.chunk_bytes(block, kinds[ch]) if block.any() else None
    return read


def execute(args: argparse.Namespace) -> int:
    from ndex.viewer import ViewedChannel, viewer_host

    setup_logging(args.verbose, args.quiet)
    c, e, names = parse_target(args.channel)
    host = viewer_host(args.host, args.port)
    client = BossClient(discover(url=args.url, token=args.token, config_file=args.config_file))
    with client:
        viewed = [ViewedChannel(c, e, zarr_channel(client, ChannelRef(c, e, name), args.res)) for name in names]
        url = host.open(viewed, chunk_reader(client, {v.zarr.name: v.zarr.dtype for v in viewed}),
                        "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host)
        print(url, flush=True)
        print(f"neuroglancer on {c}/{e}/{','.join(names)} from {client.remote.url}: press Ctrl+C to stop",
              flush=True)
        if args.open:
            webbrowser.open(url)
        wait_for_stop()
    return EXIT_OK


def wait_for_stop() -> None:
    """Serve until Ctrl+C or SIGTERM (the viewer's server runs in its own thread)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
