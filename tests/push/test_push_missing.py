"""What is missing, said in one line with its fix: a slice in the middle of a series (bad input, exit
code 2, in ndpush, `ndex plan --run` and `ndex run` alike), and a collection, experiment or channel
(ndpush and `ndex plan push` suggest --create_resources; ndpull and `ndex verify` only `ndex info`)."""
from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import pytest
from fixtures_server import make_channel
from push_helpers import random_volume, write_slices

from ndex.cli import pull as pull_cli
from ndex.cli import push as push_cli
from ndex.cli import verify as verify_cli
from ndex.cli.main import main as ndex_main

DEPTH, SIDE, GAP_Z = 24, 32, 12


def images(directory: Path, gap: bool = True) -> Path:
    write_slices(directory, random_volume((DEPTH, SIDE, SIDE), "uint8", seed=5))
    if gap:
        (directory / f"img_{GAP_Z:04d}.tif").unlink()
    return directory


def where(server, coll: str, exp: str, chan: str = "ch") -> list[str]:
    return ["--url", server.url, "--token", server.token, "--collection", coll, "--experiment", exp,
            "--channel", chan]


def source(folder: Path, logs: Path) -> list[str]:
    return ["--base_path", str(folder), "--base_filename", "img_<p:4>", "--x_extent", "0", str(SIDE),
            "--y_extent", "0", str(SIDE), "--z_extent", "0", str(DEPTH), "--datatype", "uint8",
            "-q", "--log_dir", str(logs)]


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- a missing slice -------------------------------------------------------------------------------


