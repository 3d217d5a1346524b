"""ndpull end to end: the real CLI against a real `ndex serve`, data written by intern (the reference client)."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import tensorstore as ts
import tifffile
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import (
    ChannelResource,
    CollectionResource,
    CoordinateFrameResource,
    ExperimentResource,
)

from ndex.cli.pull import main as ndpull

SHAPE = (1100, 700, 40)  # x, y, z


@pytest.fixture(scope="module")
def volume(ndex_server):
    """A collection with uint8/uint16/uint64 channels and a 3-sample time series, written by intern."""
    rmt = BossRemote(ndex_server.intern_config())
    coll = f"pull{uuid.uuid4().hex[:8]}"
    rmt.create_project(CollectionResource(coll))
    rmt.create_project(CoordinateFrameResource(f"{coll}_frame", "", 0, SHAPE[0], 0, SHAPE[1], 0, SHAPE[2],
                                               4, 4, 40, "nanometers"))
    rmt.create_project(ExperimentResource("exp", coll, f"{coll}_frame", hierarchy_method="anisotropic",
                                          num_hierarchy_levels=3, num_time_samples=3))
    rng = np.random.default_rng(7)
    data = {}
    for name, dtype, kind, sources in (("img8", "uint8", "image", []), ("img16", "uint16", "image", []),
                                       ("ann", "uint64", "annotation", ["img8"])):
        chan = rmt.create_project(ChannelResource(name, coll, "exp", kind, datatype=dtype, sources=sources))
        top = 2**16 if dtype == "uint64" else np.iinfo(dtype).max
        arr = rng.integers(1, top, size=SHAPE[::-1], dtype=dtype)
        rmt.create_cutout(chan, 0, [0, SHAPE[0]], [0, SHAPE[1]], [0, SHAPE[2]], arr)
        data[name] = arr
    chan = rmt.create_project(ChannelResource("series", coll, "exp", "image", datatype="uint8"))
    series = rng.integers(1, 255, size=(3, 20, 100, 130), dtype=np.uint8)
    rmt.create_cutout(chan, 0, [0, 130], [0, 100], [0, 20], series, time_range=[0, 3])
    data["series"] = series
    return coll, data


def args(server, coll, chan, *extra):
    return ["--url", server.url, "--token", server.token, "--collection", coll, "--experiment", "exp",
            "--channel", chan, "-q", *extra]


@pytest.mark.parametrize("chan", ["img8", "img16", "ann"])
def test_unaligned_region_to_tiff_slices_for_every_dtype(ndex_server, volume, tmp_path, chan):
    coll, data = volume
    code = ndpull(args(ndex_server, coll, chan, "--x", "37", "1061", "--y", "5", "690", "--z", "3", "38",
                       "--outdir", str(tmp_path), "--threads", "4"))
    assert code == 0
    files = sorted(tmp_path.glob("*.tif"))
    assert len(files) == 35 and files[0].name == f"{coll}_exp_{chan}_x37-1061_y5-690_z03.tif"
    for z, path in zip(range(3, 38), files):
        assert np.array_equal(tifffile.imread(path), data[chan][z, 5:690, 37:1061])


def test_aligned_full_extent_to_stack_ome_tiff_zarr_and_npy(ndex_server, volume, tmp_path):
    coll, data = volume
    truth = data["img16"]
    for name in ("vol.tif", "vol.ome.tif", "vol.ome.zarr", "vol.npy"):
        assert ndpull(args(ndex_server, coll, "img16", "--full_extent", "--outdir", str(tmp_path),
                           "--stack_filename", name)) == 0
    assert np.array_equal(tifffile.imread(tmp_path / "vol.tif"), truth)
    with tifffile.TiffFile(tmp_path / "vol.ome.tif") as tif:
        assert np.array_equal(tif.asarray(), truth)
        assert 'PhysicalSizeX="4.0"' in tif.ome_metadata and 'PhysicalSizeZ="40.0"' in tif.ome_metadata
    zarr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "vol.ome.zarr" / "0")}}).result()
    assert np.array_equal(zarr.read().result(), truth)
    assert np.array_equal(np.load(tmp_path / "vol.npy"), truth)
    assert not list(tmp_path.glob("*.partial"))


def test_time_series_writes_one_set_per_time_point(ndex_server, volume, tmp_path):
    coll, data = volume
    assert ndpull(args(ndex_server, coll, "series", "--x", "10", "120", "--y", "0", "100", "--z", "2", "19",
                       "--t", "1", "3", "--outdir", str(tmp_path))) == 0
    files = sorted(tmp_path.glob("*.tif"))
    assert len(files) == 2 * 17
    for t in (1, 2):
        mine = sorted(f for f in files if f"_t{t}_" in f.name)
        assert len(mine) == 17
        assert np.array_equal(np.stack([tifffile.imread(f) for f in mine]), data["series"][t, 2:19, :, 10:120])


def test_downsampled_level_matches_what_intern_reads(ndex_server, volume, tmp_path):
    coll, _ = volume
    rmt = BossRemote(ndex_server.intern_config())
    from ndex.client import BossClient, ChannelRef
    ref = ChannelRef(coll, "exp", "img8")
    with BossClient(ndex_server.remote) as client:
        client.start_downsample(ref)
        deadline = time.monotonic() + 120
        while client.downsample_status(ref)["status"] != "DOWNSAMPLED":
            assert time.monotonic() < deadline, "downsample did not finish"
            time.sleep(0.2)
    assert ndpull(args(ndex_server, coll, "img8", "--res", "1", "--full_extent", "--outdir", str(tmp_path),
                       "--stack_filename", "r1.tif")) == 0
    got = tifffile.imread(tmp_path / "r1.tif")
    assert got.shape == (40, 350, 550)
    chan = rmt.get_channel("img8", coll, "exp")
    assert np.array_equal(got, rmt.get_cutout(chan, 1, [0, 550], [0, 350], [0, 40]))


@pytest.mark.parametrize("extra,code,text", [
    (("--x", "0", "2000", "--y", "0", "10", "--z", "0", "5"), 2, "x range 0:2000 lies outside"),
    (("--x", "9", "3", "--y", "0", "10", "--z", "0", "5"), 2, "empty or inverted"),
    (("--full_extent", "--res", "7"), 2, "resolution 7"),
    (("--full_extent", "--res", "1", "--channel", "img16"), 2, "downsample"),
    (("--x", "0", "10", "--y", "0", "10"), 2, "missing --z"),
    (("--full_extent", "--output", "numpy", "--stack_filename", "v.tif"), 2,
     "output numpy does not write 'v.tif' (a stack name): name it .npy or use output stack"),
    (("--full_extent", "--output", "stack", "--stack_filename", "v.ome.zarr"), 2,
     "output stack does not write 'v.ome.zarr' (a zarr name)"),
    (("--full_extent", "--stack_filename", "v.png"), 2, "--stack_filename 'v.png' has no known output suffix"),
    (("--full_extent", "--output", "numpy"), 2, "--output numpy writes one .npy file: give its name with"),
    (("--full_extent", "--output", "stack"), 2, "output stack writes one file: give its name with --stack_filename"),
])
def test_bad_requests_are_one_line_and_write_nothing(ndex_server, volume, tmp_path, capsys, extra, code, text):
    coll, _ = volume
    argv = args(ndex_server, coll, "img8", "--outdir", str(tmp_path / "out"))
    if "--channel" in extra:
        i = extra.index("--channel")
        argv[argv.index("img8")] = extra[i + 1]
        extra = extra[:i] + extra[i + 2:]
    assert ndpull([*argv, *extra]) == code
    err = capsys.readouterr().err.strip()
    assert text in err and len(err.splitlines()) == 1 and err.startswith("error:")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_channel_wrong_token_unreachable_and_missing_token(ndex_server, volume, tmp_path, capsys,
                                                                   monkeypatch, client_sleeps):
    coll, _ = volume
    box = ("--x", "0", "10", "--y", "0", "10", "--z", "0", "5", "--outdir", str(tmp_path))
    assert ndpull(args(ndex_server, coll, "nope", *box)) == 3
    assert f"channel {coll}/exp/nope does not exist: check --channel" in capsys.readouterr().err
    bad = args(ndex_server, coll, "img8", *box)
    bad[bad.index("--token") + 1] = "0" * 40
    assert ndpull(bad) == 3
    err = capsys.readouterr().err
    assert "401" in err and "0" * 40 not in err
    dead = args(ndex_server, coll, "img8", *box)
    dead[dead.index("--url") + 1] = "http://127.0.0.1:9"
    assert ndpull([*dead, "--threads", "1"]) == 3
    assert "127.0.0.1:9" in capsys.readouterr().err
    assert len(client_sleeps) == 6 and client_sleeps[-1] > client_sleeps[0]  # backed off, without waiting
    for var in ("NDEX_TOKEN", "INTERN_TOKEN", "BOSS_TOKEN", "NDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert ndpull(["--collection", coll, "--experiment", "exp", "--channel", "img8", *box]) == 2
    assert "NDEX_TOKEN" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tif"))


def test_print_metadata_and_dry_run_never_show_the_token(ndex_server, volume, capsys):
    coll, _ = volume
    assert ndpull(args(ndex_server, coll, "img16", "--print_metadata")) == 0
    out = capsys.readouterr().out
    meta = json.loads(out)
    assert meta["channel"]["datatype"] == "uint16" and ndex_server.token not in out
    assert ndpull(args(ndex_server, coll, "img16", "--full_extent", "--dry_run")) == 0
    out = capsys.readouterr().out
    assert "blocks" in out and "memory" in out and ndex_server.token not in out


def test_killed_pull_resumes_without_refetching_finished_slices(ndex_server, volume, tmp_path):
    coll, data = volume
    argv = [sys.executable, "-m", "ndex.cli.pull", *args(ndex_server, coll, "img16", "--full_extent",
                                                          "--outdir", str(tmp_path), "--threads", "1",
                                                          "--block_size", "1MiB")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("*.tif"))) < 16 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.tif")}
    assert 16 <= len(first) < 40, "the pull should have been killed part-way"
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = sorted(tmp_path.glob("*.tif"))
    assert len(files) == 40 and not list(tmp_path.glob("*.partial"))
    for name, mtime in first.items():
        assert (tmp_path / name).stat().st_mtime_ns == mtime  # finished slices were not written again
    for z, path in enumerate(files):
        assert np.array_equal(tifffile.imread(path), data["img16"][z])
