"""Both engines move slabs band by band within --max_memory, whatever the slice size, and their memory
estimates (what --dry_run and `ndex plan` print) match the peak RSS of a real run within 25%."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
from fixtures_server import make_channel
from inprocess_boss import started
from PIL import Image

from ndex.client import BossClient, ChannelRef
from ndex.errors import FieldError
from ndex.geometry import Box, plan_blocks
from ndex.sources import SourceSpec, open_source
from ndex.transfer.download import PullSpec, TransferOptions, make_plan, pull
from ndex.transfer.upload import PushSpec, push
from ndex.transfer.upload import make_plan as push_plan
from ndex.transfer.verify import verify_volume

REF = ChannelRef("coll", "exp", "chan")


@pytest.fixture
def boss(tmp_path_factory):
    yield from started(tmp_path_factory.mktemp("bands-boss"), store_cache_mb=1)


def noise(shape, dtype, seed=0):
    return np.random.default_rng(seed).integers(1, np.iinfo(dtype).max, size=shape, dtype=dtype)


@pytest.mark.parametrize("output", ["tif", "stack"])
def test_a_pull_in_bands_fits_the_cap_and_writes_every_voxel(boss, tmp_path, output):
    vol = noise((40, 1300, 1100), np.uint16)
    boss.make_channel(REF, "uint16", (1100, 1300, 40), voxel_size=(4.0, 4.0, 40.0))
    boss.store(REF, vol)
    client = boss.client(threads=2)
    box = Box((3, 100, 5), (1100, 1300, 40))  # starts off the cuboid grid in x, y and z
    spec = PullSpec(ref=REF, box=box, output=output, outdir=tmp_path,
                    stack_filename="v.tif" if output == "stack" else None)
    options = TransferOptions(threads=2, max_memory=120 * 10**6)
    plan = make_plan(client, spec, options)
    assert plan.band == (512, 1536) and len(plan.slabs) == 3 * 3  # 3 slabs of 3 cuboid rows
    assert plan.memory_estimate <= options.max_memory
    report = pull(spec, options, client=client)
    assert report.ok, report.failures
    back = (np.stack([tifffile.imread(p) for p in report.files]) if output == "tif"
            else tifffile.imread(report.files[0]))
    np.testing.assert_array_equal(back, vol[5:40, 100:1300, 3:1100])
    with pytest.raises(FieldError, match=r"^max_memory 80\.0 MB is too small for one band of 16 slices: a transfer "
                                         r"needs at least 86\.4 MB \(a 18\.0 MB band buffer, one 8\.4 MB block and "
                                         r"the 60\.0 MB interpreter\)"):
        make_plan(client, spec, TransferOptions(max_memory=80 * 10**6))


def test_very_wide_pulls_go_down_to_one_cuboid_per_band(boss, tmp_path):
    boss.make_channel(REF, "uint8", (33000, 40, 16))
    vol = noise((16, 40, 33000), np.uint8)
    boss.store(REF, vol)
    client = boss.client(threads=2)
    spec = PullSpec(ref=REF, outdir=tmp_path)
    plan = make_plan(client, spec, TransferOptions(threads=1, max_memory=69 * 10**6))
    assert plan.band == (512, 512) and len(plan.slabs) == 65
    report = pull(spec, TransferOptions(threads=1, max_memory=69 * 10**6), client=client)
    assert report.ok, report.failures
    for z in (0, 15):
        with tifffile.TiffFile(report.files[z]) as tif:
            assert tif.pages.first.is_tiled
            np.testing.assert_array_equal(tif.asarray(), vol[z])


@pytest.mark.parametrize("fmt", ["tiles", "png"])
def test_a_push_in_bands_fits_the_cap_and_posts_every_voxel(boss, tmp_path, fmt):
    vol = noise((20, 1300, 1100), np.uint8)
    for z, plane in enumerate(vol):
        if fmt == "png":
            Image.fromarray(plane).save(tmp_path / f"img_{z:04d}.png")
        else:
            tifffile.imwrite(tmp_path / f"img_{z:04d}.tif", plane, tile=(256, 256), compression="zlib")
    boss.make_channel(REF, "uint8", (1100, 1300, 20))
    source_spec = SourceSpec(base_path=str(tmp_path), base_filename="img_<p:4>", extension=fmt[:3].replace("til", "tif"),
                             z_range=(0, 20), read_threads=2)
    spec = PushSpec(REF, source_spec)
    options = TransferOptions(threads=2, max_memory=110 * 10**6, verify="all")
    client = boss.client(threads=2)
    source = open_source(source_spec)
    try:
        plan = push_plan(client, spec, options, source)
        assert plan.band[0] == 512 and len(plan.slabs) == 2 * 3 and plan.process_estimate <= options.max_memory
        assert plan.reads_parts == (fmt == "tiles")
        report = push(spec, options, client=client, source=source)
        checked = verify_volume(client, plan, source, strict=True)  # `ndex verify` reads the same bands back
    finally:
        source.close()
    assert report.ok and report.verified == report.blocks_done, report.failures
    assert checked.ok and checked.blocks_total == plan.nblocks, checked.failures
    np.testing.assert_array_equal(boss.volume(REF)[:20, :1300, :1100], vol)


# --- the estimate against a measured peak ----------------------------------------------------------

CHILD = """
import json, sys
from ndex.client import BossClient, ChannelRef
from ndex.config import Remote
from ndex.sources import SourceSpec, open_source
from ndex.transfer.download import PullSpec, TransferOptions, make_plan, pull
from ndex.transfer.upload import PushSpec, push, make_plan as push_plan