def test_a_missing_slice_is_bad_input_named_with_z_file_and_fix(tmp_path, server_app, capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    folder = images(tmp_path / "img")
    code = push_cli.main([*where(server_app, ch.collection, ch.experiment), *source(folder, tmp_path / "logs")])
    assert code == 2
    line = one_error(capsys)
    assert line.startswith(f"error: slice z={GAP_Z}: {folder / f'img_{GAP_Z:04d}.tif'} does not exist")
    assert "--z_range" in line and "--warn_missing_files" in line


def test_under_plan_run_and_ndex_run_a_missing_slice_is_exit_code_2_not_retried(tmp_path, server_app, capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    args = [*where(server_app, ch.collection, ch.experiment), *source(images(tmp_path / "img"), tmp_path / "logs")]
    plan = tmp_path / "plan"
    code = ndex_main(["plan", "push", *args, "--jobs", "1", "--workers", "1", "--run", "local", "--retries", "2",
                      "--plan_dir", str(plan)])
    assert code == 2
    states = [json.loads(p.read_text()) for p in (plan / "jobs").glob("*.state.json")]
    assert [(s["state"], s["attempts"], s["exit_code"]) for s in states] == [("failed", 1, 2)]
    capsys.readouterr()
    (job,) = (plan / "jobs").glob("job_*[0-9].json")
    assert ndex_main(["run", str(job), "--force"]) == 2
    assert f"slice z={GAP_Z}:" in capsys.readouterr().err


# --- a missing collection, experiment or channel ---------------------------------------------------


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def test_ndpush_names_the_missing_part_and_suggests_create_resources(tmp_path, server_app, capsys, unique):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    folder = images(tmp_path / "img", gap=False)
    for coll, exp, words in ((f"c-{unique}", "e", f"collection c-{unique} does not exist"),
                             (ch.collection, f"e-{unique}", f"experiment {ch.collection}/e-{unique} does not exist")):
        assert push_cli.main([*where(server_app, coll, exp), *source(folder, tmp_path / "logs")]) == 3
        line = one_error(capsys)
        assert words in line and "--create_resources creates it" in line and "`ndex info" in line
        assert "coordinate frame" not in line


def test_a_missing_channel_is_created_in_the_experiments_frame_as_the_line_says(tmp_path, server_app, capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    folder = images(tmp_path / "img", gap=False)
    args = [*where(server_app, ch.collection, ch.experiment, "new"), *source(folder, tmp_path / "logs")]
    assert push_cli.main(args) == 3
    line = one_error(capsys)
    assert f"channel {ch.collection}/{ch.experiment}/new does not exist" in line
    assert "--create_resources creates it" in line and "coordinate frame (no --voxel_size" in line
    assert push_cli.main([*args, "--create_resources"]) == 0  # no voxel size given: the frame's is reused
    assert push_cli.main(args) == 0


def test_ndpull_and_verify_suggest_ndex_info_and_never_creating(tmp_path, server_app, capsys, unique):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    region = ["--x", "0", "8", "--y", "0", "8", "--z", "0", "1", "--outdir", str(tmp_path / "out")]
    assert pull_cli.main([*where(server_app, ch.collection, f"e-{unique}"), *region]) == 3
    line = one_error(capsys)
    assert f"experiment {ch.collection}/e-{unique} does not exist: check --experiment (`ndex info " \
           f"{ch.collection}` lists its experiments)" in line and "create" not in line
    parser = argparse.ArgumentParser()
    verify_cli.configure(parser)
    args = parser.parse_args([*where(server_app, ch.collection, ch.experiment, "new"),
                              *source(images(tmp_path / "img", gap=False), tmp_path / "logs")][:-3])
    assert verify_cli.run(args) == 3
    line = one_error(capsys)
    assert f"channel {ch.collection}/{ch.experiment}/new does not exist: check --channel" in line
    assert "create" not in line


def test_plan_push_run_into_a_missing_channel_suggests_create_resources(tmp_path, server_app, capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    args = [*where(server_app, ch.collection, ch.experiment, "new"),
            *source(images(tmp_path / "img", gap=False), tmp_path / "logs")]
    assert ndex_main(["plan", "push", *args, "--run", "local", "--plan_dir", str(tmp_path / "plan")]) == 3
    err = capsys.readouterr().err
    assert "channel" in err and "does not exist: the same command with --create_resources creates it" in err
    assert not (tmp_path / "plan").exists()  # refused before a plan exists


def test_ndex_run_of_a_planned_push_into_a_missing_channel_says_how_to_plan_its_creation(tmp_path, server_app,
                                                                                          capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    args = [*where(server_app, ch.collection, ch.experiment, "new"),
            *source(images(tmp_path / "img", gap=False), tmp_path / "logs")]
    plan = tmp_path / "plan"
    assert ndex_main(["plan", "push", *args, "--format", "json", "--plan_dir", str(plan)]) == 0
    capsys.readouterr()
    (job,) = (plan / "jobs").glob("job_*[0-9].json")
    assert ndex_main(["run", str(job)]) == 3
    assert "does not exist: `ndex plan push ... --create_resources` plans its creation" in capsys.readouterr().err


def test_ndpull_print_metadata_and_plan_pull_name_the_missing_channel(tmp_path, server_app, capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    names = where(server_app, ch.collection, ch.experiment, "new")
    assert pull_cli.main([*names, "--print_metadata"]) == 3
    line = one_error(capsys)
    assert f"channel {ch.collection}/{ch.experiment}/new does not exist: check --channel" in line
    assert ndex_main(["plan", "pull", *names, "--full_extent", "--run", "local",
                      "--plan_dir", str(tmp_path / "plan")]) == 3
    err = capsys.readouterr().err
    assert "does not exist: check --channel" in err and "create" not in err



def test_ndex_verify_stops_at_a_missing_slice_with_the_same_line(tmp_path, server_app, capsys):
    ch = make_channel(server_app, extent=(SIDE, SIDE, DEPTH))
    parser = argparse.ArgumentParser()
    verify_cli.configure(parser)
    folder = images(tmp_path / "img")
    args = parser.parse_args([*where(server_app, ch.collection, ch.experiment), *source(folder, tmp_path)][:-2])
    assert verify_cli.run(args) == 2
    assert one_error(capsys).startswith(f"error: slice z={GAP_Z}: {folder / f'img_{GAP_Z:04d}.tif'} does not exist")
