"""`ndex verify` of a 4D volume: each time point against the BOSS time sample ndpush wrote it to, so a
change in one time sample is found, and `--time_range` limits the check."""
from __future__ import annotations

import argparse
import uuid

import numpy as np
import pytest
from volume_files import write_ome_zarr

from ndex.cli import push as push_cli
from ndex.cli import verify as verify_cli
from ndex.client import BossClient, ChannelRef
from ndex.geometry import Box

SHAPE = (3, 6, 20, 30)  # t, z, y, x


@pytest.fixture
def pushed(server_app, tmp_path):
    """A 4D OME-Zarr pushed into a new channel: (verify arguments, channel, volume)."""
    data = np.random.default_rng(3).integers(1, 255, size=SHAPE, dtype=np.uint8)
    write_ome_zarr(tmp_path / "t.ome.zarr", data, axes="tzyx")
    tag = uuid.uuid4().hex[:8]
    ref = ChannelRef(f"v4-{tag}", f"e-{tag}", "ch")
    where = ["--url", server_app.url, "--token", server_app.token, "--collection", ref.collection,
             "--experiment", ref.experiment, "--channel", "ch", "--datasource", "zarr",
             "--source", str(tmp_path / "t.ome.zarr"), "-q"]
    logs = ["--log_dir", str(tmp_path / "logs")]
    assert push_cli.main([*where, *logs, "--create_resources"]) == 0
    assert push_cli.main([*where, *logs]) == 0
    return where, ref, data


def verify(where: list[str], *extra: str) -> int:
    parser = argparse.ArgumentParser()
    verify_cli.configure(parser)
    return verify_cli.run(parser.parse_args([*where, "--exact", *extra]))


def test_each_time_point_is_verified_against_its_time_sample(server_app, pushed, capsys):
    where, ref, data = pushed
    assert verify(where) == 0
    out = capsys.readouterr().out
    for t in range(SHAPE[0]):
        assert f"time point {t}: verify: {SHAPE[1]} slices read" in out and "0 differ or failed" in out
    changed = data[1].copy()
    changed[2, 5, 7] ^= 0xFF  # one voxel of time sample 1 only
    with BossClient(server_app.remote) as client:
        client.post_cutout(ref, 0, Box((0, 0, 0), SHAPE[:0:-1]), changed[np.newaxis], time_range=(1, 2))
    assert verify(where) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("time point")]
    assert [("1 differ or failed" in x) for x in lines] == [False, True, False]
    assert verify(where, "--time_range", "2", "3") == 0  # time sample 1 is not looked at
    assert [x[:12] for x in capsys.readouterr().out.splitlines()] == ["time point 2"]
