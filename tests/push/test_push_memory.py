"""What the push engine holds: pooled block buffers, slabs freed at their last copy, an honest estimate."""
from __future__ import annotations

import threading
import weakref
import zlib

import numpy as np
import pytest
from push_helpers import REF, local_spec, push_job, random_volume, write_slices

from ndex.cli import push as push_cli
from ndex.sources import open_source
from ndex.transfer.manifest import Manifest
from ndex.transfer.options import PROCESS_BASE_BYTES
from ndex.transfer.pipeline import BlockBuffers
from ndex.transfer.upload import make_plan, push
from ndex.transfer.verify import digest

CUBOID8 = 512 * 512 * 16


class Tracked(np.ndarray):
    """An array that owns its memory and can be watched with a weak reference."""


class WatchedSource:
    """A source whose slabs are Tracked arrays; records how many earlier slabs are alive at each read."""

    supports_partial_reads = False  # every read goes through read_slab, where it is watched

    def __init__(self, inner) -> None:
        self.inner = inner
        self.slabs: list[weakref.ref] = []
        self.alive_at_read: list[int] = []
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read_slab(self, z0: int, z1: int) -> np.ndarray:
        data = self.inner.read_slab(z0, z1)
        with self.lock:
            self.alive_at_read.append(sum(ref() is not None for ref in self.slabs))
            out = Tracked(data.shape, data.dtype)
            out[...] = data
            self.slabs.append(weakref.ref(out))
        return out


def test_block_buffers_copy_exactly_and_are_reused_up_to_their_count():
    pool = BlockBuffers(2, 4096)
    source = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    first, a = pool.copy(source[8:24, 16:48])
    second, b = pool.copy(source[:32, :32])
    assert a.flags.c_contiguous and b.flags.c_contiguous
    np.testing.assert_array_equal(a, source[8:24, 16:48])
    np.testing.assert_array_equal(b, source[:32, :32])
    pool.give_back(first)
    third, _ = pool.copy(source[:2, :2])
    assert third is first  # no third buffer is made while one is free
    with pytest.raises(ValueError, match="does not fit"):
        pool.copy(np.zeros(4097, dtype=np.uint8))
    pool.give_back(second)
    pool.give_back(third)


@pytest.mark.parametrize("slabs_in_flight", [1, 2])
def test_no_more_slabs_live_than_in_flight(tmp_path, boss, client, slabs_in_flight):
    vol = random_volume((80, 64, 1100), "uint8", zero_fraction=0.0)
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF, "uint8", extent=(1536, 512, 96))
    job = push_job(local_spec(tmp_path / "s", (0, 80)), threads=3, block_bytes=CUBOID8,
                    slabs_in_flight=slabs_in_flight, verify="all")
    source = WatchedSource(open_source(job.spec.source))
    try:
        report = push(job.spec, job.options, client=client, source=source, seed=3)
    finally:
        source.inner.close()
    assert report.ok, report.failures
    np.testing.assert_array_equal(boss.volume(REF)[:80, :64, :1100], vol)
    # a slab is read only once a slot is free: the ones still alive hold the other slots
    assert len(source.alive_at_read) == 5
    assert max(source.alive_at_read) <= slabs_in_flight - 1


def test_process_estimate_adds_slices_being_decoded_and_the_interpreter(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((2, 1024, 1024), "uint16"))
    boss.make_channel(REF, "uint16", extent=(1024, 1024, 16))
    job = push_job(local_spec(tmp_path / "s", (0, 2)), threads=4)
    source = open_source(job.spec.source)
    try:
        plan = make_plan(client, job.spec, job.options, source)
    finally:
        source.close()
    band_of_slice = 1024 * 512 * 2  # TIFF slices are read in parts: at most one cuboid row of strips at once
    assert plan.decode_bytes == job.spec.source.read_threads * 2 * band_of_slice
    assert plan.process_estimate == plan.memory_estimate + plan.decode_bytes + PROCESS_BASE_BYTES
    line = next(text for text in plan.describe() if text.startswith("memory"))
    assert f"~{plan.process_estimate / 1e6:,.0f} MB peak" in line and "being decoded" in line


def test_manifest_keeps_the_crc32_of_each_posted_block(tmp_path, boss, client):
    vol = random_volume((16, 32, 32), "uint16", zero_fraction=0.0)
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF, "uint16", extent=(512, 512, 16))
    job = push_job(local_spec(tmp_path / "s", (0, 16)), manifest=str(tmp_path / "m.sqlite"))
    assert push(job.spec, job.options, client=client, seed=1).ok
    manifest = Manifest(job.options.manifest, job.key(boss.remote.url))
    try:
        (block,) = manifest.states()
        assert manifest.row(block)["hash"] == f"crc32:{zlib.crc32(vol.tobytes()):08x}" == digest(vol)
    finally:
        manifest.close()


def test_malloc_arenas_are_left_alone_when_the_environment_sets_them(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert push_cli.limit_malloc_arenas() is False
