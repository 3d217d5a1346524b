"""`ndex plan --probe` against a real `ndex serve`: what it reads and posts, and that the plan's estimates use
the rate it printed. No timing is asserted: rates are whatever this machine measures."""
from __future__ import annotations

import re
import socket
import uuid

import numpy as np
import pytest
import tifffile
from fixtures_server import make_channel

from ndex.cli.main import main
from ndex.client import BossClient, ChannelRef
from ndex.errors import ResourceNotFound
from ndex.geometry import Box
from ndex.jobs.spec import load_plan, read_job
from ndex.transfer.download import PullSpec
from ndex.transfer.options import TransferOptions
from ndex.transfer.probe import probe_pull

MB = r"([\d,]+\.\d) MB"
PULL_LINE = re.compile(rf"probe: fetched (\d+) blocks? \({MB}\) with (\d+) threads at {MB}/s -> ~{MB}/s per job")
PUSH_LINE = re.compile(rf"probe: read (\d+) slices \({MB}\) from the source at {MB}/s, posted (\d+) of (\d+) blocks "
                       rf"\({MB}\) at {MB}/s -> ~{MB}/s per job")
READ_ONLY_LINE = re.compile(rf"probe: read (\d+) slices \({MB}\) from the source at {MB}/s -> ~{MB}/s per job")
Z_OFFSET = 5  # BOSS z = file z + 5: the first slab of the first job is BOSS z 5:16, file z 0:11


def mb(text: str) -> float:
    return float(text.replace(",", "")) * 1e6


