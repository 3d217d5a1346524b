"""Benchmark: `ndex serve` scaled out — cutout POST and GET throughput by workers, store and database.

Run on demand (not a test; needs PostgreSQL's binaries, which `python3 scripts/dev.py test` installs):

    python benchmarks/bench_scale.py                       # 128 MiB per configuration, 4 client processes
    python benchmarks/bench_scale.py --size 512MiB --clients 8 --no-s3

For every configuration — SQLite or PostgreSQL (a throw-away cluster on a free loopback port), a local
directory or S3 (moto's server in this process), `--workers` 1, 2 and 4 (SQLite: 1 only) — it starts
`ndex serve`, creates a uint8 channel, and has `--clients` client processes POST then GET disjoint
shares of the same aligned 512 x 512 x 16 blocks (4 MiB, one stored chunk each), one connection per
client: one untimed POST pass, then `--runs` timed POST and GET passes. It prints requests/s and MB/s
(MiB of voxels per second), medians of the runs.

Then the cost of the cross-process chunk locks on one process: two in-process apps on the same
PostgreSQL and the same kind of store, one with the PostgreSQL advisory locks a PostgreSQL server uses
(ndex.server.chunklocks), one with thread locks only, take turns at POSTing the same aligned whole
cuboids (`--repeat` runs each, in alternating order); the median of the turns' ratios is the cost
(target: under 10%). Use `--size 512MiB` or more for it: runs under a second swing by 20% here.
"""
from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import requests

from ndex import codecs
from ndex.cli.common import parse_size
from ndex.cli.local_server import free_port, ndex_command
from ndex.synthetic import volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures_postgres import start_postgres, stop_postgres  # noqa: E402

BLOCK = (512, 512, 16)
MIB = int(np.prod(BLOCK)) / 2**20
TEMPLATES = 4
_bodies: list[bytes] = []


# --- client processes --------------------------------------------------------------------------------


def _init_client() -> None:
    """Encode a few EM-like blocks once per client process (never zero: every POST replaces whole chunks)."""
    for k in range(TEMPLATES):
        _bodies.append(codecs.encode(volume("em", BLOCK[::-1], z0=k * BLOCK[2], seed=k)))


def _client(task: tuple[str, str, str, str, list[tuple[int, int, int]]]) -> tuple[float, float]:
    """POST or GET every block of this client's share, one request at a time; (start, end) wall clock."""
    op, url, token, path, starts = task
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    t0 = time.time()
    for i, (x, y, z) in enumerate(starts):
        where = f"{url}/v1/cutout/{path}/0/{x}:{x + BLOCK[0]}/{y}:{y + BLOCK[1]}/{z}:{z + BLOCK[2]}/"
        if op == "POST":
            answer = session.post(where, data=_bodies[i % TEMPLATES], timeout=300)
        else:
            answer = session.get(where, timeout=300, headers={"Accept": "application/blosc"})
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"{op} {where}: {answer.status_code} {answer.text[:200]}")
    return t0, time.time()


def blocks_for(nbytes: int) -> tuple[tuple[int, int, int], list[tuple[int, int, int]]]:
    count = max(1, math.ceil(nbytes / (MIB * 2**20)))
    side = max(1, math.ceil(math.sqrt(count / 2)))
    extent = (side * BLOCK[0], side * BLOCK[1], 2 * BLOCK[2])
    starts = [(x, y, z) for z in range(0, extent[2], BLOCK[2]) for y in range(0, extent[1], BLOCK[1])
              for x in range(0, extent[0], BLOCK[0])]
    return extent, starts


def run_clients(pool: ProcessPoolExecutor, clients: int, op: str, url: str, token: str, path: str,
                starts: list[tuple[int, int, int]]) -> tuple[float, float]:
    """(requests/s, MiB/s) of every client's share, wall clock from the first start to the last end."""
    shares = [starts[k::clients] for k in range(clients)]
    spans = list(pool.map(_client, [(op, url, token, path, share) for share in shares if share]))
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return len(starts) / seconds, len(starts) * MIB / seconds


