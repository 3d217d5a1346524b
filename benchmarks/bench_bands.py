"""Benchmark: push and pull of slices far larger than a band, against one `ndex serve`, same run.

    python benchmarks/bench_bands.py                          # 16 slices of 16384 x 16384, uint8 and uint16
    python benchmarks/bench_bands.py --side 8192 --dtypes uint8   # a quicker run
    python benchmarks/bench_bands.py --baseline /tmp/ndex-main    # also 4096 x 4096 against older code

For each dtype it writes 16 EM-like slices (uncompressed TIFF, 512-row strips, made band by band so the
benchmark itself stays small), then times, each in its own process, as a user runs them:

* ndpush and ndpull with default settings, and with --max_memory 512MB;
* intern: create_cutout of the 16 slices read with tifffile, get_cutout of the region written with
  tifffile (what ndex 1.x users scripted) -- uint8 only by default: intern holds the whole 16-slice
  region twice over, 17 GB for uint16 (--intern_dtypes uint16 asks for it anyway).

Every time is the whole command (start-up included); peak RSS is the child's own VmHWM (ru_maxrss of a
child keeps its parent's peak across exec). Targets: peak RSS < 1 GB with default settings, < 600 MB
with --max_memory 512MB. With --baseline DIR (a tree of the code to compare, e.g. `git archive main |
tar -x -C DIR`), ndpush and ndpull of 16 slices of 4096 x 4096 uint8 also run from DIR and from this
tree, alternately, `--repeat` times each, and the median throughput ratio is printed (target: within 10%).
Not part of the test suite: run on demand.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_push import create_channels  # benchmarks/ is on sys.path when run as a script

from ndex.cli.local_server import LocalServer
from ndex.geometry import Box
from ndex.sinks.tiff_bands import ChunkedTiff, ChunkLayout
from ndex.synthetic import em_slice

SLICES = 16
CAP = "512MB"
# runs a CLI module and reports its own peak RSS (VmHWM) on stderr, however it exits
WRAPPER = """
import atexit, runpy, sys
def peak():
    hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    sys.stderr.write(f"\\nPEAK_KB {hwm}\\n")
atexit.register(peak)
module, sys.argv = sys.argv[1], [sys.argv[1]] + sys.argv[2:]
runpy.run_module(module, run_name="__main__")
"""
INTERN_PUSH = """
import sys, numpy as np, tifffile
from intern.remote.boss import BossRemote
url, token, coll, exp, chan, folder, n, side = sys.argv[1:9]
proto, host = url.split("://")
rmt = BossRemote({"protocol": proto, "host": host, "token": token})
data = np.stack([tifffile.imread(f"{folder}/img_{z:04d}.tif") for z in range(int(n))])
rmt.create_cutout(rmt.get_channel(chan, coll, exp), 0, [0, int(side)], [0, int(side)], [0, int(n)], data)
"""
INTERN_PULL = """
import sys, tifffile
from intern.remote.boss import BossRemote
url, token, coll, exp, chan, outdir, n, side = sys.argv[1:9]
proto, host = url.split("://")
rmt = BossRemote({"protocol": proto, "host": host, "token": token})
data = rmt.get_cutout(rmt.get_channel(chan, coll, exp), 0, [0, int(side)], [0, int(side)], [0, int(n)], parallel=True)
for z in range(data.shape[0]):
    tifffile.imwrite(f"{outdir}/intern_z{z:04d}.tif", data[z])
"""


def write_slices(folder: Path, side: int, dtype: str) -> None:
    """EM-like slices (uint16: scaled to 12 bits), written one 512-row band at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    layout = ChunkLayout.choose(Box((0, 0, 0), (side, side, 1)))
    for z in range(SLICES):
        tiff = ChunkedTiff(folder / f"img_{z:04d}.tif", layout, np.dtype(dtype), "none", None,
                           bigtiff=side * side * np.dtype(dtype).itemsize > 2**31)
        for y0 in range(0, side, 512):
            band = em_slice(z, (min(512, side - y0), side), seed=y0)
            tiff.write((y0, y0 + band.shape[0]), (0, side), band if dtype == "uint8" else band.astype(dtype) * 16)
        tiff.close_page()


