"""End to end: plans pushed into a real `ndex serve` by a local process pool and by a Dask cluster, checked
with intern; a failed job re-run alone; `ndex status`; a planned pull; the plan's memory equals the engines'."""
from __future__ import annotations

import argparse
import os
import shlex
import socket
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile
from intern.remote.boss import BossRemote

from ndex.cli.main import main
from ndex.client import BossClient, ChannelRef
from ndex.geometry import Box
from ndex.jobs.spec import DONE, load_plan, read_state

pytestmark = pytest.mark.slow

Z_OFFSET = 5  # BOSS z = file z + 5: job edges on the cuboid grid are not on multiples of 16 in file numbers


@pytest.fixture
def env(ndex_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # jobs run where the plan was made: relative paths stay valid
    monkeypatch.setenv("NDEX_URL", ndex_server.url)
    monkeypatch.setenv("NDEX_TOKEN", ndex_server.token)
    return ndex_server


def push_args(names: tuple[str, str], *extra: str) -> list[str]:
    coll, exp = names
    return ["plan", "push", "--collection", coll, "--experiment", exp, "--channel", "ch", "--base_path", "slices",
            "--base_filename", "img_<p:4>", "--extension", "tif", "--x_extent", "0", "600", "--y_extent", "0", "300",
            "--z_extent", "0", "40", "--forced_offsets", "0", "0", str(Z_OFFSET), "--datatype", "uint16",
            "--voxel_size", "4", "4", "40", "--create_resources", "--threads", "2", "--jobs", "3", "--workers", "2",
            *extra]


def unique_names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"plan-{tag}", f"exp-{tag}"


def stored(server, names) -> np.ndarray:
    rmt = BossRemote(server.intern_config())
    chan = rmt.get_channel("ch", *names)
    return rmt.get_cutout(chan, 0, [0, 600], [0, 300], [Z_OFFSET, Z_OFFSET + 40])


def test_run_local_then_rerun_only_the_failed_job(env, tiff_volume, capsys):
    folder, data = tiff_volume
    names = unique_names()
    hidden = folder / "img_0020.tif"  # in job 1 (file z 11:27 = BOSS z 16:32)
    hidden.rename(folder / "away.tif")
    args = push_args(names, "--run", "local", "--plan_dir", "plan", "--retries", "0")

    assert main(args) == 2  # a missing slice is bad input, as a bad one is
    out = capsys.readouterr().out
    assert "done    job_0" in out and "done    job_2" in out and "failed  job_1" in out
    files = load_plan("plan")
    assert [read_state(p).state for p in files.jobs] == [DONE, "failed", DONE]
    assert read_state(files.create).state == DONE
    assert main(["status", "plan"]) == 1
    status = capsys.readouterr().out
    assert "3 jobs: 2 done, 0 running, 1 failed, 0 pending" in status
    assert "job_1 z 16:32: failed" in status
    assert "img_0020.tif does not exist" in status  # the job's own first failure, not "exited with code 1"
    # each job kept its own log and resume manifest
    assert list((files.root / "logs" / "job_0").glob("ingest_log_*_11.txt"))
    assert list((files.root / "logs" / "job_2").glob("*.manifest.sqlite"))

    (folder / "away.tif").rename(hidden)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "running 1 of 3 jobs (2 done earlier)" in out
    assert "creating the resources" not in out  # the create step ran once, on the first run
    assert "done    job_1" in out and "job_0" not in out.split("running 1 of 3")[1].split("plan ")[0]
    assert main(["status", "plan"]) == 0
    assert "3 done" in capsys.readouterr().out
    np.testing.assert_array_equal(stored(env, names), data)


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        yield cluster


def test_run_on_a_dask_cluster(env, tiff_volume, dask_cluster, capsys):
    _, data = tiff_volume
    names = unique_names()
    address = dask_cluster.scheduler_address.replace("tcp://", "dask://")
    assert main(push_args(names, "--run", address, "--plan_dir", "dplan")) == 0
    out = capsys.readouterr().out
    assert out.count("done    job_") == 3
    np.testing.assert_array_equal(stored(env, names), data)


def test_unreachable_scheduler_is_one_line_and_nothing_starts(env, tiff_volume, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    names = unique_names()
    code = main(push_args(names, "--run", f"dask://127.0.0.1:{port}", "--plan_dir", "nplan", "--connect_timeout", "1"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1].startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert "no job was started" in err[-1]
    assert not os.path.exists("nplan")
    with BossClient(env.remote, threads=1) as client:
        assert names[0] not in client.list_collections()


def test_shell_plan_lines_are_the_jobs(env, tiff_volume, capsys):
    names = unique_names()
    assert main(push_args(names, "--memory_per_worker", "1GB")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    argvs = [shlex.split(line) for line in lines]
    assert argvs[0][0] == "ndpush" and "--create_resources" in argvs[0]
    ranges = [tuple(int(v) for v in a[a.index("--z_range") + 1:][:2]) for a in argvs[1:]]
    assert ranges == [(0, 11), (11, 27), (27, 40)]  # BOSS 5:16, 16:32, 32:45: edges on the cuboid grid
    assert all("--max_memory" in a and "--create_resources" not in a for a in argvs[1:])


def test_too_little_memory_is_refused_before_anything(env, tiff_volume, capsys):
    names = unique_names()
    assert main(push_args(names, "--memory_per_worker", "2MB", "--format", "json", "--plan_dir", "mplan")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "too small for one band of 16 slices: a transfer needs at least" in err
    assert not os.path.exists("mplan")


def test_planned_pull_and_footprints_match_the_engines(env, tiff_volume, capsys):
    from ndex.cli import pull as pull_cli
    from ndex.cli import push as push_cli
    from ndex.plan import pull_footprint, push_footprint
    from ndex.sources import open_source
    from ndex.transfer import download, upload

    folder, data = tiff_volume
    names = unique_names()
    assert main(push_args(names, "--run", "local", "--plan_dir", "pushed")) == 0
    capsys.readouterr()
    pull = ["plan", "pull", "--collection", names[0], "--experiment", names[1], "--channel", "ch",
            "--x", "0", "600", "--y", "0", "300", "--z", str(Z_OFFSET), str(Z_OFFSET + 40), "--outdir", "pulled",
            "--threads", "2", "--workers", "2", "--run", "local", "--plan_dir", "pulls"]
    assert main(pull) == 0
    slices = sorted(Path("pulled").glob("*.tif"))
    assert len(slices) == 40
    np.testing.assert_array_equal(np.stack([tifffile.imread(p) for p in slices]), data)

    ref = ChannelRef(names[0], names[1], "ch")
    with BossClient(env.remote, threads=1) as client:
        info = client.channel_info(ref)
        pulled = parsed(pull_cli, pull[2:])
        pspec, poptions = pull_cli.build_spec(pulled), pull_cli.build_options(pulled)
        box = Box((0, 0, Z_OFFSET), (600, 300, Z_OFFSET + 40))
        for memory in (None, 100 * 10**6):
            engine = download.make_plan(client, pspec, replace(poptions, max_memory=memory), info)
            planned = pull_footprint(pspec, poptions.with_memory_cap(memory), info, box)
            assert (planned.memory, planned.process_memory) == (engine.buffers_estimate, engine.memory_estimate)
        args = parsed(push_cli, push_args(names)[2:])
        source_spec = push_cli.source_spec(args, "ch")
        source = open_source(source_spec)
        try:
            spec = push_cli.push_spec(args, ref, source_spec, (0, 0, Z_OFFSET))
            options = push_cli.push_options(args, folder / "m.sqlite")
            engine = upload.make_plan(client, spec, options, source, info)
            xy = upload.source_box(source, (0, 0, Z_OFFSET))
            assert push_footprint(spec, options, xy, 2).memory == engine.memory_estimate
            assert push_footprint(spec, options, xy, 2).process_memory == engine.process_estimate
        finally:
            source.close()


def parsed(module, argv: list[str]) -> argparse.Namespace:
    """The command's own flags out of a plan argv (the planner's are left over)."""
    parser = argparse.ArgumentParser()
    module.configure(parser)
    return parser.parse_known_args(argv)[0]