# --- servers --------------------------------------------------------------------------------------------


def admin_token(db_args: list[str]) -> str:
    made = subprocess.run(ndex_command("token", "create", *db_args, "--user", "bench", "--role", "admin"),
                          capture_output=True, text=True, check=True)
    return made.stdout.strip().splitlines()[-1]


def start_serve(work: Path, db_url: str, store_url: str, workers: int) -> tuple[subprocess.Popen, str, str]:
    data = work / f"data-{uuid.uuid4().hex[:6]}"
    db_args = ["--data", str(data)] + (["--db", db_url] if db_url else [])
    token = admin_token(db_args)
    port = free_port()
    log = open(work / "serve.log", "ab")
    proc = subprocess.Popen(ndex_command("serve", *db_args, "--store", store_url, "--port", str(port),
                                         "--workers", str(workers), "--quiet"), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url, token


def wait_ready(url: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"ndex serve exited with {proc.returncode}: see serve.log")
        try:
            if requests.get(f"{url}/ping/", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"ndex serve at {url} did not start")


def create_channel(url: str, token: str, extent: tuple[int, int, int]) -> str:
    tag = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Token {token}"}
    frame = {"x_start": 0, "x_stop": extent[0], "y_start": 0, "y_stop": extent[1], "z_start": 0,
             "z_stop": extent[2], "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40, "voxel_unit": "nanometers"}
    for path, body in ((f"coord/cf{tag}", frame), (f"collection/c{tag}", {}),
                       (f"collection/c{tag}/experiment/e", {"coord_frame": f"cf{tag}", "num_hierarchy_levels": 1}),
                       (f"collection/c{tag}/experiment/e/channel/em", {"type": "image", "datatype": "uint8"})):
        answer = requests.post(f"{url}/v1/{path}/", json=body, headers=headers, timeout=60)
        if answer.status_code != 201:
            raise SystemExit(f"creating {path}: {answer.status_code} {answer.text}")
    return f"c{tag}/e/em"


def s3_environment(work: Path) -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "AWS_ENDPOINT_URL_S3": endpoint, "AWS_CONFIG_FILE": str(work / "none"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"), "NO_PROXY": "127.0.0.1"})
    return server, endpoint


def new_store(kind: str, work: Path, endpoint: str) -> str:
    if kind == "local":
        return str(work / f"store-{uuid.uuid4().hex[:6]}")
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/volumes"


# --- the two measurements ----------------------------------------------------------------------------------


def matrix(args, work: Path, pg, endpoint: str, pool: ProcessPoolExecutor) -> list[tuple]:
    extent, starts = blocks_for(args.size)
    rows = []
    for store_kind in ("local", "s3") if endpoint else ("local",):
        for db_kind in ("sqlite", "postgresql"):
            for workers in args.workers if db_kind == "postgresql" else [1]:
                db_url = pg.create_database("bench") if db_kind == "postgresql" else ""
                proc, url, token = start_serve(work, db_url, new_store(store_kind, work, endpoint), workers)
                try:
                    path = create_channel(url, token, extent)
                    post, get = measure(pool, args, url, token, path, starts)
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
                rows.append((store_kind, db_kind, workers, *post, *get))
                print(f"  {store_kind:5} {db_kind:10} workers {workers}:  POST {post[0]:6.1f} req/s {post[1]:7.1f} "
                      f"MiB/s   GET {get[0]:6.1f} req/s {get[1]:7.1f} MiB/s", flush=True)
    return rows


def measure(pool: ProcessPoolExecutor, args, url: str, token: str, path: str,
            starts: list[tuple[int, int, int]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Medians of `--runs` POST and GET passes, after one untimed POST pass: only one worker has
    answered when the server looks ready, and the others may still be importing or opening the store."""
    run_clients(pool, args.clients, "POST", url, token, path, starts)
    passes = [(run_clients(pool, args.clients, "POST", url, token, path, starts),
               run_clients(pool, args.clients, "GET", url, token, path, starts)) for _ in range(args.runs)]
    post = tuple(statistics.median(p[0][i] for p in passes) for i in (0, 1))
    get = tuple(statistics.median(p[1][i] for p in passes) for i in (0, 1))
    return post, get  # type: ignore[return-value]


def serve_in_thread(app) -> tuple[str, callable]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    wait_ready(url)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

    return url, stop


def lock_cost(args, work: Path, pg, pool: ProcessPoolExecutor) -> float:
    """Median MiB/s with thread locks only / with advisory locks, aligned whole-cuboid POSTs, one process."""
    from ndex.server.app import create_app
    from ndex.server.chunklocks import ChunkLocks
    from ndex.server.settings import ServerSettings
    from ndex.server.users import issue_token
    from ndex.server.volumes import VolumeStore

    extent, starts = blocks_for(args.size)
    db_url = pg.create_database("bench")
    servers = {}
    for name in ("advisory locks", "thread locks only"):
        store_url = str(work / f"lockstore-{name.split()[0]}")
        settings = ServerSettings(data_dir=str(work / "lockdata"), db_url=db_url, store_url=store_url)
        store = None if name == "advisory locks" else VolumeStore(store_url, locks=ChunkLocks())
        app = create_app(settings, store=store)
        with app.state.services.db.begin() as conn:
            token = issue_token(conn, f"bench-{name.split()[0]}", "admin")
        url, stop = serve_in_thread(app)
        servers[name] = (url, token, create_channel(url, token, extent), stop)
    rates: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for turn in range(args.repeat):  # taking turns: a slow spell of a shared machine hits both
            order = list(servers.items())
            for name, (url, token, path, _stop) in order if turn % 2 else order[::-1]:
                # first one, then the other: the second of a pair also pays for the first's disk writeback
                rates[name].append(run_clients(pool, args.clients, "POST", url, token, path, starts)[1])
    finally:
        for *_rest, stop in servers.values():
            stop()
    for name, values in rates.items():
        print(f"  POST, one process, {name:18}: {statistics.median(values):7.1f} MiB/s (median of {args.repeat})")
    # the median of each turn's pair: a slow spell of the machine cancels out within the pair
    pairs = [plain / locked for plain, locked in zip(rates["thread locks only"], rates["advisory locks"])]
    return statistics.median(pairs) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=128 * 2**20, help="bytes per configuration (128MiB)")
    parser.add_argument("--clients", type=int, default=4, help="client processes, one connection each (4)")
    parser.add_argument("--workers", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 4],
                        help="--workers values to try on PostgreSQL, comma-separated (1,2,4)")
    parser.add_argument("--runs", type=int, default=3, help="timed POST and GET passes per configuration (3)")
    parser.add_argument("--repeat", type=int, default=9, help="turns of the lock-cost comparison (9)")
    parser.add_argument("--no-s3", action="store_true", help="skip the configurations on moto's S3")
    parser.add_argument("--only", choices=("matrix", "locks"), help="run only one of the two measurements")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ndex-bench-scale-"))
    pg = start_postgres()
    moto, endpoint = s3_environment(work) if not args.no_s3 else (None, "")
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(args.clients, mp_context=context, initializer=_init_client) as pool:
            print(f"ndex serve, {args.size / 2**20:.0f} MiB of aligned 4 MiB cuboids, {args.clients} client processes "
                  f"({os.cpu_count()} cores):")
            if args.only != "locks":
                matrix(args, work, pg, endpoint, pool)
            if args.only != "matrix":
                print("cost of the cross-process chunk locks (PostgreSQL, local store, one process):")
                cost = lock_cost(args, work, pg, pool)
                print(f"  advisory locks cost {cost * 100:+.1f}% of POST throughput, median of the turns' pairs "
                      "(target: under 10%)")
    finally:
        if moto is not None:
            moto.stop()
        stop_postgres(pg)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
