"""--create_resources checks every value before it creates anything, and adds a channel to an existing
experiment on that experiment's frame without the voxel size and extents being restated."""
from __future__ import annotations

import uuid

import pytest
import requests
from push_helpers import REF, random_volume, write_slices

from ndex.cli import push as push_cli
from ndex.client import ChannelRef
from ndex.errors import UsageError
from ndex.geometry import Box
from ndex.transfer.resources import ResourceMismatch, ResourceSpec, ensure_resources

FRAME = Box((0, 0, 0), (2000, 1500, 100))


@pytest.mark.parametrize("voxel_size", [(-4, 4, 40), (4, 0, 40), (4, 4, float("nan")), (4, 4, float("inf"))])
def test_an_impossible_voxel_size_is_refused_before_anything_exists(voxel_size):
    with pytest.raises(UsageError, match=r"^voxel_size .*: give three positive numbers, x y z$"):
        ResourceSpec(REF, FRAME, voxel_size=voxel_size)


def test_an_unknown_voxel_unit_is_refused():
    with pytest.raises(UsageError, match="voxel_unit 'parsecs' is not one of nanometers"):
        ResourceSpec(REF, FRAME, voxel_unit="parsecs")


def test_a_mismatch_leaves_no_new_resource_behind(client):
    ann = ChannelRef("coll", "exp", "ann")
    ensure_resources(client, ResourceSpec(ann, FRAME, datatype="uint64", source_channel="em"))
    with pytest.raises(ResourceMismatch, match="sources"):
        ensure_resources(client, ResourceSpec(ann, FRAME, datatype="uint64", source_channel="em2"))
    assert "em2" not in client.list_channels("coll", "exp")  # not created before the check refused it


def test_a_frame_that_does_not_reach_the_data_names_the_end(client):
    ensure_resources(client, ResourceSpec(REF, FRAME, voxel_size=(4, 4, 40)))
    wider = ChannelRef("coll", "exp", "wider")
    with pytest.raises(ResourceMismatch, match=r"does not reach this push's x_stop 2100, z_stop 120"):
        ensure_resources(client, ResourceSpec(wider, Box((0, 0, 0), (2100, 1500, 120))))
    assert "wider" not in client.list_channels("coll", "exp")


def test_a_channel_joins_an_existing_experiment_on_its_frame(client):
    ensure_resources(client, ResourceSpec(REF, FRAME, voxel_size=(4, 4, 40), voxel_unit="micrometers"))
    second = ChannelRef("coll", "exp", "second")
    lines = ensure_resources(client, ResourceSpec(second, Box((0, 0, 10), (512, 512, 30)), datatype="uint16"))
    assert lines[1] == "coordinate frame coll_exp matches; experiment exp exists"
    frame = client.channel_info(second).frame
    assert frame.box == FRAME and frame.voxel_size == (4, 4, 40) and frame.voxel_unit == "micrometers"
    with pytest.raises(ResourceMismatch, match="x_voxel_size 4.0, but this push gives 5.0"):
        ensure_resources(client, ResourceSpec(ChannelRef("coll", "exp", "third"), FRAME, voxel_size=(5, 5, 40)))


def ndpush(server, tmp_path, *args: str) -> int:
    return push_cli.main(["--url", server.url, "--token", server.token, "-q", "--base_path", str(tmp_path / "img"),
                          "--base_filename", "img_<p:4>", "--log_dir", str(tmp_path), *args])


def collections(server) -> list[str]:
    answer = requests.get(f"{server.url}/v1/collection/", headers={"Authorization": f"Token {server.token}"},
                          timeout=30)
    return answer.json()["collections"]


def test_ndpush_with_a_negative_voxel_size_creates_nothing(tmp_path, server_app, capsys):
    write_slices(tmp_path / "img", random_volume((4, 32, 32), "uint8"))
    coll = f"neg-{uuid.uuid4().hex[:8]}"
    assert ndpush(server_app, tmp_path, "--collection", coll, "--experiment", "e", "--channel", "ch",
                  "--z_extent", "0", "4", "--voxel_size", "-4", "4", "40", "--create_resources") == 2
    assert capsys.readouterr().err.strip() == "error: --voxel_size -4 4 40: give three positive numbers, x y z"
    assert coll not in collections(server_app)


def test_ndpush_adds_a_channel_without_restating_the_frame(tmp_path, server_app, capsys):
    write_slices(tmp_path / "img", random_volume((40, 32, 32), "uint8"))
    coll = f"add-{uuid.uuid4().hex[:8]}"
    where = ["--collection", coll, "--experiment", "e"]
    assert ndpush(server_app, tmp_path, *where, "--channel", "em", "--z_extent", "0", "40",
                  "--voxel_size", "4", "4", "40", "--create_resources") == 0
    assert ndpush(server_app, tmp_path, *where, "--channel", "more", "--z_range", "0", "20",
                  "--create_resources") == 0, capsys.readouterr().err
    assert ndpush(server_app, tmp_path, *where, "--channel", "more", "--z_range", "0", "20") == 0


@pytest.mark.parametrize("given, missing", [
    ([], "--x_extent, --y_extent, --z_extent, --datatype"),
    (["--x_extent", "0", "64", "--y_extent", "0", "64", "--z_extent", "0", "8"], "--datatype"),
    (["--z_extent", "0", "8", "--datatype", "uint8"], "--x_extent, --y_extent"),
])
def test_create_resources_without_images_names_the_flags_it_lacks(tmp_path, server_app, capsys, given, missing):
    coll = f"miss-{uuid.uuid4().hex[:8]}"
    code = push_cli.main(["--url", server_app.url, "--token", server_app.token, "-q", "--collection", coll,
                          "--experiment", "e", "--channel", "ch", "--log_dir", str(tmp_path), *given,
                          "--create_resources"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (f"error: --create_resources needs {missing} (or the images to read "
                                               "them from: --base_path and --base_filename)")
    assert coll not in collections(server_app)
