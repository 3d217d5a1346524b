"""The pull engine, the real client and the server app in-process: exact data, aligned blocks, bounded
memory, resume. Failures (5xx, 503s, dropped connections) are injected between the client and the app."""
import signal
import tracemalloc

import numpy as np
import pytest
import tifffile
from inprocess_boss import Boss, cutout_path, started

from ndex.client import ChannelRef
from ndex.errors import FieldError, OutOfBounds
from ndex.geometry import BOSS_CUBOID, Box
from ndex.sinks import open_sink
from ndex.transfer.download import OUTPUTS, PullSpec, TransferOptions, make_plan, pull, pull_array

REF = ChannelRef("coll", "exp", "chan")


@pytest.fixture
def boss(tmp_path_factory):
    """A server app of its own; a small chunk cache, so that its memory does not blur the pull's."""
    yield from started(tmp_path_factory.mktemp("pull-boss"), store_cache_mb=1)


def serve(boss: Boss, vol: np.ndarray):
    """`vol` ((t,) z, y, x) stored as channel REF, whose frame it fills; a fresh client for it."""
    four_d = vol.ndim == 4
    nt, nz, ny, nx = vol.shape if four_d else (1, *vol.shape)
    boss.make_channel(REF, vol.dtype.name, (nx, ny, nz), time_samples=nt, voxel_size=(4.0, 4.0, 40.0))
    boss.store(REF, vol, time_range=(0, nt) if four_d else None)
    return boss.client(threads=4)


