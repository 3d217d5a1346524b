"""Benchmark: ingest a local OME-Zarr into `ndex serve` with ndpush and with tensorstore + intern.

Run on demand (not a test):

    python benchmarks/bench_formats_push.py                 # 256 MiB: 32 slices of 2048x2048 uint16
    python benchmarks/bench_formats_push.py --size 64MiB    # a quick run

It writes one OME-Zarr (zarr v3, NGFF 0.5, chunks 32x256x256, blosc) to a temporary directory,
starts `ndex serve` on a free 127.0.0.1 port, then ingests the same volume twice, each in its own
process so that peak RSS is measured per method:

* ndpush: `ndpush --datasource zarr --source IMG.ome.zarr` as a user runs it (default flags);
* intern: what a user writes by hand -- read 16 slices at a time with tensorstore, `create_cutout`.

and prints MB/s, the ratio, each peak RSS and the CPU seconds of client and server together.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorstore as ts
from bench_push import create_channels, timed  # benchmarks/ is on sys.path when run as a script

from ndex.cli.common import parse_size
from ndex.cli.local_server import LocalServer

SIDE = 2048
CHUNKS = [32, 256, 256]
INTERN_LOOP = """
import sys
import tensorstore as ts
from intern.remote.boss import BossRemote
url, token, coll, exp, chan, path = sys.argv[1:7]
protocol, host = url.split("://")
rmt = BossRemote({"protocol": protocol, "host": host, "token": token})
channel = rmt.get_channel(chan, coll, exp)
array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": path + "/0"}}).result()
n, y, x = array.shape
for z0 in range(0, n, 16):
    z1 = min(n, z0 + 16)
    rmt.create_cutout(channel, 0, [0, x], [0, y], [z0, z1], array[z0:z1].read().result())
"""


def write_ome_zarr(path: Path, count: int, side: int) -> None:
    """Microscopy-like 12-bit data (a smooth field plus noise) as a one-level OME-Zarr 0.5 image."""
    array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "0")}, "create": True,
                     "metadata": {"shape": [count, side, side], "data_type": "uint16",
                                  "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": CHUNKS}},
                                  "codecs": [{"name": "bytes"}, {"name": "blosc", "configuration": {
                                      "cname": "zstd", "clevel": 3, "shuffle": "bitshuffle"}}]}}).result()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    base = (1000 + 800 * np.sin(xx / 97.0) * np.cos(yy / 131.0)).astype(np.uint16)
    for z in range(count):
        array[z] = base + rng.integers(0, 400, size=(side, side), dtype=np.uint16) + np.uint16(z)
    axes = [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"]
    level = {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [40.0, 4.0, 4.0]}]}
    ome = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [level]}]}
    (path / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"ome": ome}}))


def measure(args: argparse.Namespace, work: Path, count: int, url: str, token: str, server_pid: int) -> None:
    coll, exp = create_channels(url, token, count, args.side)
    nbytes = count * args.side * args.side * 2
    image = str(work / "img.ome.zarr")
    push_cmd = [sys.executable, "-m", "ndex.cli.push", "--url", url, "--token", token, "-q", "--collection", coll,
                "--experiment", exp, "--channel", "ndpush", "--datasource", "zarr", "--source", image,
                "--threads", str(args.threads), "--log_dir", str(work)]
    t_push, rss_push, cpu_push = timed(push_cmd, work, server_pid)
    t_intern, rss_intern, cpu_intern = timed([sys.executable, "-c", INTERN_LOOP, url, token, coll, exp, "intern",
                                              image], work, server_pid)
    mb_push, mb_intern = nbytes / 1e6 / t_push, nbytes / 1e6 / t_intern
    print(f"\n{nbytes / 1e6:,.0f} MB OME-Zarr ({count} slices of {args.side}x{args.side} uint16, chunks {CHUNKS})")
    for name, mbs, secs, rss, cpu in (("ndpush", mb_push, t_push, rss_push, cpu_push),
                                      ("ts+intern", mb_intern, t_intern, rss_intern, cpu_intern)):
        print(f"{name:9} {mbs:8.1f} MB/s  {secs:7.1f} s  peak RSS {rss:7.0f} MB  "
              f"CPU {cpu:6.1f} s (client + server) = {nbytes / 1e6 / cpu:6.1f} MB per CPU-s")
    print(f"ratio     {mb_push / mb_intern:8.2f}x (ndpush / tensorstore + intern create_cutout); "
          f"CPU cost {cpu_intern / cpu_push:.2f}x lower")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=2**28, help="bytes of volume to ingest (default 256MiB)")
    parser.add_argument("--side", type=int, default=SIDE, help="slice width and height (default 2048)")
    parser.add_argument("--threads", type=int, default=8, help="ndpush --threads")
    parser.add_argument("--workdir", help="where to put the volume and server data (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--write_only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = max(1, args.size // (args.side * args.side * 2))
    if args.write_only:
        write_ome_zarr(Path(args.write_only), count, args.side)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ndex-bench-formats-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"writing an OME-Zarr of {count} slices of {args.side}x{args.side} uint16 to {work / 'img.ome.zarr'}")
        # in a child: a forked process starts with its parent's peak RSS, which tensorstore's write buffers raise
        subprocess.run([sys.executable, __file__, "--write_only", str(work / "img.ome.zarr"), "--size", str(args.size),
                        "--side", str(args.side)], check=True)
        with LocalServer(work / "data", user="bench", log_path=work / "serve.log", extra_args=("--quiet",)) as server:
            measure(args, work, count, server.remote.url, server.token, server.process.pid)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