def run(argv: list[str], work: Path, pythonpath: str | None = None) -> tuple[float, float]:
    """(seconds of the whole command, its peak RSS in MB)."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the compared tree as it is
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peaks = [line for line in proc.stderr.splitlines() if line.startswith("PEAK_KB ")]
    peak = int(peaks[-1].split()[1]) / 1024 if peaks else float("nan")
    return seconds, peak


def cli(module: str, *args: str) -> list[str]:
    return [sys.executable, "-c", WRAPPER, module, *args]


def intern(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", WRAPPER.replace('runpy.run_module(module, run_name="__main__")',
                                                   "exec(compile(open(module).read(), module, 'exec'))"),
            script, *args]


class Bench:
    def __init__(self, server: LocalServer, work: Path) -> None:
        self.server, self.work = server, work
        self.url, self.token = server.remote.url, server.token

    def push(self, coll: str, exp: str, chan: str, folder: Path, side: int, *extra: str,
             pythonpath: str | None = None) -> tuple[float, float]:
        logs = Path(tempfile.mkdtemp(dir=self.work, prefix="logs"))  # a fresh manifest: every run posts it all
        try:
            return run(cli("ndex.cli.push", "--url", self.url, "--token", self.token, "-q", "--collection", coll,
                           "--experiment", exp, "--channel", chan, "--base_path", str(folder), "--base_filename",
                           "img_<p:4>", "--x_extent", "0", str(side), "--y_extent", "0", str(side), "--z_extent",
                           "0", str(SLICES), "--log_dir", str(logs), *extra), self.work, pythonpath)
        finally:
            shutil.rmtree(logs, ignore_errors=True)

    def pull(self, coll: str, exp: str, chan: str, out: Path, *extra: str,
             pythonpath: str | None = None) -> tuple[float, float]:
        shutil.rmtree(out, ignore_errors=True)
        try:
            return run(cli("ndex.cli.pull", "--url", self.url, "--token", self.token, "-q", "--collection", coll,
                           "--experiment", exp, "--channel", chan, "--full_extent", "--outdir", str(out), *extra),
                       self.work, pythonpath)
        finally:
            shutil.rmtree(out, ignore_errors=True)  # 8 GB a run: the disk holds one at a time

    def intern_run(self, script: str, coll: str, exp: str, chan: str, folder: Path, side: int) -> tuple[float, float]:
        path = self.work / "intern_script.py"
        path.write_text(script)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return run(intern(str(path), self.url, self.token, coll, exp, chan, str(folder), str(SLICES), str(side)),
                       self.work)
        finally:
            if script is INTERN_PULL:
                shutil.rmtree(folder, ignore_errors=True)


def report(rows: list[tuple[str, float, float]], nbytes: int) -> None:
    for name, seconds, peak in rows:
        target = 600 if CAP in name else 1000 if name.startswith("nd") else None
        verdict = "" if target is None else f"  ({'under' if peak < target else 'OVER'} {target} MB)"
        print(f"  {name:34s} {nbytes / 1e6 / seconds:8.1f} MB/s  {seconds:7.1f} s  peak RSS {peak:7.0f} MB{verdict}",
              flush=True)


def large(bench: Bench, side: int, dtype: str, with_intern: bool) -> None:
    folder = bench.work / f"img{dtype}"
    print(f"\nwriting {SLICES} slices of {side}x{side} {dtype} to {folder}", flush=True)
    write_slices(folder, side, dtype)
    nbytes = SLICES * side * side * np.dtype(dtype).itemsize
    coll, exp = create_channels(bench.url, bench.token, SLICES, side, dtype, ("default", "capped", "intern"), f"bands{dtype}")
    rows = [("ndpush", *bench.push(coll, exp, "default", folder, side)),
            (f"ndpush --max_memory {CAP}", *bench.push(coll, exp, "capped", folder, side, "--max_memory", CAP))]
    if with_intern:
        rows.append(("intern create_cutout", *bench.intern_run(INTERN_PUSH, coll, exp, "intern", folder, side)))
    shutil.rmtree(folder)
    out = bench.work / "out"
    rows += [("ndpull", *bench.pull(coll, exp, "default", out)),
             (f"ndpull --max_memory {CAP}", *bench.pull(coll, exp, "default", out, "--max_memory", CAP))]
    if with_intern:
        rows.append(("intern get_cutout + tifffile", *bench.intern_run(INTERN_PULL, coll, exp, "intern", out, side)))
    print(f"{nbytes / 1e6:,.0f} MB: {SLICES} slices of {side}x{side} {dtype}")
    report(rows, nbytes)


def baseline(bench: Bench, tree: Path, repeat: int) -> None:
    """4096 x 4096 uint8, this tree against `tree`, alternately: median throughput of each."""
    side, folder = 4096, bench.work / "img4096"
    write_slices(folder, side, "uint8")
    nbytes = SLICES * side * side
    coll, exp = create_channels(bench.url, bench.token, SLICES, side, "uint8", ("before", "after"), "bands")
    times: dict[str, list[float]] = {k: [] for k in ("push before", "push after", "pull before", "pull after")}
    here = str(Path(__file__).resolve().parents[1])
    for i in range(repeat):
        order = [("before", str(tree)), ("after", here)]
        for when, path in order[::-1] if i % 2 else order:  # alternate who goes first: the machine drifts
            times[f"push {when}"].append(bench.push(coll, exp, when, folder, side, pythonpath=path)[0])
            times[f"pull {when}"].append(bench.pull(coll, exp, when, bench.work / "out", pythonpath=path)[0])
    print(f"\n{nbytes / 1e6:,.0f} MB: {SLICES} slices of 4096x4096 uint8, median of {repeat} (before = {tree})")
    for kind in ("push", "pull"):
        before, after = (nbytes / 1e6 / statistics.median(times[f"{kind} {w}"]) for w in ("before", "after"))
        print(f"  nd{kind}  before {before:7.1f} MB/s  after {after:7.1f} MB/s  ratio {after / before:.2f} "
              f"(target >= 0.90)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=16384, help="slice width and height (default 16384)")
    parser.add_argument("--dtypes", nargs="+", default=["uint8", "uint16"])
    parser.add_argument("--intern_dtypes", nargs="*", default=["uint8"], help="dtypes intern runs for")
    parser.add_argument("--baseline", type=Path, help="a tree of older code: compare 4096 x 4096 throughput")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side of the baseline comparison")
    parser.add_argument("--only_baseline", action="store_true", help="skip the large slices")
    parser.add_argument("--workdir", help="where to put slices and server data (default: a temp dir, removed)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ndex-bands-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with LocalServer(work / "data", user="bench", log_path=work / "serve.log", extra_args=("--quiet",)) as server:
            bench = Bench(server, work)
            if args.baseline:
                baseline(bench, args.baseline, args.repeat)
            for dtype in [] if args.only_baseline else args.dtypes:
                large(bench, args.side, dtype, dtype in args.intern_dtypes)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