def volume(shape=(40, 700, 1100), dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


def test_numpy_pull_of_an_unaligned_region_is_exact_and_every_block_aligned(boss):
    vol = volume()
    client = serve(boss, vol)
    box = Box((100, 37, 5), (1100, 650, 39))
    got = pull_array(REF, box, client=client, options=TransferOptions(threads=4, block_bytes=2**20 * 3))
    assert np.array_equal(got, vol[5:39, 37:650, 100:1100])
    for block in boss.boxes("get"):
        assert box.contains(block)
        for axis in range(3):
            assert block.start[axis] % BOSS_CUBOID[axis] == 0 or block.start[axis] == box.start[axis]
            assert block.stop[axis] % BOSS_CUBOID[axis] == 0 or block.stop[axis] == box.stop[axis]
    assert sum(b.nvoxels for b in boss.boxes("get")) == box.nvoxels  # nothing fetched twice


def test_tiff_slices_have_ndex1_names_and_exact_content(boss, tmp_path):
    vol = volume(dtype=np.uint8)
    client = serve(boss, vol)
    spec = PullSpec(ref=REF, box=Box((10, 20, 3), (530, 300, 20)), outdir=tmp_path)
    report = pull(spec, TransferOptions(threads=3), client=client)
    assert report.ok and report.blocks_done == report.blocks_total
    files = sorted(tmp_path.glob("*.tif"))
    assert [f.name for f in files][:2] == ["coll_exp_chan_x10-530_y20-300_z03.tif", "coll_exp_chan_x10-530_y20-300_z04.tif"]
    assert len(files) == 17
    for z, f in zip(range(3, 20), files):
        assert np.array_equal(tifffile.imread(f), vol[z, 20:300, 10:530])
    assert not list(tmp_path.glob("*.partial"))


def test_failed_blocks_are_reported_and_only_they_are_fetched_again(boss, tmp_path):
    vol = volume(dtype=np.uint8)
    box = Box((0, 0, 0), (1100, 700, 40))
    client = serve(boss, vol)
    four = TransferOptions(block_bytes=2**20 * 4)
    plan = make_plan(client, PullSpec(ref=REF, box=box, outdir=tmp_path), four)
    bad_block = plan.blocks_per_slab[1][0]
    boss.faults.boss_error(500, 0, "storage hiccup", method="GET", path=cutout_path(REF, bad_block))
    report = pull(PullSpec(ref=REF, box=box, outdir=tmp_path), four, client=client)
    assert not report.ok and list(report.failures) == [bad_block]
    assert len(list(tmp_path.glob("*.tif"))) == 40 - 16  # the slab with the failed block is not written
    boss.faults.clear()
    boss.forget()
    report = pull(PullSpec(ref=REF, box=box, outdir=tmp_path), four, client=client)
    assert report.ok and report.blocks_skipped == plan.nblocks - len(plan.blocks_per_slab[1])
    assert {b.z for b in boss.boxes("get")} == {(16, 32)}
    for z in range(40):
        assert np.array_equal(tifffile.imread(next(tmp_path.glob(f"*_z{z:02d}.tif"))), vol[z])


def test_interrupt_leaves_no_final_half_file_and_the_rerun_resumes(boss, tmp_path, monkeypatch):
    vol = volume(shape=(48, 300, 600), dtype=np.uint8)
    client = serve(boss, vol)
    spec = PullSpec(ref=REF, box=Box((0, 0, 0), (600, 300, 48)), outdir=tmp_path, output="stack",
                    stack_filename="vol.tif")
    two = TransferOptions(threads=2)
    plan = make_plan(client, spec, two)
    sink = open_sink("stack", plan.output_spec)
    written = []
    original = sink.write

    def write_then_interrupt(slab, data, t):  # Ctrl-C once the first slab is on disk (slabs are written by workers)
        original(slab, data, t)
        written.append(slab)
        if len(written) == 1:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(sink, "write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        pull(spec, two, client=client, plan=plan, sink=sink)
    assert not (tmp_path / "vol.tif").exists()
    boss.forget()
    report = pull(spec, two, client=client)
    assert report.ok and report.blocks_skipped > 0
    assert min(b.z[0] for b in boss.boxes("get")) >= 16  # the first slab was not fetched again
    assert np.array_equal(tifffile.imread(tmp_path / "vol.tif"), vol)


def peak_bytes(boss, ref, depth, output, tmp_path):
    vol = np.ones((depth, 512, 2048), np.uint8)
    boss.make_channel(ref, "uint8", (2048, 512, depth))
    boss.store(ref, vol)
    client = boss.client(threads=2)
    spec = PullSpec(ref=ref, outdir=tmp_path / f"{output}{depth}", output=output,
                    stack_filename=None if output == "tif" else "v.ome.zarr")
    options = TransferOptions(threads=2, block_bytes=2**20)
    tracemalloc.start()
    try:
        report = pull(spec, options, client=client)
        return tracemalloc.get_traced_memory()[1], make_plan(client, spec, options).memory_estimate, report
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("output", ["tif", "zarr"])
def test_peak_memory_does_not_grow_with_depth(boss, output, tmp_path):
    shallow, estimate, report = peak_bytes(boss, ChannelRef("a", "e", "c"), 32, output, tmp_path)
    deep, _, report2 = peak_bytes(boss, ChannelRef("b", "e", "c"), 160, output, tmp_path)
    assert report.ok and report2.ok
    assert deep < shallow * 1.5 + 2**20  # 5x the depth, not 5x the memory
    assert deep < 3 * estimate + 8 * 2**20  # and near the plan's estimate (the volume itself is 160 MiB)


NAMES = {"tif": None, "stack": "v.tif", "ome-tiff": "v.ome.tif", "zarr": "v.ome.zarr", "numpy": "v.npy",
         "precomputed": "v.precomputed"}


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_plan_counts_a_slab_buffer_exactly_for_the_sinks_that_take_slabs(boss, output, tmp_path):
    client = serve(boss, volume(shape=(20, 100, 120), dtype=np.uint8))
    plan = make_plan(client, PullSpec(ref=REF, output=output, outdir=tmp_path, stack_filename=NAMES[output]),
                     TransferOptions())
    sink = open_sink(output, plan.output_spec)
    try:
        assert (plan.slab_bytes == 0) == sink.supports_partial_writes
    finally:
        sink.abort()


def test_threads_bound_concurrent_requests(boss):
    vol = volume(shape=(64, 1024, 1024), dtype=np.uint8)
    client = serve(boss, vol)
    boss.max_active = 0
    pull_array(REF, client=client, options=TransferOptions(threads=3, block_bytes=2**19))
    assert 1 <= boss.max_active <= 3


def test_time_series_and_force_datatype(boss, tmp_path):
    vol = volume(shape=(3, 20, 100, 120), dtype=np.uint16)
    client = serve(boss, vol)
    got = pull_array(REF, Box((0, 0, 0), (120, 100, 20)), client=client, time_range=(1, 3),
                     force_datatype="uint8")
    assert got.shape == (2, 20, 100, 120) and got.dtype == np.uint8
    assert np.array_equal(got, (vol[1:3] >> 8).astype(np.uint8))


def test_bad_requests_fail_before_any_download(boss, tmp_path):
    client = serve(boss, volume(shape=(20, 100, 100), dtype=np.uint8))
    boss.forget()
    with pytest.raises(OutOfBounds, match="x range 0:200"):
        make_plan(client, PullSpec(ref=REF, box=Box((0, 0, 0), (200, 50, 5))), TransferOptions())
    with pytest.raises(OutOfBounds, match="resolution 3"):
        make_plan(client, PullSpec(ref=REF, res=3), TransferOptions())
    with pytest.raises(FieldError, match="^max_memory 0.0 MB is too small for one band of 16 slices") as info:
        make_plan(client, PullSpec(ref=REF), TransferOptions(max_memory=1000))
    assert info.value.field == "max_memory"
    assert boss.count("get") == 0


def test_dry_run_plan_describes_blocks_bytes_and_memory(boss):
    client = serve(boss, volume(shape=(40, 700, 1100), dtype=np.uint8))
    lines = make_plan(client, PullSpec(ref=REF), TransferOptions(block_bytes=2**20 * 4)).describe()
    text = "\n".join(lines)
    assert "blocks" in text and "MB uncompressed" in text and "memory" in text


def test_z_digits_keeps_one_padding_width_across_planned_jobs(boss, tmp_path):
    client = serve(boss, volume(shape=(40, 50, 60), dtype=np.uint8))
    spec = PullSpec(ref=REF, box=Box((0, 0, 3), (60, 50, 9)), outdir=tmp_path, z_digits=4)
    assert pull(spec, client=client).ok
    assert sorted(p.name for p in tmp_path.glob("*.tif"))[0] == "coll_exp_chan_x0-60_y0-50_z0003.tif"


def test_a_dying_submitter_fails_the_pull_instead_of_hanging_it(boss, tmp_path, monkeypatch):
    from ndex.transfer import download

    vol = volume(shape=(40, 100, 100), dtype=np.uint8)
    client = serve(boss, vol)
    real_run = download._Fetcher.run

    def run_two_then_die(self, work, deliver):
        real_run(self, work[:2], deliver)
        raise RuntimeError("boom while submitting")

    monkeypatch.setattr(download._Fetcher, "run", run_two_then_die)
    report = pull(PullSpec(ref=REF, outdir=tmp_path), TransferOptions(block_bytes=2**16), client=client)
    assert not report.ok and "boom while submitting" in report.failures["submitting blocks"]
    assert not list(tmp_path.glob("*.partial"))


def test_an_unreachable_server_stops_the_pull_instead_of_retrying_every_block(boss, tmp_path):
    vol = volume(shape=(160, 512, 512), dtype=np.uint8)
    client = serve(boss, vol)
    boss.forget()
    boss.faults.drop(method="GET", path="^/v1/cutout/", skip=2)  # the server goes away after two blocks
    one = TransferOptions(threads=1)
    report = pull(PullSpec(ref=REF, outdir=tmp_path), one, client=client)
    assert not report.ok and report.blocks_done == 2
    assert len(set(boss.boxes("get")[2:])) <= 2  # not one doomed request (and its retries) per remaining block
    assert any("stopped early" in note and "re-run" in note for note in report.notes)
    boss.faults.clear()
    boss.forget()
    assert pull(PullSpec(ref=REF, outdir=tmp_path), one, client=client).ok
    assert min(b.z[0] for b in boss.boxes("get")) == 32  # the two finished slabs were kept


def test_a_throttled_pull_backs_off_and_loses_no_block(boss, tmp_path):
    vol = volume(shape=(32, 512, 2048), dtype=np.uint8)
    client = serve(boss, vol)
    boss.forget()
    # a busy server's 503 with Retry-After, to four cutout GETs
    boss.faults.boss_error(503, 0, "slow down", headers={"Retry-After": "0.01"}, method="GET", path="^/v1/cutout/",
                           times=4)
    report = pull(PullSpec(ref=REF, outdir=tmp_path, output="numpy", stack_filename="v.npy"),
                  TransferOptions(threads=4, block_bytes=2**20), client=client)
    assert report.ok and report.throttled == 4  # every throttled block was retried, none failed
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), vol)