url, token, path, kind, outdir, memory = sys.argv[1:7]
remote = Remote("http", url.split("://")[1], token)
ref = ChannelRef.parse(path)
options = TransferOptions(threads=4, max_memory=int(memory), verify="none")
with BossClient(remote, threads=4) as client:
    if kind == "pull":
        spec = PullSpec(ref=ref, outdir=outdir)
        estimate = make_plan(client, spec, options).memory_estimate
        report = pull(spec, options, client=client)
    else:
        source_spec = SourceSpec(base_path=outdir, base_filename="img_<p:4>", extension="tif", z_range=(0, 32))
        spec = PushSpec(ref, source_spec)
        source = open_source(source_spec)
        estimate = push_plan(client, spec, options, source).process_estimate
        report = push(spec, options, client=client, source=source)
        source.close()
# VmHWM, the peak of this process's own memory: ru_maxrss would keep the forking parent's peak across exec
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024
print(json.dumps({"ok": report.ok, "estimate": estimate, "peak": peak}))
"""

SHAPE = (32, 2560, 3072)  # z, y, x uint16: 16-slice slabs of 252 MB, cut into bands by a 200 MB cap


def run_child(server, channel, kind, folder, memory) -> dict:
    args = [server.url, server.token, channel.path, kind, str(folder), str(memory)]
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_estimates_match_the_measured_peak_of_a_push_and_a_pull(server_app, tmp_path):
    channel = make_channel(server_app, datatype="uint16", extent=(SHAPE[2], SHAPE[1], SHAPE[0]))
    vol = noise(SHAPE, np.uint16, seed=4)
    slices = tmp_path / "slices"
    slices.mkdir()
    for z, plane in enumerate(vol):
        tifffile.imwrite(slices / f"img_{z:04d}.tif", plane, rowsperstrip=64)
    runs = {}
    for memory in (200 * 10**6, 600 * 10**6):  # one band of one cuboid row; whole slabs (pull), 2 bands (push)
        runs["push", memory] = run_child(server_app, channel, "push", slices, memory)
        runs["pull", memory] = run_child(server_app, channel, "pull", tmp_path / f"out{memory}", memory)
    for name, run in runs.items():
        assert run["ok"], name
        assert abs(run["estimate"] - run["peak"]) <= 0.25 * run["peak"], (name, run)
    with BossClient(server_app.remote, threads=2) as client:
        sample = Box((1000, 2000, 16), (1600, 2560, 32))
        ref = ChannelRef.parse(channel.path)
        got = np.concatenate([client.get_cutout(ref, 0, b, np.dtype("uint16")) for b in plan_blocks(sample, 2)][:1])
        first = plan_blocks(sample, 2)[0]
        np.testing.assert_array_equal(got, vol[first.z[0]:first.z[1], first.y[0]:first.y[1], first.x[0]:first.x[1]])
    np.testing.assert_array_equal(tifffile.imread(sorted((tmp_path / "out200000000").glob("*z31.tif"))[0]), vol[31])
