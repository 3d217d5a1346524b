"""The suites every sink passes: `SinkTests` (round trip, time series, whole-slab writes) for any sink,
and `FileSinkTests`, which adds resume, atomic final names, abort and a bad directory for sinks that write
files.

Subclass one in a test module: say how to open the sink (`make`), how to read its finished output back
into one array (`read_back`) and what it can hold (`dtypes`).

    class TestMySink(FileSinkTests):
        def make(self, spec):
            return MySink(spec)

        def read_back(self, sink, spec, paths):
            return my_reader(paths[0])

Blocks are fed the way the pull engine feeds them: cuboid blocks from several threads in random order
within each slab, through `SlabAssembly` for a sink without partial writes, then `slab_done`.
"""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ndex.errors import SinkError
from ndex.geometry import BOSS_CUBOID, Box, iter_blocks, z_slabs
from ndex.sinks import OutputSpec, SlabAssembly
from ndex.sinks.base import Sink

REGION = Box((500, 1000, 14), (530, 1022, 37))  # crosses x, y and z cuboid edges: 3 z-slabs, 2 blocks in x, y


def make_spec(outdir: Path, dtype: str = "uint16", times: tuple[int, ...] | None = None, **kw: Any) -> OutputSpec:
    return OutputSpec(box=kw.pop("box", REGION), dtype=np.dtype(dtype), prefix="col_exp_chan", outdir=outdir,
                      time_points=times, voxel_size=kw.pop("voxel_size", (4.0, 4.0, 40.0)), **kw)


def volume(spec: OutputSpec, seed: int = 0) -> np.ndarray:
    """Random voxels of the whole output ((t,) z, y, x), using the dtype's full range."""
    rng = np.random.default_rng(seed)
    shape = spec.box.shape_zyx if spec.time_points is None else (len(spec.times), *spec.box.shape_zyx)
    return rng.integers(0, np.iinfo(spec.dtype).max, size=shape, dtype=spec.dtype, endpoint=True)


def part_of(spec: OutputSpec, vol: np.ndarray, box: Box, t: int | None) -> np.ndarray:
    index = box.slices_in(spec.box)
    return vol[index] if t is None else vol[(spec.times.index(t), *index)]


def feed(sink: Sink, spec: OutputSpec, vol: np.ndarray, slabs: list[Box] | None = None) -> None:
    """What the engine does for `slabs` (default: all): blocks from threads in random order, slab by slab."""
    slabs = z_slabs(spec.box) if slabs is None else slabs
    writer = sink if sink.supports_partial_writes else SlabAssembly(sink, spec, slabs)
    for slab in slabs:
        jobs = [(b, t) for t in spec.times for b in iter_blocks(slab, BOSS_CUBOID)]
        random.Random(1).shuffle(jobs)
        with ThreadPoolExecutor(4) as pool:
            for f in [pool.submit(writer.write, b, part_of(spec, vol, b, t), t) for b, t in jobs]:
                f.result()
        writer.slab_done(slab)


