"""Several `ndex serve` processes over one PostgreSQL and one store, for the scale-out tests.

`Cluster` starts `ndex serve` instances (each with any number of `--workers`) on free loopback ports,
issues the admin token with `ndex token create --db`, runs race clients (race_client.py) as separate
processes and counts what a read-back finds missing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from fixtures_server import ServerHandle, make_channel, wait_for_ping

from ndex import codecs
from ndex.cli.local_server import free_port

CLIENT = Path(__file__).with_name("race_client.py")
EXTENT = (1024, 1024, 32)  # 8 stored chunks: every box of race_client.py overlaps several others


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"ndex-scale-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def ndex(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ndex.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


@dataclass
class Cluster:
    db_url: str
    store_url: str
    work: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    token: str = ""

    def start(self, workers: int = 1, *flags: str) -> str:
        """One more `ndex serve` over the shared database and store; returns its URL."""
        if not self.token:
            made = ndex("token", "create", "--db", self.db_url, "--user", "admin", "--role", "admin")
            assert made.returncode == 0, made.stderr
            self.token = made.stdout.strip().splitlines()[-1]
        port = free_port()
        data = self.work / f"data-{port}"
        log = open(self.work / f"serve-{port}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "ndex.cli.main", "serve", "--data", str(data), "--db",
                                 self.db_url, "--store", self.store_url, "--port", str(port), "--workers",
                                 str(workers), "--quiet", *flags], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        url = f"http://127.0.0.1:{port}"
        self.procs.append(proc)
        self.urls.append(url)
        wait_for_ping(url)
        return url

    def handle(self, url: str | None = None) -> ServerHandle:
        return ServerHandle(url or self.urls[0], self.token, self.work)

    def channel(self):
        return make_channel(self.handle(), datatype="uint8", extent=EXTENT)

    def workers_of(self, proc: subprocess.Popen) -> list[int]:
        found = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "pid="], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        self.urls.clear()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.work.glob("serve-*.log")))


def start_clients(urls: list[str], token: str, path: str, clients: int, posts: int,
                  seed: int, black: int = 0) -> list[subprocess.Popen]:
    """`clients` posting processes (and, with `black`, one clearing process after them)."""
    extent = ",".join(map(str, EXTENT))
    indexes = list(range(clients)) + ([-1] if black else [])
    return [subprocess.Popen([sys.executable, str(CLIENT), ",".join(urls[k % len(urls):] + urls[:k % len(urls)]),
                              token, path, str(k), str(clients), str(posts), str(seed * 100 + k), extent, str(black)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in indexes]


def results_of(procs: list[subprocess.Popen]) -> list[dict]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr[-2000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def read_volume(url: str, token: str, path: str) -> np.ndarray:
    x, y, z = EXTENT
    r = requests.get(f"{url}/v1/cutout/{path}/0/0:{x}/0:{y}/0:{z}/", timeout=120,
                     headers={"Authorization": f"Token {token}", "Accept": "application/blosc"})
    assert r.status_code == 200, r.text[:500]
    return codecs.decode(r.content, "uint8", (z, y, x))


def expected_volume(results: list[dict], black: int = 0, fill: int = 0) -> np.ndarray:
    """What every acknowledged write leaves behind, whatever order the server ran them in, over a volume
    that held `fill` everywhere (the to_black client's planes: 0)."""
    sys.path.insert(0, str(CLIENT.parent))
    from race_client import owners

    x, y, z = EXTENT
    expected = np.full((z, y, x), fill, dtype=np.uint8)
    posters = [r for r in results if "blackened" not in r]
    for k, result in enumerate(posters):
        for (x0, y0, z0), (x1, y1, z1) in result["acked"]:
            region = expected[z0:z1, y0:y1, x0:x1]
            mine = owners(((x0, y0, z0), (x1, y1, z1)), len(posters), black) == k
            region[mine] = k + 1
    expected[(np.arange(z) % 16 < black)] = 0
    return expected


def lost_voxels(volume: np.ndarray, expected: np.ndarray) -> int:
    """Acknowledged voxels that do not read back as written."""
    return int(((expected != 0) & (volume != expected)).sum())
