"""The pull engine against an in-memory server: exact data, aligned blocks, bounded memory, resume."""
import signal
import tracemalloc

import numpy as np
import pytest
import tifffile
from pull_fakes import FakeClient

from ndex.errors import FieldError, OutOfBounds
from ndex.geometry import BOSS_CUBOID, Box
from ndex.sinks import open_sink
from ndex.transfer.download import OUTPUTS, PullSpec, TransferOptions, make_plan, pull, pull_array


def volume(shape=(40, 700, 1100), dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


def test_numpy_pull_of_an_unaligned_region_is_exact_and_every_block_aligned():
    vol = volume()
    client = FakeClient(vol)
    box = Box((100, 37, 5), (1100, 650, 39))
    got = pull_array(client.ref, box, client=client, options=TransferOptions(threads=4, block_bytes=2**20 * 3))
    assert np.array_equal(got, vol[5:39, 37:650, 100:1100])
    for block in client.requests:
        assert box.contains(block)
        for axis in range(3):
            assert block.start[axis] % BOSS_CUBOID[axis] == 0 or block.start[axis] == box.start[axis]
            assert block.stop[axis] % BOSS_CUBOID[axis] == 0 or block.stop[axis] == box.stop[axis]
    assert sum(b.nvoxels for b in client.requests) == box.nvoxels  # nothing fetched twice


def test_tiff_slices_have_ndex1_names_and_exact_content(tmp_path):
    vol = volume(dtype=np.uint8)
    client = FakeClient(vol)
    spec = PullSpec(ref=client.ref, box=Box((10, 20, 3), (530, 300, 20)), outdir=tmp_path)
    report = pull(spec, TransferOptions(threads=3), client=client)
    assert report.ok and report.blocks_done == report.blocks_total
    files = sorted(tmp_path.glob("*.tif"))
    assert [f.name for f in files][:2] == ["coll_exp_chan_x10-530_y20-300_z03.tif", "coll_exp_chan_x10-530_y20-300_z04.tif"]
    assert len(files) == 17
    for z, f in zip(range(3, 20), files):
        assert np.array_equal(tifffile.imread(f), vol[z, 20:300, 10:530])
    assert not list(tmp_path.glob("*.partial"))


def test_failed_blocks_are_reported_and_only_they_are_fetched_again(tmp_path):
    vol = volume(dtype=np.uint8)
    box = Box((0, 0, 0), (1100, 700, 40))
    healthy = FakeClient(vol)
    four = TransferOptions(block_bytes=2**20 * 4)
    plan = make_plan(healthy, PullSpec(ref=healthy.ref, box=box, outdir=tmp_path), four)
    bad_block = plan.blocks_per_slab[1][0]
    flaky = FakeClient(vol, fail={bad_block})
    report = pull(PullSpec(ref=flaky.ref, box=box, outdir=tmp_path), four, client=flaky)
    assert not report.ok and list(report.failures) == [bad_block]
    assert len(list(tmp_path.glob("*.tif"))) == 40 - 16  # the slab with the failed block is not written
    again = FakeClient(vol)
    report = pull(PullSpec(ref=again.ref, box=box, outdir=tmp_path), four, client=again)
    assert report.ok and report.blocks_skipped == plan.nblocks - len(plan.blocks_per_slab[1])
    assert {b.z for b in again.requests} == {(16, 32)}
    for z in range(40):
        assert np.array_equal(tifffile.imread(next(tmp_path.glob(f"*_z{z:02d}.tif"))), vol[z])


def test_interrupt_leaves_no_final_half_file_and_the_rerun_resumes(tmp_path, monkeypatch):
    vol = volume(shape=(48, 300, 600), dtype=np.uint8)
    client = FakeClient(vol)
    spec = PullSpec(ref=client.ref, box=Box((0, 0, 0), (600, 300, 48)), outdir=tmp_path, output="stack",
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
    again = FakeClient(vol)
    report = pull(spec, two, client=again)
    assert report.ok and report.blocks_skipped > 0
    assert min(b.z[0] for b in again.requests) >= 16  # the first slab was not fetched again
    assert np.array_equal(tifffile.imread(tmp_path / "vol.tif"), vol)


def peak_bytes(depth, output, tmp_path):
    vol = np.ones((depth, 512, 2048), np.uint8)
    client = FakeClient(vol)
    spec = PullSpec(ref=client.ref, outdir=tmp_path / f"{output}{depth}", output=output,
                    stack_filename=None if output == "tif" else "v.ome.zarr")
    options = TransferOptions(threads=2, block_bytes=2**20)
    tracemalloc.start()
    try:
        report = pull(spec, options, client=client)
        return tracemalloc.get_traced_memory()[1], make_plan(client, spec, options).memory_estimate, report
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("output", ["tif", "zarr"])
def test_peak_memory_does_not_grow_with_depth(output, tmp_path):
    shallow, estimate, report = peak_bytes(32, output, tmp_path)
    deep, _, report2 = peak_bytes(160, output, tmp_path)
    assert report.ok and report2.ok
    assert deep < shallow * 1.5 + 2**20  # 5x the depth, not 5x the memory
    assert deep < 3 * estimate + 8 * 2**20  # and near the plan's estimate (the volume itself is 160 MiB)


NAMES = {"tif": None, "stack": "v.tif", "ome-tiff": "v.ome.tif", "zarr": "v.ome.zarr", "numpy": "v.npy"}


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_plan_counts_a_slab_buffer_exactly_for_the_sinks_that_take_slabs(output, tmp_path):
    client = FakeClient(volume(shape=(20, 100, 120), dtype=np.uint8))
    plan = make_plan(client, PullSpec(ref=client.ref, output=output, outdir=tmp_path, stack_filename=NAMES[output]),
                     TransferOptions())
    sink = open_sink(output, plan.output_spec)
    try:
        assert (plan.slab_bytes == 0) == sink.supports_partial_writes
    finally:
        sink.abort()


def test_threads_bound_concurrent_requests():
    vol = volume(shape=(64, 1024, 1024), dtype=np.uint8)
    client = FakeClient(vol)
    pull_array(client.ref, client=client, options=TransferOptions(threads=3, block_bytes=2**19))
    assert 1 <= client.max_active <= 3


def test_time_series_and_force_datatype(tmp_path):
    vol = volume(shape=(3, 20, 100, 120), dtype=np.uint16)
    client = FakeClient(vol)
    got = pull_array(client.ref, Box((0, 0, 0), (120, 100, 20)), client=client, time_range=(1, 3),
                     force_datatype="uint8")
    assert got.shape == (2, 20, 100, 120) and got.dtype == np.uint8
    assert np.array_equal(got, (vol[1:3] >> 8).astype(np.uint8))


def test_bad_requests_fail_before_any_download(tmp_path):
    client = FakeClient(volume(shape=(20, 100, 100), dtype=np.uint8))
    with pytest.raises(OutOfBounds, match="x range 0:200"):
        make_plan(client, PullSpec(ref=client.ref, box=Box((0, 0, 0), (200, 50, 5))), TransferOptions())
    with pytest.raises(OutOfBounds, match="resolution 3"):
        make_plan(client, PullSpec(ref=client.ref, res=3), TransferOptions())
    with pytest.raises(FieldError, match="^max_memory 0.0 MB is too small for one 16-slice slab") as info:
        make_plan(client, PullSpec(ref=client.ref), TransferOptions(max_memory=1000))
    assert info.value.field == "max_memory"
    assert client.requests == []


def test_dry_run_plan_describes_blocks_bytes_and_memory():
    client = FakeClient(volume(shape=(40, 700, 1100), dtype=np.uint8))
    lines = make_plan(client, PullSpec(ref=client.ref), TransferOptions(block_bytes=2**20 * 4)).describe()
    text = "\n".join(lines)
    assert "blocks" in text and "MB uncompressed" in text and "memory" in text


def test_z_digits_keeps_one_padding_width_across_planned_jobs(tmp_path):
    client = FakeClient(volume(shape=(40, 50, 60), dtype=np.uint8))
    spec = PullSpec(ref=client.ref, box=Box((0, 0, 3), (60, 50, 9)), outdir=tmp_path, z_digits=4)
    assert pull(spec, client=client).ok
    assert sorted(p.name for p in tmp_path.glob("*.tif"))[0] == "coll_exp_chan_x0-60_y0-50_z0003.tif"


def test_a_dying_submitter_fails_the_pull_instead_of_hanging_it(tmp_path, monkeypatch):
    from ndex.transfer import download

    vol = volume(shape=(40, 100, 100), dtype=np.uint8)
    client = FakeClient(vol)
    real_run = download._Fetcher.run

    def run_two_then_die(self, work, deliver):
        real_run(self, work[:2], deliver)
        raise RuntimeError("boom while submitting")

    monkeypatch.setattr(download._Fetcher, "run", run_two_then_die)
    report = pull(PullSpec(ref=client.ref, outdir=tmp_path), TransferOptions(block_bytes=2**16), client=client)
    assert not report.ok and "boom while submitting" in report.failures["submitting blocks"]
    assert not list(tmp_path.glob("*.partial"))


def test_an_unreachable_server_stops_the_pull_instead_of_retrying_every_block(tmp_path):
    from ndex.errors import RemoteUnreachable

    vol = volume(shape=(160, 512, 512), dtype=np.uint8)

    class GoneAfterTwo(FakeClient):
        def get_cutout(self, ref, res, box, dtype, **kw):
            if len(self.requests) >= 2:
                self.requests.append(box)
                raise RemoteUnreachable("cannot reach 127.0.0.1:9 (Connection refused)")
            return super().get_cutout(ref, res, box, dtype, **kw)

    client = GoneAfterTwo(vol)
    one = TransferOptions(threads=1)
    report = pull(PullSpec(ref=client.ref, outdir=tmp_path), one, client=client)
    assert not report.ok and report.blocks_done == 2
    assert len(client.requests) <= 4  # not one doomed request (and its retries) per remaining block
    assert any("stopped early" in note and "re-run" in note for note in report.notes)
    resumed = FakeClient(vol)
    assert pull(PullSpec(ref=resumed.ref, outdir=tmp_path), one, client=resumed).ok
    assert min(b.z[0] for b in resumed.requests) == 32  # the two finished slabs were kept


def test_a_throttled_pull_backs_off_and_loses_no_block(tmp_path):
    from ndex.errors import Throttled

    vol = volume(shape=(32, 512, 2048), dtype=np.uint8)

    class Busy(FakeClient):
        """Answers 503 (Retry-After 0.01 s) to every third request of the first dozen."""

        def get_cutout(self, ref, res, box, dtype, **kw):
            with self.lock:
                n = len(self.requests)
            if n < 12 and n % 3 == 0:
                with self.lock:
                    self.requests.append(box)
                raise Throttled("slow down", status=503, retry_after=0.01)
            return super().get_cutout(ref, res, box, dtype, **kw)

    client = Busy(vol)
    report = pull(PullSpec(ref=client.ref, outdir=tmp_path, output="numpy", stack_filename="v.npy"),
                  TransferOptions(threads=4, block_bytes=2**20), client=client)
    assert report.ok and report.throttled == 4  # every throttled block was retried, none failed
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), vol)


def test_a_library_caller_naming_a_file_gets_its_kind_as_the_cli_does(tmp_path):
    vol = volume(shape=(20, 60, 70), dtype=np.uint8)
    client = FakeClient(vol)
    spec = PullSpec(ref=client.ref, outdir=tmp_path, stack_filename="v.ome.zarr")
    assert spec.output == "zarr" and PullSpec.from_json(spec.to_json()) == spec
    report = pull(spec, client=client)
    assert report.ok and report.files == [tmp_path / "v.ome.zarr"]
    assert PullSpec(ref=client.ref, stack_filename="v.ome.tif").output == "ome-tiff"
    with pytest.raises(FieldError, match="^output numpy does not write 'v.tif'"):
        PullSpec(ref=client.ref, output="numpy", stack_filename="v.tif")


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
