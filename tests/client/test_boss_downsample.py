"""Waiting for a downsample, against BOSS's own downsample view (bossspatialdb/views.py, downsample.py).

BOSS answers a POST with 409/2006 when one is queued or running, when the channel is already
downsampled and when the frame is too large for a non-admin; with 400/1006 when two POSTs race; a
cancel puts the status back to NOT_DOWNSAMPLED. `BossDownsample` answers exactly so, with the messages
recorded in tests/data/boss/errors.json.
"""
from __future__ import annotations

import json
import re

import pytest
from client_fakes import BASE
from test_boss_recorded import ERRORS, REF, load

from ndex.client.models import PYRAMID_KEY
from ndex.errors import RemoteError, UsageError
from ndex.transfer.resources import downsample

STATUS_URL = f"{BASE}/v1/downsample/lab2019/em/image/"


class BossDownsample:
    """BOSS's Downsample view for one channel over `responses`; `script` holds the statuses successive
    GETs see (the last one stays)."""

    def __init__(self, rsps, status: str = "NOT_DOWNSAMPLED", script: tuple[str, ...] = ("IN_PROGRESS",
                 "DOWNSAMPLED"), *, too_large: bool = False, race: bool = False, frame: str = "coord_frame_offset"):
        self.status, self.script, self.too_large, self.race = status, list(script), too_large, race
        self.posts = self.gets = 0
        self.metadata: dict[str, str] = {}
        rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em/channel/image", json=load("channel_get"))
        rsps.get(f"{BASE}/v1/collection/lab2019/experiment/em", json=load("experiment_get"))
        rsps.get(f"{BASE}/v1/coord/lab2019_em", json={**load(frame), "name": "lab2019_em"})
        rsps.add_callback("POST", re.compile(STATUS_URL.rstrip("/") + "/?$"), self.post)
        rsps.add_callback("GET", re.compile(STATUS_URL.rstrip("/") + r"/?(\?.*)?$"), self.get)
        rsps.add_callback("GET", f"{BASE}/v1/meta/lab2019/em/image", self.meta_list)
        rsps.add_callback("POST", re.compile(rf"{BASE}/v1/meta/lab2019/em/image/\?.*"), self.meta_post)

    @staticmethod
    def _error(name: str):
        recorded = ERRORS[name]
        return recorded["status"], recorded["headers"], json.dumps(recorded["body"])

    def post(self, request):
        self.posts += 1
        if self.race:
            return self._error("downsample_race")
        refusal = {"IN_PROGRESS": "downsample_running", "QUEUED": "downsample_queued",
                   "DOWNSAMPLED": "downsample_done"}.get(self.status)
        if refusal:  # a non-staff user: BOSS checks these before the size
            return self._error(refusal)
        if self.too_large:
            return self._error("downsample_too_large")
        self.status = "QUEUED"
        return 201, {}, b""

    def get(self, request):
        self.gets += 1
        if self.script and (self.posts or self.gets > 1):
            self.status = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return 200, {}, json.dumps({**load("downsample_status"), "status": self.status})

    def meta_list(self, request):
        return 200, {}, json.dumps({"keys": list(self.metadata)})

    def meta_post(self, request):
        key = re.search(r"key=([^&]+)", request.url)[1]
        self.metadata[key] = "set"
        return 201, {}, b""


def run(client, **kw):
    clock = iter(range(0, 10**6, 60))
    return downsample(client, REF, poll=0, sleep=lambda s: None, clock=lambda: next(clock), **kw)


def test_a_started_downsample_is_waited_for_and_recorded(client, rsps):
    boss = BossDownsample(rsps)
    result = run(client)
    assert result.status["status"] == "DOWNSAMPLED" and not result.already and boss.posts == 1
    assert result.line == "downsample of lab2019/em/image finished: DOWNSAMPLED (4 levels)"
    assert PYRAMID_KEY in boss.metadata


@pytest.mark.parametrize("status", ["IN_PROGRESS", "QUEUED"])
def test_one_already_queued_or_running_is_joined(client, rsps, status):
    boss = BossDownsample(rsps, status=status, script=("IN_PROGRESS", "IN_PROGRESS", "DOWNSAMPLED"))
    result = run(client)
    assert result.status["status"] == "DOWNSAMPLED" and not result.already and boss.posts == 1


def test_a_start_race_400_1006_is_joined_like_a_409(client, rsps):
    boss = BossDownsample(rsps, status="QUEUED", race=True, script=("QUEUED", "IN_PROGRESS", "DOWNSAMPLED"))
    assert run(client).status["status"] == "DOWNSAMPLED" and boss.posts == 1


def test_already_downsampled_ends_at_once_with_nothing_to_do(client, rsps):
    boss = BossDownsample(rsps, status="DOWNSAMPLED", script=())
    result = run(client)
    assert result.already and boss.gets == 2  # one to read the refusal, one for the final document
    assert result.line == "downsample of lab2019/em/image: already downsampled and unchanged since, nothing to do"


def test_a_frame_too_large_for_a_non_admin_is_one_line_without_waiting(client, rsps):
    boss = BossDownsample(rsps, too_large=True)
    with pytest.raises(RemoteError) as info:
        run(client)
    assert "larger than non-admin users may downsample" in str(info.value) and "administrators" in str(info.value)
    assert boss.gets == 0 and len(str(info.value).splitlines()) == 1


def test_a_cancel_ends_the_wait(client, rsps):
    BossDownsample(rsps, script=("QUEUED", "IN_PROGRESS", "NOT_DOWNSAMPLED"))
    with pytest.raises(RemoteError, match="was cancelled .status NOT_DOWNSAMPLED.: re-run with --downsample"):
        run(client)


def test_the_wait_times_out_with_one_line(client, rsps):
    BossDownsample(rsps, script=("IN_PROGRESS",))
    with pytest.raises(RemoteError) as info:
        run(client, timeout=600)
    assert "did not finish within 600 s (status IN_PROGRESS); it continues on the server" in str(info.value)


def test_a_failed_downsample_says_so(client, rsps):
    BossDownsample(rsps, script=("IN_PROGRESS", "FAILED"))
    with pytest.raises(RemoteError, match="failed"):
        run(client)


def test_an_anisotropic_frame_with_x_unlike_y_is_refused_before_any_post(client, rsps):
    boss = BossDownsample(rsps, frame="coord_frame_xy_differ")
    with pytest.raises(UsageError, match=r"x and y voxel sizes differ \(x 406, y 412\)"):
        run(client)
    assert boss.posts == 0 and boss.gets == 0
