"""ndpush against BOSS's rules that `ndex serve` alone would not show: x != y voxel sizes cannot be
downsampled on BOSS, uint32 channels exist, and a downsample is waited for with one final line."""
from __future__ import annotations

import uuid

import numpy as np
from push_helpers import random_volume, write_slices

from ndex.cli import push as push_cli
from ndex.client import BossClient, ChannelRef
from ndex.transfer.download import pull_array


def ndpush(server, *args: str) -> int:
    return push_cli.main(["--url", server.url, "--token", server.token, *args])


def common(tmp_path, dtype: str, shape_xyz) -> tuple[list[str], str, str]:
    tag = uuid.uuid4().hex[:8]
    coll, exp = f"coll-{tag}", f"exp-{tag}"
    argv = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datatype", dtype,
            "--base_path", str(tmp_path / "img"), "--base_filename", "img_<p:4>", "--extension", "tif",
            "--x_extent", "0", str(shape_xyz[0]), "--y_extent", "0", str(shape_xyz[1]),
            "--z_extent", "0", str(shape_xyz[2]), "--log_dir", str(tmp_path / "logs")]
    return argv, coll, exp


def test_x_unlike_y_is_noted_before_creating_and_downsample_is_refused_before_the_ingest(tmp_path, server_app,
                                                                                         capsys):
    write_slices(tmp_path / "img", random_volume((8, 40, 60), "uint8"))
    argv, coll, exp = common(tmp_path, "uint8", (60, 40, 8))
    assert ndpush(server_app, *argv, "--create_resources", "--voxel_size", "4", "5", "40") == 0
    err = capsys.readouterr().err
    note = err.index("note: BOSS cannot downsample an anisotropic hierarchy whose x and y voxel sizes differ (x 4, y 5)")
    assert note < err.index("created collection")
    assert ndpush(server_app, *argv, "--downsample") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: --downsample cannot work for")
    assert not (tmp_path / "logs" / f"ingest_log_{coll}_{exp}_ch.txt.manifest.sqlite").exists()  # nothing sent


def test_uint32_push_with_downsample_ends_with_one_line(tmp_path, server_app, capsys):
    vol = random_volume((16, 300, 700), "uint32")
    assert vol.max() > 2**16
    write_slices(tmp_path / "img", vol)
    argv, coll, exp = common(tmp_path, "uint32", (700, 300, 16))
    assert ndpush(server_app, *argv, "-q", "--create_resources", "--voxel_size", "4", "4", "40") == 0
    assert ndpush(server_app, *argv, "--downsample", "--downsample_timeout", "120", "--verify", "all") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"downsample of {coll}/{exp}/ch finished: DOWNSAMPLED (2 levels)"
    ref = ChannelRef(coll, exp, "ch")
    with BossClient(server_app.remote) as client:  # intern's ChannelResource refuses uint32, BOSS does not
        got = pull_array(ref, client=client)
        assert got.dtype == np.uint32 and np.array_equal(got, vol)
        assert client.pyramid_recorded(ref) and pull_array(ref, res=1, client=client).shape == (16, 150, 350)
