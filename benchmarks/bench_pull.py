"""Pull benchmark: ndpull vs intern's parallel get_cutout + tifffile, against one `ndex serve`, same run.

    python benchmarks/bench_pull.py                 # 1 GiB uint8 (4096 x 4096 x 64), 8 threads
    python benchmarks/bench_pull.py --gib 0.25      # a quicker run
    python benchmarks/bench_pull.py --gib 8 --only ndpull   # peak-RSS check of an 8 GiB pull
    python benchmarks/bench_pull.py --ndex1 ~/src/ndex-1.x  # also ndex 1.x's ndpull, same run

Every client runs as a child process so that its peak RSS (ru_maxrss) is measured separately. ndpull
and intern write uncompressed TIFF slices into a fresh directory; ndex 1.x writes its zlib-6 slices
as it always did. Prints MB/s, peak RSS and the ratios ndpull / intern (target 3x) and ndpull / ndex
1.x (target 10x). Without --ndex1 the second ratio uses the issue's figure for ndex 1.x (~37 MB/s).

--ndex1 takes a checkout of https://github.com/neurodata/ndex (1.x; nothing of it is part of this
repository). Its pull needs only blosc, numpy, requests, tifffile and tqdm; its pinned 2018 versions do
not install on Python 3.11, so the benchmark makes a virtualenv in the work directory with the oldest
versions that run its code here (tifffile 2021.11.2 is the last that takes its `imsave(compress=6)`).
ndex 1.x reads only a config file (it ignores --url/--token), so one is written for it.
Not part of the test suite: run on demand.
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

from ndex.cli.local_server import LocalServer
from ndex.client import BossClient, ChannelRef
from ndex.geometry import Box, plan_blocks
from ndex.synthetic import em_slice

INTERN_SCRIPT = """
import sys, tifffile
from intern.remote.boss import BossRemote
url, token, outdir, nx, ny, nz = sys.argv[1:7]
proto, host = url.split("://")
rmt = BossRemote({"protocol": proto, "host": host, "token": token})
chan = rmt.get_channel("image", "bench", "em")
data = rmt.get_cutout(chan, 0, [0, int(nx)], [0, int(ny)], [0, int(nz)], parallel=True)
for z in range(data.shape[0]):
    tifffile.imwrite(f"{outdir}/intern_z{z:04d}.tif", data[z])
"""


def shape_for(gib: float) -> tuple[int, int, int]:
    side = 4096  # an 8 GiB pull is 4096 x 4096 x 512: the slab buffer stays 256 MiB
    depth = max(16, int(round(gib * 2**30 / (side * side) / 16)) * 16)
    return side, side, depth


def load(client: BossClient, shape: tuple[int, int, int]) -> None:
    nx, ny, nz = shape
    client.create_collection("bench")
    client.create_coord_frame("bench_frame", x=(0, nx), y=(0, ny), z=(0, nz), voxel_size=(4.0, 4.0, 40.0))
    client.create_experiment("bench", "em", coord_frame="bench_frame")
    ref = ChannelRef("bench", "em", "image")
    client.create_channel(ref, type="image", datatype="uint8")
    base = np.stack([em_slice(z, (ny, nx)) for z in range(16)])
    for block in plan_blocks(Box((0, 0, 0), shape), 1, 64 * 2**20, depth=16):
        (x0, x1), (y0, y1), (z0, z1) = block.x, block.y, block.z
        client.post_cutout(ref, 0, block, base[: z1 - z0, y0:y1, x0:x1])


NDEX1_REQUIREMENTS = ("numpy<2", "tifffile==2021.11.2", "blosc", "requests", "tqdm")
NDEX1_SCRIPT = "import sys; from ndex.ndpull.ndpull import main; sys.argv[0] = 'ndpull'; main()"


def ndex1_command(checkout: Path, work: Path, server: LocalServer, shape: tuple[int, int, int],
                  threads: int) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run ndex 1.x's ndpull from `checkout` on the benchmark volume."""
    if not (checkout / "ndex" / "ndpull" / "ndpull.py").is_file():
        raise SystemExit(f"--ndex1 {checkout}: no ndex/ndpull/ndpull.py there; give a checkout of "
                         "https://github.com/neurodata/ndex")
    venv = work / "ndex1-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *NDEX1_REQUIREMENTS], check=True)
    config = work / "ndex1.cfg"
    host = server.remote.url.split("://", 1)[1].rstrip("/")
    config.write_text(f"[Default]\nprotocol = http\nhost = {host}\ntoken = {server.token}\n")
    config.chmod(0o600)
    argv = [str(python), "-P", "-c", NDEX1_SCRIPT, "--config_file", str(config), "--collection", "bench",
            "--experiment", "em", "--channel", "image", "--x", "0", str(shape[0]), "--y", "0", str(shape[1]),
            "--z", "0", str(shape[2]), "--threads", str(threads), "--outdir", str(work / "ndex1")]
    # its `ndex` package must win over this one: -P keeps the current directory (maybe ours) off its path
    return argv, {**os.environ, "PYTHONPATH": str(checkout)}


