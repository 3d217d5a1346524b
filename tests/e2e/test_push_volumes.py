"""ndpush from OME-Zarr, N5 and precomputed volumes into a real `ndex serve`, pulled back voxel-exact; the
resources --create_resources makes from their metadata; a 4D volume; a volume served over HTTP on
127.0.0.1; bad sources; and `ndex plan` cutting such a push into jobs that `ndex run` executes."""
from __future__ import annotations

import argparse
import functools
import http.server
import threading
import uuid

import numpy as np
import pytest
from fake_gcs import TOKEN as GCS_TOKEN
from fake_gcs import fake_gcs
from volume_files import write_bdv_n5, write_n5_multiscale, write_ome_zarr, write_precomputed

from ndex.cli import push as push_cli
from ndex.cli import verify as verify_cli
from ndex.cli.main import main as ndex_main
from ndex.client import BossClient, ChannelRef
from ndex.geometry import Box
from ndex.jobs.spec import DONE, load_plan, read_state

pytestmark = pytest.mark.slow

SHAPE = (21, 90, 530)  # z, y, x: crosses a 512 cuboid edge in x and a 16-slice slab in z


def volume(dtype, shape=SHAPE, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, np.iinfo(np.uint16).max, size=shape).astype(dtype)
    data[:, :, :40] = 0  # some all-zero blocks: skipped, and still read back as zeros
    return data


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"vol-{tag}", f"exp-{tag}"


def ndpush(server, *args: str) -> int:
    return push_cli.main(["--url", server.url, "--token", server.token, "-q", *args])


def stored(server, coll, exp, box: Box, dtype, chan="ch", time=None) -> np.ndarray:
    with BossClient(server.remote) as client:
        data = client.get_cutout(ChannelRef(coll, exp, chan), 0, box, dtype,
                                 time_range=None if time is None else (time, time + 1))
    return data if time is None else data[0]


def push_and_read(server, tmp_path, datasource, url, dtype, *extra) -> tuple[np.ndarray, str, str]:
    coll, exp = names()
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", datasource,
              "--source", url, "--log_dir", str(tmp_path / "logs"), "--verify", "all", *extra]
    assert ndpush(server, *common, "--create_resources") == 0
    assert ndpush(server, *common) == 0
    z, y, x = SHAPE
    return stored(server, coll, exp, Box((0, 0, 0), (x, y, z)), dtype), coll, exp


def ome_v2(path, data):
    write_ome_zarr(path, data, version=2, scale=(40, 4, 4), levels=2)
    return data


def ome_v3(path, data):
    write_ome_zarr(path, data, version=3, scale=(40, 4, 4), levels=2)
    return data


def n5_plain(path, data):
    write_n5_multiscale(path, data, [4, 4, 40], "nm")
    return data


def n5_bdv(path, data):
    write_bdv_n5(path, [[data]])
    return data


def precomputed(encoding):
    return lambda path, data: write_precomputed(path, data, encoding=encoding)


