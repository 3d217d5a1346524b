"""ndpush end to end against a real `ndex serve` (in-process app on a loopback port), read back with intern."""
from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest
import tifffile
from intern.remote.boss import BossRemote
from push_helpers import random_volume, write_slices

from ndex.cli import push as push_cli
from ndex.cli import verify as verify_cli


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"coll-{tag}", f"exp-{tag}"


def ndpush(server, *args: str) -> int:
    return push_cli.main(["--url", server.url, "--token", server.token, "-q", *args])


def read_back(server, coll, exp, chan, x, y, z) -> np.ndarray:
    rmt = BossRemote(server.intern_config())
    return rmt.get_cutout(rmt.get_channel(chan, coll, exp), 0, list(x), list(y), list(z))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint64"])
def test_create_then_push_then_intern_reads_the_same_voxels(tmp_path, server_app, capsys, dtype):
    coll, exp = names()
    vol = random_volume((21, 150, 530), dtype, zero_fraction=0.2)  # not cuboid-aligned in any axis
    write_slices(tmp_path / "img", vol)
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datatype", dtype,
              "--base_path", str(tmp_path / "img"), "--base_filename", "img_<p:4>", "--extension", "tif",
              "--x_extent", "0", "530", "--y_extent", "0", "150", "--z_extent", "0", "21",
              "--log_dir", str(tmp_path / "logs"), "--verify", "all"]
    if dtype == "uint64":
        common += ["--source_channel", "em"]
    assert ndpush(server_app, *common, "--create_resources", "--voxel_size", "4", "4", "40") == 0
    assert ndpush(server_app, *common) == 0
    out = capsys.readouterr().out
    posted = re.search(r"push: 21 slices read, (\d+) blocks posted, 0 empty skipped, 0 done earlier, 0 failed", out)
    assert posted and f"verified {posted.group(1)} blocks, 0 mismatches" in out
    np.testing.assert_array_equal(read_back(server_app, coll, exp, "ch", (0, 530), (0, 150), (0, 21)), vol)
    log = (tmp_path / "logs" / f"ingest_log_{coll}_{exp}_ch.txt").read_text()
    assert "push: 21 slices read" in log and server_app.token not in log
    assert (tmp_path / "logs" / f"ingest_log_{coll}_{exp}_ch.txt.manifest.sqlite").exists()


def test_offsets_place_data_and_are_stored_as_metadata(tmp_path, server_app):
    coll, exp = names()
    vol = random_volume((10, 40, 60), "uint8")
    write_slices(tmp_path / "img", vol)
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datatype", "uint8",
              "--base_path", str(tmp_path / "img"), "--base_filename", "img_<p:4>",
              "--x_extent", "-20", "40", "--y_extent", "0", "40", "--z_extent", "0", "10",
              "--offset_extents", "--log_dir", str(tmp_path)]
    assert ndpush(server_app, *common, "--create_resources") == 0
    assert ndpush(server_app, *common) == 0
    rmt = BossRemote(server_app.intern_config())
    frame = rmt.get_coordinate_frame(f"{coll}_{exp}")
    assert (frame.x_start, frame.x_stop, frame.z_stop) == (0, 60, 10)
    experiment = rmt.get_experiment(coll, exp)
    assert rmt.get_metadata(experiment, ["offsets"]) == {"offsets": "[20, 0, 0]"}
    np.testing.assert_array_equal(read_back(server_app, coll, exp, "ch", (0, 60), (0, 40), (0, 10)), vol)