def timed_child(argv: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a child process; its output goes to `log`."""
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{argv[:3]} failed with {os.waitstatus_to_exitcode(status)}:\n" + "\n".join(tail))
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0, help="volume size in GiB (default 1)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--only", choices=("ndpull", "intern", "ndex1"), help="run one client only")
    parser.add_argument("--ndex1", type=Path, metavar="CHECKOUT",
                        help="a checkout of ndex 1.x (github.com/neurodata/ndex): also run its ndpull")
    parser.add_argument("--ndpull_args", default="", help="extra ndpull flags, e.g. '--block_size 8MiB'")
    parser.add_argument("--workdir", help="keep files here (default: a temporary directory, removed)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ndex-bench-pull-"))
    shape = shape_for(args.gib)
    nbytes = shape[0] * shape[1] * shape[2]
    try:
        with LocalServer(work / "data", user="bench", log_path=work / "serve.log") as server:
            with BossClient(server.remote, threads=args.threads) as client:
                t0 = time.perf_counter()
                load(client, shape)
                print(f"loaded {shape[0]}x{shape[1]}x{shape[2]} uint8 ({nbytes / 2**30:.2f} GiB) "
                      f"in {time.perf_counter() - t0:.1f} s")
            results = {}
            if args.only in (None, "ndpull"):
                out = work / "ndpull"
                results["ndpull"] = timed_child([
                    sys.executable, "-m", "ndex.cli.pull", "--url", server.remote.url, "--token", server.token,
                    "--collection", "bench", "--experiment", "em", "--channel", "image", "--full_extent",
                    "--outdir", str(out), "--threads", str(args.threads), "-q", *args.ndpull_args.split()],
                    work / "ndpull.log")
                shutil.rmtree(out, ignore_errors=True)
            if args.only in (None, "intern"):
                out = work / "intern"
                out.mkdir()
                results["intern"] = timed_child([sys.executable, "-c", INTERN_SCRIPT, server.remote.url,
                                                 server.token, str(out), *map(str, shape)], work / "intern.log")
                shutil.rmtree(out, ignore_errors=True)
            if args.ndex1 and args.only in (None, "ndex1"):
                argv, env = ndex1_command(args.ndex1.expanduser().resolve(), work, server, shape, args.threads)
                results["ndex1"] = timed_child(argv, work / "ndex1.log", env)
                shutil.rmtree(work / "ndex1", ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    for name, (seconds, rss) in results.items():
        print(f"{name:7s} {nbytes / seconds / 1e6:8.1f} MB/s  {seconds:7.2f} s  peak RSS {rss:8.0f} MB")
    if "ndpull" in results and "intern" in results:
        ratio = results["intern"][0] / results["ndpull"][0]
        print(f"ndpull / intern throughput ratio: {ratio:.2f}x (target >= 3x)")
    if "ndpull" in results and "ndex1" in results:
        print(f"ndpull / ndex 1.x throughput ratio, this run: {results['ndex1'][0] / results['ndpull'][0]:.1f}x "
              "(target >= 10x)")
    elif "ndpull" in results:
        print(f"ndpull / ndex 1.x (~37 MB/s, measured in the issue): {nbytes / results['ndpull'][0] / 1e6 / 37:.1f}x "
              "(target >= 10x; --ndex1 measures it in this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