CASES = {  # name: (datasource, writer -> what its readers read back, dtype, extra flags)
    "ome-zarr-v2-0.4": ("zarr", ome_v2, np.uint16, ()),
    "ome-zarr-v3-0.5": ("zarr", ome_v3, np.uint8, ()),
    "n5-multiscale": ("n5", n5_plain, np.uint16, ()),
    "n5-bigdataviewer": ("n5", n5_bdv, np.uint8, ()),
    "precomputed-raw": ("precomputed", precomputed("raw"), np.uint16, ()),
    "precomputed-jpeg": ("precomputed", precomputed("jpeg"), np.uint8, ()),
    "precomputed-compressed-segmentation": ("precomputed", precomputed("compressed_segmentation"), np.uint64,
                                            ("--source_channel", "em")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_format_round_trips_voxel_exact(ndex_server, tmp_path, case):
    datasource, write, dtype, extra = CASES[case]
    data = volume(dtype)
    if dtype == np.uint64:
        data *= np.uint64(2**33 + 1)  # ids past 32 bits
    truth = write(tmp_path / "vol", data)  # jpeg is lossy: the truth is what tensorstore reads back
    got, _, _ = push_and_read(ndex_server, tmp_path, datasource, str(tmp_path / "vol"), dtype, *extra)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, truth)


def test_create_resources_takes_voxel_size_unit_and_offset_from_the_metadata(ndex_server, tmp_path):
    data = volume(np.uint8, (8, 40, 70))
    write_ome_zarr(tmp_path / "img.ome.zarr", data, scale=(0.5, 0.25, 0.25), unit="micrometer",
                   translation=(10.0, 25.0, 50.0), levels=2)
    coll, exp = names()
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "zarr",
              "--source", str(tmp_path / "img.ome.zarr"), "--log_dir", str(tmp_path)]
    assert ndpush(ndex_server, *common, "--create_resources") == 0
    assert ndpush(ndex_server, *common) == 0
    with BossClient(ndex_server.remote) as client:
        frame = client.get_coord_frame(f"{coll}_{exp}")
        offsets = client.get_metadata(coll, exp, key="offsets")
    assert (frame.x_voxel_size, frame.y_voxel_size, frame.z_voxel_size, frame.voxel_unit) == (
        0.25, 0.25, 0.5, "micrometers")
    assert (frame.box.start, frame.box.stop) == ((200, 100, 20), (270, 140, 28))  # translation / scale, in voxels
    assert offsets == "[200, 100, 20]"
    got = stored(ndex_server, coll, exp, Box((200, 100, 20), (270, 140, 28)), np.uint8)
    np.testing.assert_array_equal(got, data)
    where = ["--url", ndex_server.url, "--token", ndex_server.token, "-q", *common[:-2]]  # no --log_dir
    parser = argparse.ArgumentParser()
    verify_cli.configure(parser)
    assert verify_cli.run(parser.parse_args([*where, "--exact"])) == 0  # ndex verify places it as ndpush did
    # a level of the pyramid is its own volume: half the voxels, twice the voxel size, into a new experiment
    coll1, exp1 = names()
    level1 = ["--collection", coll1, "--experiment", exp1, "--channel", "ch", "--datasource", "zarr",
              "--source", str(tmp_path / "img.ome.zarr"), "--source_level", "1", "--log_dir", str(tmp_path),
              "--forced_offsets", "0", "0", "0"]
    assert ndpush(ndex_server, *level1, "--create_resources") == 0
    assert ndpush(ndex_server, *level1) == 0
    with BossClient(ndex_server.remote) as client:
        frame = client.get_coord_frame(f"{coll1}_{exp1}")
    assert (frame.x_voxel_size, frame.box.stop) == (0.5, (35, 20, 8))
    np.testing.assert_array_equal(stored(ndex_server, coll1, exp1, Box((0, 0, 0), (35, 20, 8)), np.uint8),
                                  data[:, ::2, ::2])


def test_a_4d_volume_fills_the_time_samples(ndex_server, tmp_path, capsys):
    data = volume(np.uint16, (3, 10, 40, 60))  # t, z, y, x
    write_ome_zarr(tmp_path / "t.ome.zarr", data, axes="tzyx")
    coll, exp = names()
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "zarr",
              "--source", str(tmp_path / "t.ome.zarr"), "--log_dir", str(tmp_path / "logs")]
    assert ndpush(ndex_server, *common, "--create_resources") == 0
    assert ndpush(ndex_server, *common) == 0
    with BossClient(ndex_server.remote) as client:
        assert client.get_experiment(coll, exp).num_time_samples == 3
    for t in range(3):
        np.testing.assert_array_equal(stored(ndex_server, coll, exp, Box((0, 0, 0), (60, 40, 10)), np.uint16, time=t),
                                      data[t])
        assert (tmp_path / "logs" / f"ingest_log_{coll}_{exp}_ch_t{t}.txt").exists()


def push_listed_channels(server, tmp_path, source: str, expected: list[np.ndarray]) -> None:
    """ndpush --channels_list_file (nuclei, membrane) from `source` in tmp_path, creating then pushing;
    each BOSS channel then holds its `expected` (z, y, x) volume."""
    (tmp_path / "chans.txt").write_text("nuclei\nmembrane\n")
    coll, exp = names()
    common = ["--collection", coll, "--experiment", exp, "--channels_list_file", str(tmp_path / "chans.txt"),
              "--datasource", "zarr", "--source", str(tmp_path / source), "--log_dir", str(tmp_path)]
    assert ndpush(server, *common, "--create_resources") == 0
    assert ndpush(server, *common) == 0
    for chan, want in zip(("nuclei", "membrane"), expected):
        z, y, x = want.shape
        np.testing.assert_array_equal(stored(server, coll, exp, Box((0, 0, 0), (x, y, z)), np.uint8, chan), want)