class SinkTests:
    """What every sink does: round trips (3D and time series), whole-slab writes, a fresh output's state."""

    dtypes: tuple[str, ...] = ("uint8", "uint16", "uint64")
    final_suffixes: tuple[str, ...] = (".tif", ".ome.zarr", ".npy")
    final_per_slice = False  # each slice is final on its own (TIFF slices); else one final output at finish
    resume_keeps_files = True  # a resumed run leaves finished slabs' files alone (zarr chunks shared by two
    # slabs, or one memory-mapped .npy, are rightly rewritten)

    def make(self, spec: OutputSpec) -> Sink:
        raise NotImplementedError("a SinkTests subclass opens its sink for a spec")

    def read_back(self, sink: Sink, spec: OutputSpec, paths: list[Path]) -> np.ndarray:
        raise NotImplementedError("a SinkTests subclass reads its finished output back ((t,) z, y, x)")

    def test_round_trip_of_an_unaligned_region(self, tmp_path: Path) -> None:
        for dtype in self.dtypes:
            spec = make_spec(tmp_path / dtype, dtype)
            vol = volume(spec)
            sink = self.make(spec)
            feed(sink, spec, vol)
            back = self.read_back(sink, spec, sink.finish())
            assert back.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(back, vol)

    def test_time_series_round_trip(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path, "uint8", times=(3, 4, 5))
        vol = volume(spec)
        sink = self.make(spec)
        feed(sink, spec, vol)
        np.testing.assert_array_equal(self.read_back(sink, spec, sink.finish()), vol)

    def test_a_sink_without_partial_writes_refuses_a_block(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path)
        sink = self.make(spec)
        block = Box((500, 1000, 14), (510, 1022, 16))  # off the cuboid grid: no band
        if sink.supports_partial_writes:
            sink.write(block, part_of(spec, volume(spec), block, None), None)
            return
        with pytest.raises(ValueError, match="writes whole z-slabs"):
            sink.write(block, part_of(spec, volume(spec), block, None), None)

    def test_completed_is_empty_for_a_fresh_output(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path)
        assert self.make(spec).completed(z_slabs(spec.box)) == set()


class FileSinkTests(SinkTests):
    """What a sink that writes files also does: resume, publish atomically, abort cleanly, name a bad directory."""

    def finals(self, root: Path) -> list[Path]:
        return [p for p in root.iterdir() if p.name.endswith(self.final_suffixes)]

    @pytest.mark.parametrize("times", [None, (0, 1)])
    def test_resume_continues_without_rewriting(self, tmp_path: Path, times: Any) -> None:
        spec = make_spec(tmp_path, "uint16", times=times)
        vol = volume(spec)
        slabs = z_slabs(spec.box)
        first = self.make(spec)
        feed(first, spec, vol, slabs[:2])
        first.abort()  # the interrupt
        files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".tif", ".npy")]
        before = {p: p.stat().st_mtime_ns for p in files}
        again = self.make(spec)
        assert again.completed(slabs) == set(slabs[:2])
        feed(again, spec, vol, slabs[2:])
        if self.resume_keeps_files:
            assert before and {p: p.stat().st_mtime_ns for p in before if p.exists()} == before
        np.testing.assert_array_equal(self.read_back(again, spec, again.finish()), vol)

    def test_no_incomplete_file_under_a_final_name_before_finish(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path, "uint8")
        sink = self.make(spec)
        feed(sink, spec, volume(spec))
        if self.final_per_slice:
            assert len(self.finals(tmp_path)) == spec.box.shape[2]
        else:
            assert self.finals(tmp_path) == []
        assert sink.finish() and not list(tmp_path.glob("*.partial"))

    def test_abort_leaves_resumable_state_and_no_final_output(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path, "uint16")
        slabs = z_slabs(spec.box)
        sink = self.make(spec)
        feed(sink, spec, volume(spec), slabs[:1])
        sink.abort()
        assert len(self.finals(tmp_path)) == (slabs[0].shape[2] if self.final_per_slice else 0)
        assert self.make(spec).completed(slabs) == {slabs[0]}

    def test_finish_refuses_an_output_with_missing_slabs(self, tmp_path: Path) -> None:
        spec = make_spec(tmp_path)
        sink = self.make(spec)
        feed(sink, spec, volume(spec), z_slabs(spec.box)[:1])
        with pytest.raises(SinkError, match="run the pull again"):
            sink.finish()
        last = [p for p in self.finals(tmp_path) if not self.final_per_slice or "z14-37" in p.name]
        assert last == []

    def test_unusable_output_directory_is_a_sink_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "out"
        blocker.write_text("a file where the output directory should be")
        with pytest.raises(SinkError, match=r"cannot write .*out"):
            self.make(make_spec(blocker / "sub"))
