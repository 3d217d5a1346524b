"""Benchmark: cuboid-aligned cutout POST and GET throughput of `ndex serve`, beside the store's own limit.

Run on demand (not a test):

    python benchmarks/bench_serve.py                  # 512 MiB: 4096 x 4096 x 32 uint8, 128 blocks of 4 MiB
    python benchmarks/bench_serve.py --size 128MiB    # a quick run

It starts `ndex serve` on a free 127.0.0.1 port with a fresh data directory, creates a uint8 channel
and then, on the same aligned 4 MiB blocks (512 x 512 x 16, one stored chunk each):

* POST: writes every block with `--threads` client threads (ndex.client.BossClient);
* GET: reads every block back with `--threads` threads (BossClient, blosc decoded, checked);
* GET, lean client: the same with a bare requests session (no retry, error or timeout handling of
  BossClient): what the server itself delivers;
* limit: reads the same blocks straight from the channel's zarr array in the server's data directory
  with tensorstore (read-only, its own context, `--threads` threads): what no HTTP server can beat;
* intern: BossRemote.get_cutout, one block after another, for context (the client users had before).

and prints MB/s (MiB of voxels per second) for each and the GET / limit ratio (target >= 0.5), from
the medians of `--repeat` interleaved runs of the three reads (one run is half a second: one run alone
swings by a factor of 1.5 on a shared 2-core machine).
The server's log goes to serve.log in the work directory.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
import tensorstore as ts
from requests.adapters import HTTPAdapter

from ndex import codecs
from ndex.cli.common import parse_size
from ndex.cli.local_server import LocalServer
from ndex.client import BossClient
from ndex.client.models import ChannelRef
from ndex.geometry import Box
from ndex.synthetic import volume

BLOCK = (512, 512, 16)  # x, y, z: one BOSS cuboid, 4 MiB of uint8
TEMPLATES = 8  # distinct block contents, cycled (generating 512 MiB of texture would dominate the run)


def extent_for(nbytes: int) -> tuple[int, int, int]:
    """(x, y, z) of a volume of about `nbytes` uint8 voxels made of whole blocks: square in x-y, 2 blocks deep."""
    blocks = max(1, math.ceil(nbytes / (BLOCK[0] * BLOCK[1] * BLOCK[2])))
    depth = 2 if blocks >= 2 else 1
    side = max(1, math.ceil(math.sqrt(blocks / depth)))
    return side * BLOCK[0], side * BLOCK[1], depth * BLOCK[2]


def blocks_of(extent: tuple[int, int, int]) -> list[Box]:
    return [Box((x, y, z), (x + BLOCK[0], y + BLOCK[1], z + BLOCK[2]))
            for z in range(0, extent[2], BLOCK[2])
            for y in range(0, extent[1], BLOCK[1])
            for x in range(0, extent[0], BLOCK[0])]


def templates() -> list[np.ndarray]:
    """EM-like (z, y, x) uint8 blocks: compressible like real data, never zero."""
    return [volume("em", (BLOCK[2], BLOCK[1], BLOCK[0]), z0=k * BLOCK[2], seed=k) for k in range(TEMPLATES)]


def timed(label: str, work: Callable[[Box], object], blocks: list[Box], threads: int) -> float:
    """MiB/s of running `work` over every block with `threads` threads (1 = serially, in this thread)."""
    t0 = time.perf_counter()
    if threads == 1:
        for b in blocks:
            work(b)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, blocks))
    seconds = time.perf_counter() - t0
    mib = len(blocks) * int(np.prod(BLOCK)) / 2**20
    rate = mib / seconds
    print(f"  {label:<34} {mib:8.0f} MiB in {seconds:6.2f} s = {rate:7.1f} MiB/s")
    return rate


def create_channel(client: BossClient, extent: tuple[int, int, int]) -> ChannelRef:
    stamp = str(int(time.time()))
    frame = f"bench_frame{stamp}"
    client.create_coord_frame(frame, (0, extent[0]), (0, extent[1]), (0, extent[2]),
                              voxel_size=(4.0, 4.0, 40.0), voxel_unit="nanometers")
    client.create_collection("bench")
    client.create_experiment("bench", f"serve{stamp}", frame, num_hierarchy_levels=1)
    ref = ChannelRef("bench", f"serve{stamp}", "em")
    client.create_channel(ref, "image", "uint8")
    return ref


def store_array(data_dir: Path, channel: str) -> ts.TensorStore:
    """Level 0 of the channel named `channel`, opened read-only straight from the server's zarr store."""
    for group in sorted((data_dir / "store").glob("*/zarr.json")):
        attrs = json.loads(group.read_text()).get("attributes", {})
        if attrs.get("ndex", {}).get("channel") == channel and not group.parent.name.endswith("-iso"):
            spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(group.parent / "0")}}
            return ts.open(spec, read=True, open=True).result()
    raise SystemExit(f"no array of channel {channel!r} under {data_dir / 'store'}")