def test_channels_of_a_volume_go_into_the_listed_channels(ndex_server, tmp_path):
    data = volume(np.uint8, (2, 6, 30, 50))  # c, z, y, x
    write_ome_zarr(tmp_path / "c.ome.zarr", data, axes="czyx", labels=["dapi", "gfp"])
    push_listed_channels(ndex_server, tmp_path, "c.ome.zarr", [data[0], data[1]])


@pytest.mark.parametrize("listed", ["a\nb\nc\n", "nuclei\ndapi\n"])
def test_a_channel_list_that_does_not_match_the_volume_is_refused_before_anything_is_made(
        ndex_server, tmp_path, capsys, listed):
    """Three names for two channels, or a name that takes position 0 while another's label is dapi (channel 0
    too): either would put one source channel into two BOSS channels."""
    write_ome_zarr(tmp_path / "c.ome.zarr", volume(np.uint8, (2, 4, 16, 16)), axes="czyx", labels=["dapi", "gfp"])
    (tmp_path / "chans.txt").write_text(listed)
    coll, exp = names()
    capsys.readouterr()
    code = ndpush(ndex_server, "--collection", coll, "--experiment", exp, "--channels_list_file",
                  str(tmp_path / "chans.txt"), "--datasource", "zarr", "--source", str(tmp_path / "c.ome.zarr"),
                  "--log_dir", str(tmp_path), "--create_resources")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has 2 (dapi, gfp): list one BOSS channel per source channel" in err[0]
    with BossClient(ndex_server.remote) as client:
        assert coll not in client.list_collections()  # nothing was created


def test_ch_in_the_source_names_one_volume_per_channel(ndex_server, tmp_path):
    data = volume(np.uint8, (2, 1, 5, 20, 30))  # per channel a volume with a channel axis of its own (c = 1)
    for c, chan in enumerate(("nuclei", "membrane")):
        write_ome_zarr(tmp_path / f"{chan}.ome.zarr", data[c], axes="czyx")
    push_listed_channels(ndex_server, tmp_path, "<ch>.ome.zarr", [data[0, 0], data[1, 0]])


@pytest.fixture
def http_root(tmp_path):
    """tmp_path/www served read-only over HTTP on 127.0.0.1 (a free port)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per chunk request drowns failures
        pass


def test_a_volume_served_over_http(ndex_server, tmp_path, http_root):
    root, base = http_root
    data = volume(np.uint16)
    write_ome_zarr(root / "img.ome.zarr", data, version=3, scale=(40, 4, 4))
    got, _, _ = push_and_read(ndex_server, tmp_path, "zarr", f"{base}/img.ome.zarr", np.uint16)
    np.testing.assert_array_equal(got, data)


def test_an_ome_zarr_on_google_cloud_storage(ndex_server, tmp_path, monkeypatch):
    """gs://BUCKET/KEY through tensorstore's gcs driver, pointed at a loopback GCS JSON API: resources from the
    metadata, every voxel pushed, and only the image's own objects read."""
    data = volume(np.uint16)
    write_ome_zarr(tmp_path / "gcs" / "lab" / "brains" / "b1.ome.zarr", data, version=2, scale=(40, 4, 4), chunks=64)
    with fake_gcs(tmp_path / "gcs") as (endpoint, reads):
        monkeypatch.setenv("TENSORSTORE_GCS_HTTP_URL", endpoint)
        monkeypatch.setenv("GOOGLE_AUTH_TOKEN_FOR_TESTING", GCS_TOKEN)
        got, coll, exp = push_and_read(ndex_server, tmp_path, "zarr", "gs://lab/brains/b1.ome.zarr", np.uint16)
    np.testing.assert_array_equal(got, data)
    with BossClient(ndex_server.remote) as client:
        assert tuple(client.channel_info(ChannelRef(coll, exp, "ch")).frame.voxel_size) == (4, 4, 40)
    assert reads["brains/b1.ome.zarr/.zattrs"] >= 1 and any(k.startswith("brains/b1.ome.zarr/0/") for k in reads)


