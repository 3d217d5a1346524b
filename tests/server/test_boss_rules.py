"""BOSS's own rules, read from its source, as `ndex serve` now follows them:

* bosscore/request.py: a cutout at any resolution is checked against the level-0 frame (start and stop
  unscaled); what a coarser level's box covers beyond that level's data reads as zeros.
* boss-tools resolution_hierarchy.py: a downsample builds levels base+1 .. n-1; requests are accepted
  for base .. base+n-1; levels >= n hold nothing.
* bossspatialdb/downsample.py and views.py: the 409/2006 refusals, with BOSS's messages, including
  DOWNSAMPLE_MAX_SIZE for non-admins; DELETE resets the status to NOT_DOWNSAMPLED.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from boss_fixtures import boss_channel, downsample, get, own_server, post, read

from ndex.server import jobs

START, STOP = (1000, 600, 20), (3000, 1800, 84)  # level 1: data in 0..1500 x 0..900 (x, y)
RM = (("rm", "resource-manager"),)  # a user who may create (and so own) resources, but is no admin


def wait_done(server, tc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = downsample(server, tc, "GET").json()["status"]
        if status in ("DOWNSAMPLED", "FAILED"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"downsample never finished: {status}")


def refusal(r, status, code, message=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and body["code"] == code, body
    if message is not None:
        assert body["message"] == message


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with own_server(tmp_path_factory.mktemp("boss-rules"), users=RM) as w:
        yield w


# --- bounds: the level-0 frame at every level ---------------------------------------------------------


@pytest.mark.parametrize("hierarchy,voxel,z_halves", [("isotropic", (4, 4, 4), True),
                                                      ("anisotropic", (4, 4, 40), False)])
def test_every_level_is_addressed_in_the_level0_frame(world, hierarchy, voxel, z_halves):
    admin = world.users["admin"]
    tc = boss_channel(admin, start=START, stop=STOP, levels=3, hierarchy=hierarchy, voxel_size=voxel)
    assert post(admin, tc, 0, (2800, 2816), (1600, 1616), (60, 64), np.full((4, 16, 16), 77, np.uint8)).ok
    assert downsample(admin, tc).status_code == 201 and wait_done(admin, tc) == "DOWNSAMPLED"
    for res in (1, 2):
        # the start a per-level scaling would allow lies below the frame's start: BOSS refuses it
        refusal(get(admin, tc, res, (1000 >> res, 1010 >> res), (600, 610), (20, 21)), 400, 1001)
        refusal(get(admin, tc, res, (1000, 1010), (590, 610), (20, 21)), 400, 1001)
        refusal(get(admin, tc, res, (2990, 3001), (600, 610), (20, 21)), 400, 1001)
    z1 = (30, 32) if z_halves else (60, 64)
    at1 = read(admin, tc, 1, (1400, 1600), (800, 900), (z1[0] - 2, z1[1] + 2))
    assert (at1[2:-2, 0:8, 0:8] == 77).all() and at1.sum() == 77 * at1[2:-2, 0:8, 0:8].size
    # wholly past level 2's data (x extent 750) but inside the frame: zeros, not an error
    assert not read(admin, tc, 2, (1000, 1100), (600, 700), (20, 21)).any()
    # level 2 holds the block at x 700..704, below the frame's start: BOSS cannot address it, nor can we
    refusal(get(admin, tc, 2, (700, 800), (400, 450), (20, 21)), 400, 1001)


def test_writes_stay_inside_the_level0_frame_and_the_levels_data(world):
    admin = world.users["admin"]
    tc = boss_channel(admin, start=START, stop=STOP, levels=2)
    block = np.full((2, 10, 10), 5, np.uint8)
    refusal(post(admin, tc, 1, (500, 510), (600, 610), (20, 22), block), 400, 1001)  # below the frame start
    r = post(admin, tc, 1, (1495, 1505), (600, 610), (20, 22), block)  # past level 1's data (x extent 1500)
    refusal(r, 400, 1001)
    assert "reaches past the data of resolution 1" in r.json()["message"]
    assert post(admin, tc, 1, (1490, 1500), (600, 610), (20, 22), block).status_code == 201
    assert (read(admin, tc, 1, (1490, 1500), (600, 610), (20, 22)) == 5).all()
    # to_black of a box reaching past the data clears what the level holds and answers 200
    url = f"{admin.url}/v1/cutout/to_black/{tc.path}/1/1495:1600/600:610/20:22/"
    assert requests.put(url, headers=admin.headers, timeout=30).status_code == 200
    after = read(admin, tc, 1, (1490, 1500), (600, 610), (20, 22))
    assert (after[:, :, :5] == 5).all() and not after[:, :, 5:].any()


# --- levels of a channel with base_resolution > 0 ----------------------------------------------------------


def test_base_resolution_levels_are_built_as_boss_builds_them(world):
    admin = world.users["admin"]
    tc = boss_channel(admin, stop=(256, 256, 32), levels=3, base=1)  # accepted 1..3, built 2 only (n - 1 = 2)
    for res in (0, 4):
        refusal(get(admin, tc, res, (0, 8), (0, 8), (0, 1)), 400, 1002)
    assert post(admin, tc, 1, (0, 64), (0, 64), (0, 8), np.full((8, 64, 64), 40, np.uint8)).ok
    assert downsample(admin, tc).status_code == 201 and wait_done(admin, tc) == "DOWNSAMPLED"
    assert (read(admin, tc, 2, (0, 32), (0, 32), (0, 4)) == 40).all()
    assert not read(admin, tc, 3, (0, 64), (0, 64), (0, 8)).any()  # level n = 3: accepted, never built


def test_a_base_at_the_top_builds_nothing_but_its_upper_level_is_writable(world):
    admin = world.users["admin"]
    tc = boss_channel(admin, stop=(256, 256, 32), levels=2, base=2)  # accepted 2..3; nothing to build
    assert post(admin, tc, 2, (0, 16), (0, 16), (0, 4), np.full((4, 16, 16), 9, np.uint8)).ok
    assert downsample(admin, tc).status_code == 201 and wait_done(admin, tc) == "DOWNSAMPLED"
    assert not read(admin, tc, 3, (0, 16), (0, 16), (0, 4)).any()
    assert post(admin, tc, 3, (0, 8), (0, 8), (0, 2), np.full((2, 8, 8), 3, np.uint8)).status_code == 201
    assert (read(admin, tc, 3, (0, 8), (0, 8), (0, 2)) == 3).all()


# --- downsample refusals: BOSS's 409s and messages -----------------------------------------------------------


def test_downsample_refusals_carry_boss_messages(world):
    rm, admin = world.users["rm"], world.users["admin"]
    tc = boss_channel(rm, stop=(64, 64, 16), levels=2)
    world.status(tc, "QUEUED")
    refusal(downsample(rm, tc), 409, 2006, "Channel is already waiting to be downsampled. Invalid Request.")
    world.status(tc, "IN_PROGRESS")
    refusal(downsample(rm, tc), 409, 2006, "Channel is currently being downsampled. Invalid Request.")
    assert downsample(rm, tc, "DELETE").status_code == 204
    assert downsample(rm, tc, "GET").json()["status"] == "NOT_DOWNSAMPLED"
    refusal(downsample(rm, tc, "DELETE"), 409, 2006,
            "You can only cancel a queued or in-progress downsample operation.")
    world.status(tc, "DOWNSAMPLED")
    refusal(downsample(rm, tc), 409, 2006, "Channel is already downsampled. Invalid Request.")
    assert downsample(admin, tc).status_code == 201  # BOSS lets staff rebuild a built pyramid
    assert wait_done(admin, tc) == "DOWNSAMPLED"


def test_downsample_of_a_large_frame_needs_an_admin(tmp_path):
    with own_server(tmp_path, users=RM, downsample_max_voxels=64 * 64 * 16) as w:
        rm, admin = w.users["rm"], w.users["admin"]
        fits = boss_channel(rm, start=(10, 0, 0), stop=(74, 64, 16), levels=2)  # 64 x 64 x 16: at the limit
        assert downsample(rm, fits).status_code == 201
        big = boss_channel(rm, stop=(65, 64, 16), levels=2)
        refusal(downsample(rm, big), 409, 2006, jobs.TOO_LARGE)
        assert downsample(rm, big, "GET").json()["status"] == "NOT_DOWNSAMPLED"
        assert downsample(admin, big).status_code == 201
        world_status = {wait_done(admin, tc) for tc in (fits, big)}
        assert world_status == {"DOWNSAMPLED"}


def test_anisotropic_frames_with_unequal_x_and_y_cannot_be_downsampled(world):
    admin = world.users["admin"]
    tc = boss_channel(admin, stop=(64, 64, 16), levels=2, hierarchy="anisotropic", voxel_size=(4, 5, 40))
    r = downsample(admin, tc)
    refusal(r, 400, 9001)
    assert r.json()["message"].startswith(jobs.XY_DIFFER)
    r = downsample(admin, tc, "GET")
    refusal(r, 400, 9001, f"Error while getting downsampled voxel dimensions: {jobs.XY_DIFFER}")
    iso = boss_channel(admin, stop=(64, 64, 16), levels=2, hierarchy="isotropic", voxel_size=(4, 5, 40))
    assert downsample(admin, iso).status_code == 201  # an isotropic hierarchy needs no isotropic level
    assert wait_done(admin, iso) == "DOWNSAMPLED"


# --- uint32 --------------------------------------------------------------------------------------------------


def test_uint32_channels_store_read_and_downsample(world):
    admin = world.users["admin"]
    tc = boss_channel(admin, stop=(64, 64, 16), levels=2, datatype="uint32")
    data = np.arange(8 * 16 * 16, dtype=np.uint32).reshape(8, 16, 16) * 65_537 + 3_000_000_000
    assert post(admin, tc, 0, (0, 16), (0, 16), (0, 8), data).status_code == 201
    assert (read(admin, tc, 0, (0, 16), (0, 16), (0, 8)) == data).all()
    assert downsample(admin, tc).status_code == 201 and wait_done(admin, tc) == "DOWNSAMPLED"
    level1 = read(admin, tc, 1, (0, 8), (0, 8), (0, 4))
    windows = data.reshape(4, 2, 8, 2, 8, 2).astype(np.float64).mean(axis=(1, 3, 5))
    assert np.array_equal(level1, np.floor(windows + 0.5).astype(np.uint32))


def test_a_start_that_loses_the_race_is_boss_400_1006(world, monkeypatch):
    rm = world.users["rm"]
    tc = boss_channel(rm, stop=(64, 64, 16), levels=2)
    world.status(tc, "QUEUED")  # another request queued it after this one read the status
    catalog = world.app.state.services.jobs.catalog
    monkeypatch.setattr(catalog, "status", lambda chan_id: "NOT_DOWNSAMPLED")
    refusal(downsample(rm, tc), 400, 1006, "Downsample already queued or in progress")