def run(server: LocalServer, extent: tuple[int, int, int], threads: int, intern_blocks: int,
        repeat: int) -> dict[str, float]:
    blocks = blocks_of(extent)
    pool = templates()
    content = {b: pool[i % TEMPLATES] for i, b in enumerate(blocks)}
    rates: dict[str, float] = {}
    with BossClient(server.remote, threads=threads) as client:
        ref = create_channel(client, extent)
        print(f"{len(blocks)} aligned blocks of {BLOCK[0]}x{BLOCK[1]}x{BLOCK[2]} uint8, {threads} threads:")
        rates["post"] = timed("POST (BossClient)", lambda b: client.post_cutout(ref, 0, b, content[b]),
                              blocks, threads)

        array = store_array(server.data_dir, ref.channel)

        def get(b: Box) -> np.ndarray:
            return client.get_cutout(ref, 0, b, np.uint8)

        def read(b: Box) -> np.ndarray:
            return array[0, b.z[0]:b.z[1], b.y[0]:b.y[1], b.x[0]:b.x[1]].read().result()

        # every way reads back what was posted; checked once, untimed, so that the timed runs are reads only
        for label, way in (("GET", get), ("lean GET", lean_getter(server, ref, threads)), ("tensorstore", read)):
            for b in blocks:
                if not np.array_equal(way(b), content[b]):
                    raise SystemExit(f"{label} of {b} returned other data than was posted")
        runs: dict[str, list[float]] = {"get": [], "lean": [], "limit": []}
        for _ in range(repeat):  # interleaved, so that a slow spell of a shared machine hits all three
            runs["get"].append(timed("GET (BossClient)", get, blocks, threads))
            runs["lean"].append(timed("GET (lean client)", lean_getter(server, ref, threads), blocks, threads))
            runs["limit"].append(timed("tensorstore read (the limit)", read, blocks, threads))
    rates.update({name: statistics.median(values) for name, values in runs.items()})
    rates["intern"] = intern_rate(server, ref, blocks[:intern_blocks])
    return rates


def lean_getter(server: LocalServer, ref: ChannelRef, threads: int) -> Callable[[Box], np.ndarray]:
    """GET one block with a bare requests session and decode it."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=threads, pool_maxsize=threads))
    session.headers["Authorization"] = f"Token {server.token}"
    base = f"{server.remote.url}/v1/cutout/{ref.collection}/{ref.experiment}/{ref.channel}/0"

    def get(b: Box) -> np.ndarray:
        with session.get(f"{base}/{b.x[0]}:{b.x[1]}/{b.y[0]}:{b.y[1]}/{b.z[0]}:{b.z[1]}/", stream=True,
                         timeout=60) as answer:
            answer.raise_for_status()
            body = answer.raw.read()
        return codecs.decode(body, np.uint8, b.shape_zyx)

    return get


def intern_rate(server: LocalServer, ref: ChannelRef, blocks: Iterable[Box]) -> float:
    from intern.remote.boss import BossRemote
    from intern.resource.boss.resource import ChannelResource

    remote = BossRemote({"protocol": "http", "host": f"127.0.0.1:{server.port}", "token": server.token})
    chan = ChannelResource(ref.channel, ref.collection, ref.experiment, datatype="uint8")

    def get(b: Box) -> None:
        remote.get_cutout(chan, 0, list(b.x), list(b.y), list(b.z), parallel=False)

    return timed("intern get_cutout (serial)", get, list(blocks), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=512 * 2**20,
                        help="bytes of uint8 voxels to write and read (default 512MiB = 4096x4096x32)")
    parser.add_argument("--threads", type=int, default=4, help="client threads for POST, GET and the limit")
    parser.add_argument("--intern-blocks", type=int, default=32, help="blocks intern reads, serially (default 32)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="GET, lean GET and limit runs, interleaved; the medians are compared (default 5)")
    parser.add_argument("--workdir", help="where the server's data goes (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra `ndex serve` argument (repeatable), e.g. --serve-arg=--fsync")
    args = parser.parse_args()
    extent = extent_for(args.size)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ndex-bench-serve-"))
    print(f"ndex serve benchmark: volume {extent[0]}x{extent[1]}x{extent[2]} uint8 in {work}")
    try:
        with LocalServer(work / "data", user="bench", log_path=work / "serve.log",
                         extra_args=("--quiet", *args.serve_arg)) as server:
            rates = run(server, extent, args.threads, args.intern_blocks, args.repeat)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    ratio = rates["get"] / rates["limit"]
    print(f"medians of {args.repeat} runs: GET {rates['get']:.0f}, lean GET {rates['lean']:.0f}, "
          f"limit {rates['limit']:.0f} MiB/s")
    print(f"GET / limit = {ratio:.2f} (target >= 0.5); lean-client GET / limit = {rates['lean'] / rates['limit']:.2f}; "
          f"GET / intern serial = {rates['get'] / rates['intern']:.1f}x")
    sys.exit(0 if ratio >= 0.5 else 1)


if __name__ == "__main__":
    main()