@pytest.mark.parametrize("layout, flags, expected", [
    ("empty", ("--datasource", "precomputed"), "has no info file"),
    ("empty", ("--datasource", "zarr"), "has no zarr.json, .zattrs or .zarray"),
    ("ome", ("--datasource", "zarr", "--source_level", "3"), "--source_level 3 does not exist"),
    ("ome", ("--datasource", "zarr", "--datatype", "uint8"), "holds uint16 but the images are uint8"),
    ("float", ("--datasource", "zarr"), "holds float32 voxels, which no BOSS channel holds"),
])
def test_bad_sources_are_one_line_and_exit_2(ndex_server, tmp_path, capsys, layout, flags, expected):
    (tmp_path / "empty").mkdir()
    write_ome_zarr(tmp_path / "ome", volume(np.uint16, (4, 16, 16)), levels=2)
    write_ome_zarr(tmp_path / "float", np.ones((2, 8, 8), np.float32))
    coll, exp = names()
    if layout == "ome" and "--datatype" in flags:  # an existing uint16 channel that uint8 voxels would not fit
        assert ndpush(ndex_server, "--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource",
                      "zarr", "--source", str(tmp_path / "ome"), "--create_resources", "--log_dir", str(tmp_path)) == 0
    capsys.readouterr()
    code = ndpush(ndex_server, "--collection", coll, "--experiment", exp, "--channel", "ch", "--source",
                  str(tmp_path / layout), "--log_dir", str(tmp_path), *flags)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and expected in err[0]


def test_dry_run_describes_the_volume_level_and_time_point(ndex_server, tmp_path, capsys):
    write_ome_zarr(tmp_path / "t.ome.zarr", volume(np.uint8, (2, 4, 40, 60)), axes="tzyx", levels=2)
    coll, exp = names()
    common = ["--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "zarr", "--source",
              str(tmp_path / "t.ome.zarr"), "--source_level", "1", "--time_range", "1", "2", "--log_dir", str(tmp_path)]
    assert ndpush(ndex_server, *common, "--create_resources") == 0
    capsys.readouterr()
    assert ndpush(ndex_server, *common, "--dry_run") == 0
    out = capsys.readouterr().out
    assert "source    OME-Zarr 0.5" in out and "level 1 ('1') z 0:4 of 4 (30x20 uint8, t 1 of 2)" in out


def test_volume_flags_without_a_volume_datasource_are_one_line(ndex_server, tmp_path, capsys):
    write_ome_zarr(tmp_path / "img.ome.zarr", volume(np.uint8, (2, 8, 8)))
    code = ndpush(ndex_server, "--collection", "c", "--experiment", "e", "--channel", "ch", "--source",
                  str(tmp_path / "img.ome.zarr"), "--log_dir", str(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --source read volumes: add --datasource zarr, n5 or precomputed"]


def test_ndex_plan_cuts_a_volume_push_into_jobs_that_ndex_run_executes(ndex_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NDEX_URL", ndex_server.url)
    monkeypatch.setenv("NDEX_TOKEN", ndex_server.token)
    data = volume(np.uint16, (40, 50, 70))
    write_ome_zarr(tmp_path / "img.ome.zarr", data, scale=(40, 4, 4), translation=(200, 0, 0))  # z offset 5
    coll, exp = names()
    args = ["plan", "push", "--collection", coll, "--experiment", exp, "--channel", "ch", "--datasource", "zarr",
            "--source", "img.ome.zarr", "--create_resources", "--threads", "2", "--jobs", "3", "--plan_dir", "plan"]
    assert ndex_main([*args, "--format", "json"]) == 0
    files = load_plan(tmp_path / "plan")
    assert len(files.jobs) == 3
    assert ndex_main(["run", str(files.create)]) == 0
    for job in files.jobs:
        assert ndex_main(["run", str(job)]) == 0
        assert read_state(job).state == DONE
    np.testing.assert_array_equal(stored(ndex_server, coll, exp, Box((0, 0, 5), (70, 50, 45)), np.uint16), data)
