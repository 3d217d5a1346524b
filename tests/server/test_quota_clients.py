"""The quota path end to end: ndpull and ndpush against `ndex serve --quota_per_day`, whose 429 is BOSS's
own (no Retry-After, code 3004), end with one line and exit code 3 after one refused call per thread."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from boss_fixtures import boss_channel, own_server

from ndex.cli.pull import main as ndpull
from ndex.cli.push import main as ndpush

QUOTA = 4 * 512 * 512 * 16  # four cuboids of uint8 a day


@pytest.fixture()
def world(tmp_path):
    with own_server(tmp_path / "srv", users=(("ann", "resource-manager"),), quota_per_day=QUOTA) as w:
        yield w


def client_lines(capsys) -> list[str]:
    """What the command printed (the in-process server logs to the same stderr)."""
    return [line for line in capsys.readouterr().err.strip().splitlines() if "ndex.server" not in line]


def conn(handle, tc) -> list[str]:
    return ["--url", handle.url, "--token", handle.token, "--collection", tc.collection,
            "--experiment", tc.experiment, "--channel", tc.channel]


def test_ndpull_stops_at_the_spent_quota(world, tmp_path, capsys):
    ann = world.users["ann"]
    tc = boss_channel(ann, stop=(2048, 2048, 32))  # 32 cuboids: eight times the day's allowance
    code = ndpull([*conn(ann, tc), "-q", "--full_extent", "--outdir", str(tmp_path / "out"), "--threads", "2"])
    err = client_lines(capsys)
    assert code == 3, err
    assert len(err) == 1 and "quota" in err[0] and "Expected available tomorrow" in err[0]
    assert not list((tmp_path / "out").glob("*.tif"))  # the first slab never completed: nothing looks finished


def test_ndpush_stops_at_the_spent_quota(world, tmp_path, capsys):
    ann = world.users["ann"]
    tc = boss_channel(ann, stop=(2048, 1024, 32))
    src = tmp_path / "slices"
    src.mkdir()
    for z in range(32):
        tifffile.imwrite(src / f"img_{z:04d}.tif", np.full((1024, 2048), z + 1, np.uint8))
    code = ndpush([*conn(ann, tc), "-q", "--base_path", str(src), "--base_filename", "img_<p:4>",
                   "--extension", "tif", "--z_range", "0", "32", "--threads", "2", "--log_dir", str(tmp_path),
                   "--x_extent", "0", "2048", "--y_extent", "0", "1024", "--z_extent", "0", "32"])
    err = client_lines(capsys)
    assert code == 3, err
    assert len(err) == 1 and "quota" in err[0]