@pytest.fixture
def env(server_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NDEX_URL", server_app.url)
    monkeypatch.setenv("NDEX_TOKEN", server_app.token)
    return server_app


def pull_args(ch, *extra: str) -> list[str]:
    return ["plan", "pull", "--collection", ch.collection, "--experiment", ch.experiment, "--channel", ch.channel,
            "--outdir", "out", *extra]


def push_args(coll: str, exp: str, channel: str, *extra: str) -> list[str]:
    return ["plan", "push", "--collection", coll, "--experiment", exp, "--channel", channel, "--base_path", "slices",
            "--base_filename", "img_<p:4>", "--x_extent", "0", "600", "--y_extent", "0", "300", "--z_extent", "0",
            "40", "--forced_offsets", "0", "0", str(Z_OFFSET), "--datatype", "uint16", "--workers", "2", *extra]


def assert_estimates_use(rate: float, plan_dir: str, printed: str) -> None:
    """Every job's estimate is its bytes over the probed rate, and the totals name that rate as probed."""
    total = next(line for line in printed.splitlines() if line.startswith("total:"))
    assert total.endswith(f"at {rate / 1e6:,.1f} MB/s per job (probed)")
    for path in load_plan(plan_dir).jobs:
        job = read_job(path)
        # the plan prints the rate to 0.1 MB/s: the rate behind the estimates is within half of that
        assert abs(job.nbytes / job.seconds - rate) <= 0.05e6 * (1 + 1e-9)
    summary = load_plan(plan_dir).summary
    assert summary[0].startswith("probe: ") and summary[-1] == total  # plan.json records how it was found


def stored(server, ref: ChannelRef, box: Box, dtype: str) -> np.ndarray:
    with BossClient(server.remote, threads=2) as client:
        return client.get_cutout(ref, 0, box, dtype)


# --- pull --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def filled(server_app):
    """A 1024 x 1024 x 64 uint8 channel full of random voxels: 16 blocks of one 4 MiB cuboid."""
    ch = make_channel(server_app, datatype="uint8", extent=(1024, 1024, 64))
    data = np.random.default_rng(3).integers(1, 255, size=(64, 1024, 1024), dtype=np.uint8)
    ref = ChannelRef(ch.collection, ch.experiment, ch.channel)
    with BossClient(server_app.remote, threads=4) as client:
        for z in range(0, 64, 16):
            client.post_cutout(ref, 0, Box((0, 0, z), (1024, 1024, z + 16)), data[z:z + 16])
    return ch, ref


def test_pull_probe_fetches_the_first_blocks_and_the_estimates_use_its_rate(env, filled, capsys):
    ch, _ = filled
    assert main(pull_args(ch, "--full_extent", "--threads", "4", "--workers", "2", "--probe", "--format", "json",
                          "--plan_dir", "p")) == 0
    err = capsys.readouterr().err
    blocks, nbytes, threads, _, rate = PULL_LINE.search(err).groups()
    assert (int(blocks), mb(nbytes), int(threads)) == (8, mb(f"{8 * 4 * 2**20 / 1e6:,.1f}"), 4)
    assert_estimates_use(mb(rate), "p", err)


def test_pull_probe_reads_real_blocks_and_never_more_than_the_region(server_app, filled):
    _, ref = filled
    spec, options = PullSpec(ref=ref, output="numpy"), TransferOptions(threads=4)
    with BossClient(server_app.remote, threads=4) as client:
        info = client.channel_info(ref)
        for box, limit, count, nbytes in [
            (Box((0, 0, 0), (1024, 1024, 64)), 64 * 2**20, 8, 8 * 4 * 2**20),  # 8 blocks: the count limits
            (Box((0, 0, 0), (1024, 1024, 64)), 10 * 2**20, 2, 2 * 4 * 2**20),  # a third would pass the bytes
            (Box((100, 200, 3), (300, 260, 9)), 64 * 2**20, 1, 200 * 60 * 6),  # the whole region is one block
        ]:
            before = client.stats
            measured = probe_pull(client, spec, options, info, box, max_bytes=limit)
            after = client.stats
            assert after.requests - before.requests == count and after.retries == before.retries
            assert measured.steps[0].nbytes == nbytes and after.bytes_in > before.bytes_in
            assert measured.throughput == measured.steps[0].rate > 0


# --- push --------------------------------------------------------------------------------------------


def test_push_probe_posts_the_first_slab_voxel_for_voxel(env, tiff_volume, capsys):
    _, data = tiff_volume
    ch = make_channel(env, datatype="uint16", extent=(600, 300, 48))
    assert main(push_args(ch.collection, ch.experiment, ch.channel, "--probe", "--format", "json",
                          "--plan_dir", "p")) == 0
    err = capsys.readouterr().err
    slices, read_bytes, read_rate, posted, blocks, post_bytes, post_rate, rate = PUSH_LINE.search(err).groups()
    assert int(slices) == 16 - Z_OFFSET and mb(read_bytes) == mb(f"{data[:11].nbytes / 1e6:,.1f}")
    assert posted == blocks and int(blocks) > 0 and post_bytes == read_bytes  # random data: no all-zero block
    assert mb(rate) == min(mb(read_rate), mb(post_rate))
    assert_estimates_use(mb(rate), "p", err)
    held = stored(env, ChannelRef(ch.collection, ch.experiment, ch.channel), Box((0, 0, 0), (600, 300, 48)), "uint16")
    assert np.array_equal(held[Z_OFFSET:16], data[:16 - Z_OFFSET])  # the first job's first slab, as it posts it
    assert not held[:Z_OFFSET].any() and not held[16:].any()  # nothing else


@pytest.mark.parametrize("missing", ["channel", "collection"])
def test_push_probe_into_a_missing_channel_reads_the_source_only(env, tiff_volume, capsys, missing):
    ch = make_channel(env, datatype="uint16", extent=(600, 300, 48))
    names = ((ch.collection, ch.experiment, "later") if missing == "channel"
             else (f"none-{uuid.uuid4().hex[:8]}", "e", "ch"))
    assert main(push_args(*names, "--create_resources", "--probe", "--format", "json", "--plan_dir", "p")) == 0
    err = capsys.readouterr().err
    slices, _, read_rate, rate = READ_ONLY_LINE.search(err).groups()
    assert int(slices) == 16 - Z_OFFSET and rate == read_rate
    note = [line for line in err.splitlines() if "not probed" in line]
    assert note == [f"probe: the server side was not probed: channel {'/'.join(names)} does not exist yet "
                    "(the plan's create step makes it); the estimate is the source's read rate only"]
    assert_estimates_use(mb(rate), "p", err)
    with BossClient(env.remote, threads=1) as client, pytest.raises(ResourceNotFound):
        client.get_channel(ChannelRef(*names))  # the plan created nothing and posted nothing


def test_push_probe_of_an_all_zero_first_slab_posts_nothing_and_says_so(env, tmp_path, capsys):
    folder = tmp_path / "slices"
    folder.mkdir()
    data = np.zeros((40, 300, 600), np.uint16)
    data[20:] = 7
    for z, plane in enumerate(data):
        tifffile.imwrite(folder / f"img_{z:04d}.tif", plane)
    ch = make_channel(env, datatype="uint16", extent=(600, 300, 48))
    assert main(push_args(ch.collection, ch.experiment, ch.channel, "--probe")) == 0
    err = capsys.readouterr().err
    assert READ_ONLY_LINE.search(err)
    assert ("probe: the server side was not probed: every block of the first slab is all zero, and ndpush posts none"
            in err.splitlines())
    assert not stored(env, ChannelRef(ch.collection, ch.experiment, ch.channel), Box((0, 0, 0), (600, 300, 48)),
                      "uint16").any()


# --- errors: one line, an exit code, nothing written -----------------------------------------------


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_probe_and_throughput_together_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(push_args("c", "e", "ch", "--probe", "--throughput", "100MB/s", "--format", "json",
                          "--plan_dir", "p")) == 2
    assert "--probe" in one_error_line(capsys) and not (tmp_path / "p").exists()
    assert main(["plan", "pull", "--collection", "c", "--experiment", "e", "--channel", "ch", "--full_extent",
                 "--probe", "--throughput", "1GB/s"]) == 2
    assert "--throughput" in one_error_line(capsys)


@pytest.fixture
def dead_url():
    """A 127.0.0.1 port that is bound but never listens: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_probe_against_an_unreachable_server_is_one_line(tiff_volume, tmp_path, monkeypatch, capsys, dead_url,
                                                         client_sleeps):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NDEX_TOKEN", "t" * 40)
    host = dead_url.split("//")[1]
    assert main(push_args("c", "e", "ch", "--probe", "--url", dead_url, "--format", "json", "--plan_dir", "p")) == 3
    assert host in one_error_line(capsys) and not (tmp_path / "p").exists()
    assert main(["plan", "pull", "--collection", "c", "--experiment", "e", "--channel", "ch", "--full_extent",
                 "--probe", "--url", dead_url]) == 3
    assert host in one_error_line(capsys)
    assert len(client_sleeps) == 4  # each probe retried twice (recorded, not slept), then gave up


def test_push_probe_needs_a_token_and_a_plain_plan_does_not(tiff_volume, tmp_path, monkeypatch, capsys):
    for var in ("NDEX_TOKEN", "INTERN_TOKEN", "BOSS_TOKEN", "NDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(push_args("c", "e", "ch", "--probe", "--url", "http://127.0.0.1:1")) == 2
    assert "NDEX_TOKEN" in one_error_line(capsys)
    assert main(push_args("c", "e", "ch")) == 0  # without --probe a push plan never talks to a server
