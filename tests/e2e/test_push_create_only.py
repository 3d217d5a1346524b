"""`ndpush --create_resources` with extents, voxel size and datatype needs no image files."""
import uuid

from ndex.cli.push import main as ndpush
from ndex.client import BossClient, ChannelRef


def test_create_resources_from_flags_alone(ndex_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    coll = f"create{uuid.uuid4().hex[:8]}"
    argv = ["--url", ndex_server.url, "--token", ndex_server.token, "--collection", coll, "--experiment", "em",
            "--channel", "raw", "--create_resources", "--x_extent", "0", "900", "--y_extent", "0", "600",
            "--z_extent", "0", "40", "--voxel_size", "4", "4", "40", "--voxel_unit", "nanometers",
            "--datatype", "uint16"]
    assert ndpush(argv) == 0
    assert ndpush(argv) == 0  # a second run checks and finds everything as asked
    with BossClient(ndex_server.remote) as client:
        info = client.channel_info(ChannelRef(coll, "em", "raw"))
    assert info.channel.datatype == "uint16" and info.frame.box.shape == (900, 600, 40)
    assert info.frame.voxel_size == (4.0, 4.0, 40.0)
    mismatch = [*argv[:-1], "uint8"]
    assert ndpush(mismatch) == 2
    assert "uint8" in capsys.readouterr().err