def test_negative_extent_without_offsets_is_one_clear_line(tmp_path, server_app, capsys):
    coll, exp = names()
    write_slices(tmp_path / "img", random_volume((2, 8, 8)))
    code = ndpush(server_app, "--collection", coll, "--experiment", exp, "--channel", "ch", "--create_resources",
                  "--base_path", str(tmp_path / "img"), "--base_filename", "img_<p:4>", "--x_extent", "-8", "0",
                  "--y_extent", "0", "8", "--z_extent", "0", "2", "--log_dir", str(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "--offset_extents" in err[-1] and err[-1].startswith("error:")


def test_channels_list_file_runs_one_job_per_channel(tmp_path, server_app):
    coll, exp = names()
    vols = {name: random_volume((5, 30, 40), "uint16", seed=i) for i, name in enumerate(["red", "green"])}
    for name, vol in vols.items():
        write_slices(tmp_path / name, vol)
    (tmp_path / "chans.txt").write_text("red\ngreen\n")
    common = ["--collection", coll, "--experiment", exp, "--channels_list_file", str(tmp_path / "chans.txt"),
              "--base_path", str(tmp_path / "<ch>"), "--base_filename", "img_<p:4>", "--datatype", "uint16",
              "--x_extent", "0", "40", "--y_extent", "0", "30", "--z_extent", "0", "5", "--log_dir", str(tmp_path)]
    assert ndpush(server_app, *common, "--create_resources") == 0
    assert ndpush(server_app, *common) == 0
    for name, vol in vols.items():
        np.testing.assert_array_equal(read_back(server_app, coll, exp, name, (0, 40), (0, 30), (0, 5)), vol)
        assert (tmp_path / f"ingest_log_{coll}_{exp}_{name}.txt").exists()


def test_tiff_stack_is_read_directly(tmp_path, server_app):
    coll, exp = names()
    vol = random_volume((18, 33, 45), "uint8")
    tifffile.imwrite(tmp_path / "stack.tif", vol)
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "stack",
              "--base_path", str(tmp_path / "stack.tif"), "--log_dir", str(tmp_path)]
    assert ndpush(server_app, *common, "--create_resources", "--z_extent", "0", "18") == 0
    assert ndpush(server_app, *common) == 0
    np.testing.assert_array_equal(read_back(server_app, coll, exp, "ch", (0, 45), (0, 33), (0, 18)), vol)


@pytest.mark.parametrize("bucket, where", [
    ("slices", ["--s3_bucket_name", "slices", "--base_path", "data"]),
    ("slices-in-url", ["--base_path", "s3://slices-in-url/data"]),  # ndex 1.x needed --s3_bucket_name; not any more
])
def test_s3_slices(tmp_path, server_app, s3_env, bucket, where):
    import boto3

    coll, exp = names()
    vol = random_volume((6, 20, 30), "uint16")
    s3 = boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for z, plane in enumerate(vol):
        path = tmp_path / "p.tif"
        tifffile.imwrite(path, plane)
        s3.put_object(Bucket=bucket, Key=f"data/img_{z:04d}.tif", Body=path.read_bytes())
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "s3",
              *where, "--base_filename", "img_<p:4>",
              "--x_extent", "0", "30", "--y_extent", "0", "20", "--z_extent", "0", "6", "--log_dir", str(tmp_path)]
    assert ndpush(server_app, *common, "--create_resources", "--datatype", "uint16") == 0
    assert ndpush(server_app, *common) == 0
    np.testing.assert_array_equal(read_back(server_app, coll, exp, "ch", (0, 30), (0, 20), (0, 6)), vol)


def test_render_stack_with_window_to_8_bit(tmp_path, server_app, render_server):
    coll, exp = names()
    fake = render_server
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "render",
              "--render_baseURL", fake.base_url, "--render_owner", fake.owner, "--render_project", fake.project,
              "--render_stack", fake.stack, "--datatype", "uint8", "--log_dir", str(tmp_path),
              "--offset_extents"]
    assert ndpush(server_app, *common, "--create_resources") == 0
    assert ndpush(server_app, *common) == 0
    (x0, y0, z0), (nz, ny, nx) = fake.origin, fake.volume.shape
    got = read_back(server_app, coll, exp, "ch", (x0, x0 + nx), (y0, y0 + ny), (z0, z0 + nz))
    np.testing.assert_array_equal(got, (fake.volume >> 8).astype(np.uint8))


def test_existing_channel_of_another_datatype_stops_before_posting(tmp_path, server_app, capsys):
    coll, exp = names()
    write_slices(tmp_path / "img", random_volume((3, 16, 16), "uint16"))
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--base_path", str(tmp_path / "img"),
              "--base_filename", "img_<p:4>", "--x_extent", "0", "16", "--y_extent", "0", "16",
              "--z_extent", "0", "3", "--log_dir", str(tmp_path)]
    assert ndpush(server_app, *common, "--create_resources", "--datatype", "uint16") == 0
    capsys.readouterr()
    write_slices(tmp_path / "img", random_volume((3, 16, 16), "uint8"))
    assert ndpush(server_app, *common, "--create_resources", "--datatype", "uint8") == 2
    assert "exists with datatype uint16" in capsys.readouterr().err
    assert ndpush(server_app, *common) == 2
    assert "holds uint16 but the images are uint8" in capsys.readouterr().err
    assert not read_back(server_app, coll, exp, "ch", (0, 16), (0, 16), (0, 3)).any()


