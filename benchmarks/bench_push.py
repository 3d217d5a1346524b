"""Benchmark: ingest uint16 TIFF slices into `ndex serve` with ndpush and with a plain intern loop.

Run on demand (not a test):

    python benchmarks/bench_push.py                 # ~1 GiB: 128 slices of 2048x2048 uint16
    python benchmarks/bench_push.py --size 128MiB   # a quick run

It writes the slices to a temporary directory, starts `ndex serve` on a free 127.0.0.1 port with a
fresh data directory, then ingests the same slices twice, each in its own process so that peak RSS
is measured per method:

* ndpush: the CLI as a user runs it (default flags: 8 threads, 2 slabs in flight, sampled verify);
* intern: the loop ndex 1.x users wrote by hand -- read 16 slices with tifffile, `create_cutout`.

and prints MB/s, the ratio, each peak RSS and the CPU seconds each run cost the client and the
server together (MB per CPU-second does not depend on what else the machine is running, which
MB/s does on a shared box). Both go into separate channels of one experiment.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
import tifffile

from ndex.cli.common import parse_size
from ndex.cli.local_server import LocalServer

SLICE = 2048
INTERN_LOOP = """
import sys, time
import numpy as np, tifffile
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import ChannelResource
url, token, coll, exp, chan, folder, n, side = sys.argv[1:9]
n, side = int(n), int(side)
protocol, host = url.split("://")
rmt = BossRemote({"protocol": protocol, "host": host, "token": token})
channel = rmt.get_channel(chan, coll, exp)
for z0 in range(0, n, 16):
    z1 = min(n, z0 + 16)
    data = np.stack([tifffile.imread(f"{folder}/img_{z:04d}.tif") for z in range(z0, z1)])
    rmt.create_cutout(channel, 0, [0, side], [0, side], [z0, z1], data)
"""


def write_slices(folder: Path, count: int, side: int) -> None:
    """Microscopy-like 12-bit data: a smooth field plus noise (compressible, never all zero)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    base = (1000 + 800 * np.sin(xx / 97.0) * np.cos(yy / 131.0)).astype(np.uint16)
    for z in range(count):
        noise = rng.integers(0, 400, size=(side, side), dtype=np.uint16)
        tifffile.imwrite(folder / f"img_{z:04d}.tif", base + noise + np.uint16(z))


def create_channels(url: str, token: str, count: int, side: int, dtype: str = "uint16",
                    channels: tuple[str, ...] = ("ndpush", "intern"), tag: str = "push") -> tuple[str, str]:
    """A fresh experiment of `count` slices of side x side holding `channels` (the other benchmarks use it too)."""
    headers = {"Authorization": f"Token {token}"}
    stamp = f"{tag}{int(time.time() * 1000) % 10**8}"
    coll, exp, frame = "bench", stamp, f"bench_frame{stamp}"

    def post(path: str, body: dict) -> None:
        r = requests.post(f"{url}/v1/{path}", json=body, headers=headers, timeout=30)
        if r.status_code != 201 and "exists" not in r.text:
            raise SystemExit(f"creating {path} failed: {r.status_code} {r.text}")

    post(f"coord/{frame}", {"x_start": 0, "x_stop": side, "y_start": 0, "y_stop": side, "z_start": 0,
                            "z_stop": count, "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40,
                            "voxel_unit": "nanometers"})
    post(f"collection/{coll}", {"description": "benchmark"})
    post(f"collection/{coll}/experiment/{exp}", {"coord_frame": frame, "num_hierarchy_levels": 1,
                                                 "hierarchy_method": "anisotropic", "num_time_samples": 1})
    for chan in channels:
        post(f"collection/{coll}/experiment/{exp}/channel/{chan}", {"type": "image", "datatype": dtype})
    return coll, exp


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], cwd: Path, server_pid: int) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, CPU seconds of the child and the server) of a child process."""
    server_cpu = cpu_seconds(server_pid)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    output = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[2] if len(cmd) > 2 else cmd} failed ({proc.returncode}):\n{output[-3000:]}")
    print(output.strip())
    cpu = usage.ru_utime + usage.ru_stime + cpu_seconds(server_pid) - server_cpu
    return seconds, usage.ru_maxrss / 1024, cpu  # ru_maxrss is in KiB on Linux


def measure(args: argparse.Namespace, work: Path, count: int, url: str, token: str, server_pid: int) -> None:
    """Ingest the slices with ndpush, then with the intern loop, and print what each cost."""
    coll, exp = create_channels(url, token, count, args.side)
    nbytes = count * args.side * args.side * 2
    push_cmd = [sys.executable, "-m", "ndex.cli.push", "--url", url, "--token", token, "-q",
                "--collection", coll, "--experiment", exp, "--channel", "ndpush", "--base_path",
                str(work / "img"), "--base_filename", "img_<p:4>", "--x_extent", "0", str(args.side),
                "--y_extent", "0", str(args.side), "--z_extent", "0", str(count), "--threads", str(args.threads),
                "--log_dir", str(work)]
    t_push, rss_push, cpu_push = timed(push_cmd, work, server_pid)
    t_intern, rss_intern, cpu_intern = timed([sys.executable, "-c", INTERN_LOOP, url, token, coll, exp, "intern",
                                              str(work / "img"), str(count), str(args.side)], work, server_pid)
    mb_push, mb_intern = nbytes / 1e6 / t_push, nbytes / 1e6 / t_intern
    print(f"\n{nbytes / 1e6:,.0f} MB ({count} slices of {args.side}x{args.side} uint16)")
    for name, mbs, secs, rss, cpu in (("ndpush", mb_push, t_push, rss_push, cpu_push),
                                      ("intern", mb_intern, t_intern, rss_intern, cpu_intern)):
        print(f"{name}  {mbs:8.1f} MB/s  {secs:7.1f} s  peak RSS {rss:7.0f} MB  "
              f"CPU {cpu:6.1f} s (client + server) = {nbytes / 1e6 / cpu:6.1f} MB per CPU-s")
    print(f"ratio   {mb_push / mb_intern:8.2f}x (ndpush / intern loop); CPU cost {cpu_intern / cpu_push:.2f}x lower")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=2**30, help="bytes of slices to ingest (default 1GiB)")
    parser.add_argument("--side", type=int, default=SLICE, help="slice width and height (default 2048)")
    parser.add_argument("--threads", type=int, default=8, help="ndpush --threads")
    parser.add_argument("--workdir", help="where to put slices and server data (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    count = max(1, args.size // (args.side * args.side * 2))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ndex-bench-"))
    (work / "img").mkdir(parents=True, exist_ok=True)
    try:
        print(f"writing {count} slices of {args.side}x{args.side} uint16 to {work / 'img'}")
        write_slices(work / "img", count, args.side)
        with LocalServer(work / "data", user="bench", log_path=work / "serve.log", extra_args=("--quiet",)) as server:
            measure(args, work, count, server.remote.url, server.token, server.process.pid)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
