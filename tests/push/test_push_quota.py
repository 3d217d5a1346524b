"""BossDB's usage quota: a 429 without Retry-After ends the push at once, not after retries and rounds.

Each throttled call notifies BossDB's administrators, and the quota is "Expected available tomorrow":
the push must neither retry the request nor repeat it in its per-block throttle rounds.
"""
from __future__ import annotations

import json
from pathlib import Path

import requests
from push_helpers import random_volume, write_slices

from ndex.client import BossClient, ChannelRef
from ndex.sources import SourceSpec
from ndex.transfer.upload import PushSpec, TransferOptions, push

QUOTA = json.loads((Path(__file__).resolve().parents[1] / "data" / "boss" / "errors.json").read_text())["quota_cutout"]


class QuotaSpent(requests.Session):
    """Answers every cutout POST with BOSS's quota 429 (no Retry-After) instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def request(self, method, url, *args, **kwargs):
        if method == "POST" and "/cutout/" in url:
            self.refused += 1
            response = requests.Response()
            response.status_code, response.url = 429, url
            response._content = json.dumps(QUOTA["body"]).encode()
            response.headers.update(QUOTA["headers"])
            response.request = requests.Request(method, url).prepare()
            return response
        return super().request(method, url, *args, **kwargs)


def test_a_spent_quota_ends_the_push_after_one_refused_post_per_thread(tmp_path, server_app):
    from fixtures_server import make_channel

    ch = make_channel(server_app, datatype="uint8", extent=(2048, 64, 64))
    write_slices(tmp_path / "img", random_volume((64, 64, 2048), "uint8"))
    session, sleeps = QuotaSpent(), []
    source = SourceSpec(base_path=str(tmp_path / "img"), base_filename="img_<p:4>", z_range=(0, 64))
    ref = ChannelRef(ch.collection, ch.experiment, ch.channel)
    with BossClient(server_app.remote, threads=2, session_factory=lambda: session, sleep=sleeps.append) as client:
        report = push(PushSpec(ref, source), TransferOptions(threads=2, block_bytes=2**20,
                                                             manifest=str(tmp_path / "m.sqlite")),
                      client=client)
    assert not report.ok and report.blocks_done == 0
    assert 1 <= session.refused <= 2 and sleeps == [] and report.retries == 0  # 16 blocks, one try per thread
    assert report.throttled == 0  # not mistaken for a gateway's throttle that shrinks the window and waits
    stopped = " ".join(report.failure_lines() + report.notes)  # what ndpush prints
    assert "usage quota is spent" in stopped and "Expected available tomorrow" in stopped and "re-run" in stopped
