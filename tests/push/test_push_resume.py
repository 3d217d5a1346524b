"""Resume after the process is killed mid-run, and throttling by a real server behind a 429-answering session."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import requests
from intern.remote.boss import BossRemote
from push_helpers import random_volume, write_slices

from ndex.cli import push as push_cli
from ndex.client import BossClient, ChannelRef
from ndex.sources import SourceSpec
from ndex.transfer.upload import PushSpec, TransferOptions, push

# Runs ndpush with each post slowed down, so that the test can kill it half-way (test-only wrapper).
SLOW_NDPUSH = """
import sys, time
from ndex.client import BossClient
post = BossClient.post_cutout
def slow_post(self, *a, **k):
    post(self, *a, **k)
    time.sleep(0.15)
BossClient.post_cutout = slow_post
from ndex.cli.push import main
sys.exit(main(sys.argv[1:]))
"""


def confirmed(manifest: Path) -> int:
    if not manifest.exists():
        return 0
    with sqlite3.connect(manifest, timeout=5) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM blocks WHERE state IN ('posted', 'verified')").fetchone()[0]
        except sqlite3.OperationalError:  # table not created yet
            return 0


def test_killed_run_resumes_posting_only_the_rest(tmp_path, server_app, capsys):
    tag = uuid.uuid4().hex[:8]
    coll, exp = f"coll-{tag}", f"exp-{tag}"
    vol = random_volume((32, 64, 2048), "uint8")  # 2 slabs x 4 cuboid blocks
    write_slices(tmp_path / "img", vol)
    args = ["--url", server_app.url, "--token", server_app.token, "-q", "--collection", coll, "--experiment", exp,
            "--channel", "ch", "--base_path", str(tmp_path / "img"), "--base_filename", "img_<p:4>",
            "--x_extent", "0", "2048", "--y_extent", "0", "64", "--z_extent", "0", "32", "--log_dir", str(tmp_path),
            "--threads", "1", "--block_size", "4MiB", "--verify", "none"]
    assert push_cli.main([*args, "--create_resources"]) == 0
    manifest = tmp_path / f"ingest_log_{coll}_{exp}_ch.txt.manifest.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_NDPUSH, *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while confirmed(manifest) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = confirmed(manifest)
    assert proc.returncode == -signal.SIGKILL and 3 <= done < 8
    capsys.readouterr()
    assert push_cli.main(args) == 0
    out = capsys.readouterr().out
    posted = re.search(r"(\d+) blocks posted, 0 empty skipped, (\d+) done earlier, 0 failed of 8", out)
    assert posted and (int(posted.group(1)), int(posted.group(2))) == (8 - done, done)
    rmt = BossRemote(server_app.intern_config())
    got = rmt.get_cutout(rmt.get_channel("ch", coll, exp), 0, [0, 2048], [0, 64], [0, 32])
    np.testing.assert_array_equal(got, vol)


class Sometimes429(requests.Session):
    """A session that answers every third cutout POST with 429 + Retry-After instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = 0
        self.refused = 0

    def request(self, method, url, *args, **kwargs):
        if method == "POST" and "/cutout/" in url:
            self.posts += 1
            if self.posts % 3 == 0:
                self.refused += 1
                response = requests.Response()
                response.status_code, response.url, response._content = 429, url, b'{"detail": "slow down"}'
                response.headers["Retry-After"] = "0"
                response.request = requests.Request(method, url).prepare()
                return response
        return super().request(method, url, *args, **kwargs)


def test_a_throttling_server_slows_the_push_but_does_not_fail_it(tmp_path, server_app):
    from fixtures_server import make_channel

    ch = make_channel(server_app, datatype="uint8", extent=(2048, 64, 32))
    vol = random_volume((32, 64, 2048), "uint8")
    write_slices(tmp_path / "img", vol)
    session = Sometimes429()
    source = SourceSpec(base_path=str(tmp_path / "img"), base_filename="img_<p:4>", z_range=(0, 32))
    ref = ChannelRef(ch.collection, ch.experiment, ch.channel)
    with BossClient(server_app.remote, threads=4, backoff=0.01, session_factory=lambda: session) as client:
        report = push(PushSpec(ref, source), TransferOptions(threads=4, block_bytes=4 * 2**20, verify="all"),
                      client=client)
    assert report.ok, report.failures
    assert session.refused >= 2 and report.throttled == session.refused and report.retries >= session.refused
    rmt = BossRemote(server_app.intern_config())
    got = rmt.get_cutout(rmt.get_channel(ch.channel, ch.collection, ch.experiment), 0, [0, 2048], [0, 64], [0, 32])
    np.testing.assert_array_equal(got, vol)
