"""Volume store benchmark: aligned cuboid writes/reads, merge writes, downsample, on a local directory.

    python benchmarks/bench_store.py                    # 256 MiB uint8 (2048 x 2048 x 64), 2 threads
    python benchmarks/bench_store.py --dtype uint16 --threads 4 --dir /scratch/x

Writes whole 512 x 512 x 16 cuboids (4 MiB at uint8) from a thread pool, as `ndex serve` does for an
aligned ingest; then merge writes (10% zeros, so every chunk is read, merged and rewritten), reads, and
one downsample of the whole hierarchy. Prints MB/s of uncompressed voxels. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ndex.geometry import BOSS_CUBOID, Box, iter_blocks
from ndex.server.layout import ChannelLayout
from ndex.server.volumes import VolumeStore


def timed(label: str, nbytes: int, fn) -> None:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<28} {nbytes / seconds / 1e6:8.0f} MB/s  ({seconds:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="uint8", choices=["uint8", "uint16", "uint64"])
    parser.add_argument("--xy", type=int, default=2048, help="x and y extent (voxels)")
    parser.add_argument("--z", type=int, default=64, help="z extent (voxels)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default=None, help="store directory (default: a temporary one)")
    args = parser.parse_args()

    root = args.dir or tempfile.mkdtemp(prefix="ndex-bench-store-")
    store = VolumeStore(root, concurrency=args.threads)
    layout = ChannelLayout("bench", args.dtype, (args.xy, args.xy, args.z), 0, 3, (True, True))
    whole = Box((0, 0, 0), layout.extent)
    cuboids = list(iter_blocks(whole, BOSS_CUBOID))
    rng = np.random.default_rng(0)
    full = rng.integers(1, 200, size=(1, *reversed(BOSS_CUBOID)), dtype=args.dtype)
    holes = full.copy()
    holes[rng.random(holes.shape) < 0.1] = 0
    nbytes = whole.nbytes(full.itemsize)

    def run(fn) -> None:
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(fn, cuboids))

    print(f"store {root}: {len(cuboids)} cuboids of {full.nbytes / 2**20:.0f} MiB, {args.threads} threads")
    timed("write (no zeros, no read)", nbytes, lambda: run(lambda b: store.write(layout, 0, b, 0, full)))
    timed("write (merge over data)", nbytes, lambda: run(lambda b: store.write(layout, 0, b, 0, holes)))
    timed("read", nbytes, lambda: run(lambda b: store.read(layout, 0, b, (0, 1))))
    timed("downsample (source MB/s)", nbytes, lambda: store.downsample(layout))


if __name__ == "__main__":
    main()