def test_a_library_caller_naming_a_file_gets_its_kind_as_the_cli_does(boss, tmp_path):
    vol = volume(shape=(20, 60, 70), dtype=np.uint8)
    client = serve(boss, vol)
    spec = PullSpec(ref=REF, outdir=tmp_path, stack_filename="v.ome.zarr")
    assert spec.output == "zarr" and PullSpec.from_json(spec.to_json()) == spec
    report = pull(spec, client=client)
    assert report.ok and report.files == [tmp_path / "v.ome.zarr"]
    assert PullSpec(ref=REF, stack_filename="v.ome.tif").output == "ome-tiff"
    with pytest.raises(FieldError, match="^output numpy does not write 'v.tif'"):
        PullSpec(ref=REF, output="numpy", stack_filename="v.tif")


@pytest.mark.parametrize("kw, field, line, flag_line", [
    ({"threads": 0}, "threads", "threads 0 must be at least 1", "--threads 0 must be at least 1"),
    ({"block_bytes": 0}, "block_bytes", "block_bytes 0 must be at least 1", "--block_size 0 must be at least 1"),
    ({"verify": "most"}, "verify", "unknown verify 'most': use one of sample, all, none",
     "unknown --verify 'most': use one of sample, all, none"),
    ({"retries": -1}, "retries", "retries -1 must not be negative", "--retries -1 must not be negative"),
])
def test_options_name_the_field_and_a_command_its_flag(kw, field, line, flag_line):
    from ndex.cli.flags import flag_names

    with pytest.raises(FieldError) as info:
        TransferOptions(**kw)
    assert info.value.field == field and str(info.value) == line
    with pytest.raises(FieldError) as info, flag_names():
        TransferOptions(**kw)
    assert str(info.value) == flag_line