def test_dry_run_prints_the_plan_and_posts_nothing(tmp_path, server_app, capsys):
    coll, exp = names()
    write_slices(tmp_path / "img", random_volume((4, 16, 16)))
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--base_path", str(tmp_path / "img"),
              "--base_filename", "img_<p:4>", "--x_extent", "0", "16", "--y_extent", "0", "16",
              "--z_extent", "0", "4", "--log_dir", str(tmp_path)]
    assert ndpush(server_app, *common, "--create_resources") == 0
    capsys.readouterr()
    assert ndpush(server_app, *common, "--dry_run") == 0
    out = capsys.readouterr().out
    assert "memory    ~" in out and "blocks    1 cuboid-aligned" in out
    assert not read_back(server_app, coll, exp, "ch", (0, 16), (0, 16), (0, 4)).any()


def test_metadata_schema_failure_names_the_key_and_success_attaches(tmp_path, server_app, capsys):
    coll, exp = names()
    write_slices(tmp_path / "img", random_volume((2, 8, 8)))
    (tmp_path / "meta.json").write_text(json.dumps({"strain": "C57", "age": "young"}))
    (tmp_path / "schema.json").write_text(json.dumps({"properties": {"age": {"type": "number"}}}))
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--base_path", str(tmp_path / "img"),
              "--base_filename", "img_<p:4>", "--x_extent", "0", "8", "--y_extent", "0", "8", "--z_extent", "0", "2",
              "--log_dir", str(tmp_path), "--create_resources", "--metadata", str(tmp_path / "meta.json")]
    assert ndpush(server_app, *common, "--metadata_schema", str(tmp_path / "schema.json")) == 2
    assert "metadata key 'age'" in capsys.readouterr().err
    assert ndpush(server_app, *common) == 0
    rmt = BossRemote(server_app.intern_config())
    assert rmt.get_metadata(rmt.get_channel("ch", coll, exp), ["strain", "age"]) == {"strain": "C57", "age": "young"}


def test_ndex_verify_finds_tampered_voxels(tmp_path, server_app, capsys):
    coll, exp = names()
    vol = random_volume((8, 20, 20))
    write_slices(tmp_path / "img", vol)
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--base_path", str(tmp_path / "img"),
              "--base_filename", "img_<p:4>", "--x_extent", "0", "20", "--y_extent", "0", "20", "--z_extent", "0", "8"]
    assert ndpush(server_app, *common, "--create_resources", "--log_dir", str(tmp_path)) == 0
    assert ndpush(server_app, *common, "--log_dir", str(tmp_path)) == 0
    args = ["--url", server_app.url, "--token", server_app.token, "-q", *common]
    parser = __import__("argparse").ArgumentParser()
    verify_cli.configure(parser)
    assert verify_cli.run(parser.parse_args(args)) == 0
    rmt = BossRemote(server_app.intern_config())
    rmt.create_cutout(rmt.get_channel("ch", coll, exp), 0, [0, 1], [0, 1], [3, 4],
                      np.array([[[int(vol[3, 0, 0]) % 255 + 1]]], dtype=np.uint8))
    capsys.readouterr()
    assert verify_cli.run(parser.parse_args(args)) == 1
    captured = capsys.readouterr()
    assert "1 voxels differ" in captured.err and "0 match" in captured.out


def test_slack_hears_start_and_end_with_the_report(tmp_path, server_app, slack_server):
    coll, exp = names()
    write_slices(tmp_path / "img", random_volume((3, 8, 8)))
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--base_path", str(tmp_path / "img"),
              "--base_filename", "img_<p:4>", "--x_extent", "0", "8", "--y_extent", "0", "8", "--z_extent", "0", "3",
              "--log_dir", str(tmp_path), "--slack_webhook", slack_server.webhook_url]
    assert ndpush(server_app, *common, "--create_resources") == 0
    assert ndpush(server_app, *common) == 0
    texts = [m["text"] for m in slack_server.messages]
    assert texts[0].startswith(f"ndpush started: {coll}/{exp}/ch")
    assert f"ndpush {coll}/{exp}/ch finished" in texts[-1] and "push: 3 slices read" in texts[-1]
    assert "```" in texts[-1] and server_app.token not in "".join(texts)
