"""`ndex serve --quota_per_day N`: BOSS's per-user throttle (boss/throttling.py) and its 429.

BOSS checks a user's count of cutout bytes before adding the call's cost, so the call that crosses
the limit passes and the next is refused: 429, no Retry-After, "User is throttled. Expected available
tomorrow." in BOSS's envelope with code 3004 (its binary renderers) or as DRF's {"detail"} (JSON).
"""
from __future__ import annotations

import argparse
import datetime

import numpy as np
import pytest
import requests
from boss_fixtures import boss_channel, cutout_url, get, own_server, post

from ndex.cli import serve
from ndex.server.quota import DailyQuota, QuotaExceeded

MESSAGE = "User is throttled. Expected available tomorrow."
CUBOID = (0, 512), (0, 512), (0, 16)  # one whole stored chunk: answered by the app's fast path
SMALL = (0, 16), (0, 16), (0, 4)  # 1024 bytes of uint8


def throttled(r):
    assert r.status_code == 429, r.text
    assert "Retry-After" not in r.headers
    assert r.json() == {"status": 429, "code": 3004, "message": MESSAGE}


@pytest.fixture()
def world(tmp_path):
    with own_server(tmp_path, users=(("rm", "resource-manager"),), quota_per_day=2500) as w:
        yield w


def test_reads_pass_until_the_count_exceeds_the_quota_then_429_without_retry_after(world):
    rm = world.users["rm"]
    tc = boss_channel(rm, stop=(64, 64, 16))
    for _ in range(3):  # counted before each call: 0, 1024, 2048 are all within 2500
        assert get(rm, tc, 0, *SMALL).status_code == 200
    throttled(get(rm, tc, 0, *SMALL))
    r = requests.get(cutout_url(rm, tc, 0, *SMALL), headers={**rm.headers, "Accept": "application/json"},
                     timeout=30)
    assert r.status_code == 429 and r.json() == {"detail": MESSAGE} and "Retry-After" not in r.headers
    # writes are counted apart from reads, as BOSS's ingress and egress metrics are
    assert post(rm, tc, 0, *SMALL, np.ones((4, 16, 16), np.uint8)).status_code == 201


def test_writes_are_counted_per_user(world):
    rm, admin = world.users["rm"], world.users["admin"]
    tc = boss_channel(rm, stop=(64, 64, 16))
    block = np.full((4, 16, 16), 7, np.uint8)
    for _ in range(3):
        assert post(rm, tc, 0, *SMALL, block).status_code == 201
    throttled(post(rm, tc, 0, *SMALL, block))
    assert post(admin, tc, 0, *SMALL, block).status_code == 201  # another user's count is their own


def test_stored_cuboid_reads_through_the_fast_path_are_counted(tmp_path):
    with own_server(tmp_path, quota_per_day=3 * 512 * 512 * 16) as w:
        admin = w.users["admin"]
        tc = boss_channel(admin, stop=(512, 512, 16))
        assert post(admin, tc, 0, *CUBOID, np.full((16, 512, 512), 1, np.uint8)).status_code == 201
        for _ in range(4):
            assert get(admin, tc, 0, *CUBOID).status_code == 200
        throttled(get(admin, tc, 0, *CUBOID))


def test_the_count_starts_again_each_day():
    days = iter([datetime.date(2026, 1, d) for d in (1, 1, 1, 2)])
    quota = DailyQuota(100, today=lambda: next(days))
    quota.charge("ann", "egress", 150)
    with pytest.raises(QuotaExceeded):
        quota.charge("ann", "egress", 1)
    quota.charge("ann", "ingress", 1)  # same day, the other direction
    quota.charge("ann", "egress", 1)  # next day


def test_no_quota_by_default_and_the_flags_reach_the_settings(tmp_path):
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    assert serve.settings_from(parser.parse_args(["--data", str(tmp_path)])).quota_per_day == 0
    args = parser.parse_args(["--data", str(tmp_path), "--quota_per_day", "5000", "--downsample_max_voxels", "7"])
    settings = serve.settings_from(args)
    assert (settings.quota_per_day, settings.downsample_max_voxels) == (5000, 7)
    quota = DailyQuota(0)
    for _ in range(3):
        quota.charge("ann", "egress", 10**15)


def test_image_slices_are_counted_as_reads(world):
    rm = world.users["rm"]
    tc = boss_channel(rm, stop=(64, 64, 16))
    url = f"{rm.url}/v1/image/{tc.path}/xy/0/0:40/0:40/0/"  # 1600 bytes each
    for _ in range(2):
        r = requests.get(url, headers=rm.headers, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    throttled(requests.get(url, headers=rm.headers, timeout=30))
