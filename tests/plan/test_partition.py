"""The partition: exact cover, alignment to the 16-slice cuboid grid, no overlap, workers and memory honoured."""
from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndex.cli.plan import memory_flag
from ndex.client import Channel, ChannelInfo, ChannelRef, CoordFrame, Experiment
from ndex.errors import FieldError, UsageError
from ndex.geometry import Box, z_slabs
from ndex.plan import Footprint, partition, per_job_name, pull_footprint, push_footprint, split_evenly
from ndex.progress import mb
from ndex.sources.base import SourceSpec
from ndex.transfer.download import PullSpec
from ndex.transfer.options import PROCESS_BASE_BYTES, TransferOptions, band_floor
from ndex.transfer.push_plan import decode_bytes
from ndex.transfer.upload import PushSpec

FP = Footprint(slab_bytes=16 * 2**20, slabs_in_flight=2, block_bytes=3 * 2**20, blocks_in_flight=8,
               requests_per_slab=4, bytes_per_slice=2**20)

ranges = st.tuples(st.integers(0, 5000), st.integers(1, 3000)).map(lambda t: (t[0], t[0] + t[1]))
counts = st.one_of(st.none(), st.integers(1, 400))


def cuboid_slabs(z0: int, z1: int) -> list[tuple[int, int]]:
    """[z0, z1) cut on the 16-slice grid, as geometry.z_slabs cuts a box."""
    return [slab.z for slab in z_slabs(Box((0, 0, z0), (1, 1, z1)))]


@given(ranges, counts, counts)
def test_jobs_cover_the_range_exactly_once_on_the_cuboid_grid(z, workers, jobs):
    cut = partition(z, FP, workers=workers, jobs=jobs)
    zs = [j.z for j in cut.jobs]
    assert zs[0][0] == z[0] and zs[-1][1] == z[1]
    for a, b in zip(zs, zs[1:]):
        assert a[1] == b[0]  # contiguous: no gap, no overlap
    for lo, hi in zs:
        assert lo < hi
        assert lo % 16 == 0 or lo == z[0]  # only the range's own edges may be off the grid
        assert hi % 16 == 0 or hi == z[1]
    assert [j.index for j in cut.jobs] == list(range(len(cut.jobs)))
    assert sum(j.nbytes for j in cut.jobs) == (z[1] - z[0]) * FP.bytes_per_slice


@given(ranges, st.integers(1, 400))
def test_workers_are_honoured(z, workers):
    cut = partition(z, FP, workers=workers)
    nslabs = len(cuboid_slabs(*z))
    assert len(cut.jobs) == min(workers, nslabs)
    assert cut.workers == len(cut.jobs)
    sizes = [len(cuboid_slabs(*j.z)) for j in cut.jobs]
    assert max(sizes) - min(sizes) <= 1  # balanced in slabs
    assert bool(cut.notes) == (workers > nslabs)


@given(ranges, st.integers(1, 64), st.integers(1, 400))
def test_more_jobs_than_workers_run_workers_at_a_time(z, workers, jobs):
    cut = partition(z, FP, workers=workers, jobs=jobs)
    assert len(cut.jobs) == min(jobs, len(cuboid_slabs(*z)))
    assert cut.workers == min(workers, len(cut.jobs))


@given(ranges)
def test_requests_count_the_blocks_of_every_slab(z):
    cut = partition(z, FP, workers=3)
    assert cut.requests == len(cuboid_slabs(*z)) * FP.requests_per_slab


def test_default_job_size_without_workers():
    cut = partition((0, 5000), FP)
    assert len(cut.jobs) == 5  # 313 slabs in restart units of 64 slabs
    assert all(j.z[0] % 16 == 0 for j in cut.jobs)


def test_time_estimate_from_throughput():
    cut = partition((0, 64), FP, workers=2, throughput=2**20)  # one slice per second per job
    assert [j.seconds for j in cut.jobs] == [32.0, 32.0]
    assert cut.seconds == 32.0
    assert partition((0, 64), FP, workers=1, throughput=2**20).seconds == 64.0
    assert "~" in cut.describe()[-1]


@given(st.integers(1, 1000), st.integers(1, 50))
def test_split_evenly(count, parts):
    runs = split_evenly(count, min(parts, count))
    assert runs[0][0] == 0 and runs[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))


@pytest.mark.parametrize("kwargs, message", [
    ({"z": (10, 10)}, "covers nothing"),
    ({"z": (20, 4)}, "covers nothing"),
    ({"z": (0, 64), "workers": 0}, "--workers 0 must be at least 1"),
    ({"z": (0, 64), "jobs": -2}, "--jobs -2 must be at least 1"),
    ({"z": (0, 64), "throughput": 0}, "--throughput"),
])
def test_bad_input_is_one_clear_line(kwargs, message):
    z = kwargs.pop("z")
    with pytest.raises(UsageError, match=message) as info:
        partition(z, FP, **kwargs)
    assert "\n" not in str(info.value)


def push_spec() -> PushSpec:
    src = SourceSpec(datasource="local", base_path="x", base_filename="img_<p:4>", extension="tif", z_range=(0, 64))
    return PushSpec(ref=ChannelRef("c", "e", "ch"), source=src)


