"""Offset frames at every level, against a real `ndex serve`: no request ever goes below the level-0 start.

BOSS checks the cutouts of every level against the level-0 frame (bosscore/request.py), so a client that
scales the frame start per level sends most of a `--full_extent --res N` below it and fails on BOSS.
Every URL the client sends is recorded and checked against that rule, so these tests hold whichever
way `ndex serve` checks its bounds; the data is compared with what intern reads of the same boxes.
"""
from __future__ import annotations

import re
import uuid

import numpy as np
import pytest
import requests
import tifffile
from intern.remote.boss import BossRemote

from ndex.cli.pull import main as ndpull
from ndex.client import BossClient, ChannelRef
from ndex.geometry import Box
from ndex.transfer.download import TransferOptions, pull_array
from ndex.transfer.resources import downsample

FRAME = Box((600, 100, 5), (2600, 900, 21))  # level 0; level 3 ends (x 325) before x_start
LEVELS = 4
CUTOUT = re.compile(r"/v1/cutout/[\w-]+/[\w-]+/[\w-]+/(\d)/(\d+):(\d+)/(\d+):(\d+)/(\d+):(\d+)/")


class Recording(requests.Session):
    """A session that notes every URL it sends."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = urls

    def request(self, method, url, *args, **kwargs):
        self.urls.append(url)
        return super().request(method, url, *args, **kwargs)


def cutout_starts(urls: list[str]) -> list[tuple[int, tuple[int, int, int]]]:
    """(res, start) of every cutout URL."""
    found = [CUTOUT.search(u) for u in urls]
    return [(int(m[1]), (int(m[2]), int(m[4]), int(m[6]))) for m in found if m]


def offset_channel(server, hierarchy: str, base_resolution: int = 0):
    """A channel on FRAME with random data over its base level, downsampled (when base 0); returns (ref, data)."""
    tag = uuid.uuid4().hex[:8]
    ref = ChannelRef(f"off{tag}", "exp", "img")
    with BossClient(server.remote) as client:
        client.create_collection(ref.collection)
        client.create_coord_frame(f"cf{tag}", FRAME.x, FRAME.y, FRAME.z, voxel_size=(4.0, 4.0, 4.0 if
                                  hierarchy == "isotropic" else 40.0))
        client.create_experiment(ref.collection, ref.experiment, f"cf{tag}", num_hierarchy_levels=LEVELS,
                                 hierarchy_method=hierarchy)
        client.create_channel(ref, "image", "uint8", base_resolution=base_resolution)
        box = client.channel_info(ref).extent_at(base_resolution)
        data = np.random.default_rng(3).integers(1, 255, size=box.shape_zyx, dtype=np.uint8)
        client.post_cutout(ref, base_resolution, box, data)
        if base_resolution == 0:
            downsample(client, ref, poll=0.1, timeout=120)
    return ref, data


@pytest.mark.parametrize("hierarchy", ["isotropic", "anisotropic"])
def test_every_level_of_an_offset_frame_pulls_without_going_below_the_level0_start(ndex_server, hierarchy):
    ref, truth = offset_channel(ndex_server, hierarchy)
    rmt = BossRemote(ndex_server.intern_config())
    chan = rmt.get_channel(ref.channel, ref.collection, ref.experiment)
    urls: list[str] = []
    with BossClient(ndex_server.remote, session_factory=lambda: Recording(urls)) as client:
        info = client.channel_info(ref)
        for res in range(LEVELS - 1):
            got = pull_array(ref, res=res, client=client, options=TransferOptions(threads=2))
            extent = info.extent_at(res)
            assert extent.start == FRAME.start  # clamped, not FRAME.start // 2**res
            want = rmt.get_cutout(chan, res, list(extent.x), list(extent.y), list(extent.z))
            assert got.shape == extent.shape_zyx and np.array_equal(got, want) and got.any()
    assert np.array_equal(pull_array(ref, res=0, remote=ndex_server.remote), truth)
    starts = cutout_starts(urls)
    assert {res for res, _ in starts} == {0, 1, 2}
    assert all(s >= f for _, start in starts for s, f in zip(start, FRAME.start))


def test_ndpull_full_extent_at_res_1_and_a_level_that_ends_before_the_start(ndex_server, tmp_path, capsys):
    ref, _ = offset_channel(ndex_server, "anisotropic")
    argv = ["--url", ndex_server.url, "--token", ndex_server.token, "--collection", ref.collection,
            "--experiment", ref.experiment, "--channel", ref.channel, "-q", "--full_extent",
            "--outdir", str(tmp_path)]
    assert ndpull([*argv, "--res", "1", "--stack_filename", "r1.tif"]) == 0
    assert tifffile.imread(tmp_path / "r1.tif").shape == (16, 350, 700)  # z 5:21, y 100:450, x 600:1300
    assert ndpull([*argv, "--res", "3", "--stack_filename", "r3.tif"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "level-0 frame start" in err and "lower resolution" in err
    assert not (tmp_path / "r3.tif").exists()


def test_base_resolution_above_0_on_an_offset_frame_writes_and_reads_at_the_level0_start(ndex_server):
    ref, truth = offset_channel(ndex_server, "isotropic", base_resolution=1)
    urls: list[str] = []
    with BossClient(ndex_server.remote, session_factory=lambda: Recording(urls)) as client:
        got = pull_array(ref, res=1, client=client)
    assert np.array_equal(got, truth)
    starts = cutout_starts(urls)
    assert (1, FRAME.start) in starts
    assert all(res == 1 and all(s >= f for s, f in zip(start, FRAME.start)) for res, start in starts)