def test_push_footprint_fits_the_memory_by_lowering_what_is_in_flight():
    xy = Box((0, 0, 0), (4096, 4096, 1))
    eight = TransferOptions(threads=8)
    free = push_footprint(push_spec(), eight, xy, 2)
    assert free.slabs_in_flight == 2 and free.blocks_in_flight == 8
    assert free.slab_bytes == 4096 * 2048 * 16 * 2  # bands of at most 256 MiB without a cap
    fixed = push_fixed(xy)  # the cap is the process's: slices being decoded and the interpreter come first
    tight = push_footprint(push_spec(), eight.with_memory_cap(fixed + free.slab_bytes + 8 * free.block_bytes), xy, 2)
    # the read-ahead is kept with half as high bands, and every thread stays busy
    assert (tight.slab_bytes, tight.slabs_in_flight, tight.blocks_in_flight) == (free.slab_bytes // 2, 2, 8)
    assert tight.process_memory <= fixed + free.slab_bytes + 8 * free.block_bytes
    row = 4096 * 512 * 16 * 2
    one_row = push_footprint(push_spec(), eight.with_memory_cap(fixed + row + free.block_bytes), xy, 2)
    assert (one_row.slab_bytes, one_row.slabs_in_flight, one_row.blocks_in_flight) == (row, 1, 1)
    with pytest.raises(FieldError, match=r"too small for one band of 16 slices: a transfer needs at least 127\.1 MB "
                                         r"\(one band of 8\.4 MB, one block in flight of 25\.2 MB, 93\.6 MB of slices"):
        push_footprint(push_spec(), TransferOptions(max_memory=30 * 10**6), xy, 2)


def push_fixed(xy: Box) -> int:
    return decode_bytes(push_spec().source, xy.with_z(0, 16), 2) + PROCESS_BASE_BYTES


# a 4096 x 4096 uint16 job: one 16-slice slab buffer is 537 MB, so a worker's memory decides what is in flight
XY = Box((0, 0, 0), (4096, 4096, 1))
CUBOID16 = 512 * 512 * 16 * 2  # ndpull's smallest block in flight
PULL_INFO = ChannelInfo(ChannelRef("c", "e", "ch"), Channel("ch", "image", "uint16"), Experiment("e", "f"),
                        CoordFrame("f", 0, 4096, 0, 4096, 0, 1000, 4.0, 4.0, 40.0, "nanometers"))


def footprint(engine: str, memory_per_worker: int | None, max_memory: int | None = None) -> Footprint:
    options = TransferOptions(threads=8, max_memory=max_memory).with_memory_cap(memory_per_worker)
    if engine == "push":
        return push_footprint(push_spec(), options, XY, 2)
    return pull_footprint(PullSpec(ref=PULL_INFO.ref), options, PULL_INFO, XY.with_z(0, 64))


def least_memory(engine: str) -> int:
    """One band (one cuboid row for pull, one cuboid for push) and one block in flight: below this no fitting helps."""
    if engine == "pull":
        return band_floor(XY, 2) + CUBOID16 + PROCESS_BASE_BYTES  # and one block, and the interpreter
    free = footprint(engine, None)  # one cuboid of 16 slices, one block, the slices being decoded, the interpreter
    return band_floor(XY, 2, split_x=True) + free.block_bytes + push_fixed(XY)


@pytest.mark.parametrize("engine", ["push", "pull"])
@given(memory=st.integers(1, 2**31))
def test_memory_bound_is_respected_or_refused(engine, memory):
    if memory >= least_memory(engine):
        assert footprint(engine, memory).memory <= memory
    else:
        with pytest.raises(FieldError, match="too small for one band of 16 slices"):
            footprint(engine, memory)


@pytest.mark.parametrize("engine", ["push", "pull"])
def test_a_worker_too_small_is_one_clear_line_that_names_the_memory_needed(engine):
    with pytest.raises(FieldError) as info:
        footprint(engine, 10 * 2**20)
    text = str(info.value)
    assert "\n" not in text and info.value.field == "max_memory"
    assert text.startswith(f"max_memory 10.5 MB is too small for one band of 16 slices: a transfer needs at least "
                           f"{mb(least_memory(engine))} (")
    assert "raise max_memory" in text


@pytest.mark.parametrize("per_worker, max_memory, flag", [(10 * 2**20, None, "--memory_per_worker"),
                                                          (2**30, 10**6, "--max_memory"),
                                                          (10**6, 10**6, "--memory_per_worker")])
def test_the_planner_names_the_flag_of_the_tighter_cap(per_worker, max_memory, flag):
    args = argparse.Namespace(memory_per_worker=per_worker, max_memory=max_memory)
    with pytest.raises(UsageError, match=rf"^{flag} .* is too small .* raise {flag}"), memory_flag(args):
        footprint("push", per_worker, max_memory)


def test_per_job_file_names_keep_their_suffix():
    assert per_job_name("vol.ome.tif", "z0000000-0000016") == "vol_z0000000-0000016.ome.tif"
    assert per_job_name("vol.npy", "zA") == "vol_zA.npy"
    assert per_job_name("v.OME.ZARR", "zA") == "v_zA.OME.ZARR"
    assert per_job_name("plain", "zA") == "plain_zA"
