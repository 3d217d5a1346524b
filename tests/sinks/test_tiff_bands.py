"""TIFF outputs written band by band: every layout (strips of any height, tiles, BigTIFF, each codec) reads
back voxel for voxel with tifffile and Pillow, odd sizes and offsets included, and a pull killed in the
middle of a band continues its `.partial` files."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from sink_harness import make_spec, part_of, volume

from ndex.geometry import Box, z_slabs
from ndex.sinks import SlabAssembly, TiffSlices, TiffStack
from ndex.sinks.tiff_bands import TILED_WIDTH, ChunkLayout
from ndex.transfer.options import cut_bands

Image.MAX_IMAGE_PIXELS = None  # the wide layouts are big on purpose


def bands_of(spec, band) -> list[Box]:
    return [b for slab in z_slabs(spec.box) for b in cut_bands(slab, band)]


def feed_bands(sink, spec, vol, bands) -> None:
    """What the pull engine does: every block of each band (cuboids, in reverse order), then slab_done."""
    writer = SlabAssembly(sink, spec, bands)
    for band in bands:
        for block in reversed(cut_bands(band, (512, 512))):
            for t in spec.times:
                writer.write(block, part_of(spec, vol, block, t), t)
        writer.slab_done(band)


def pillow(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


LAYOUTS = [  # region, band grid (rows, columns), dtype, compression, expected (strip rows, tile side)
    (Box((0, 0, 0), (700, 1100, 3)), (512, 1024), "uint8", "none", (512, 0)),
    (Box((0, 300, 14), (333, 1500, 19)), (512, 1024), "uint16", "zlib", (4, 0)),  # y starts 212 before a cuboid
    (Box((5, 1023, 0), (800, 1536, 2)), (512, 1024), "uint8", "lzw", (1, 0)),  # one-row strips, a one-row band
    (Box((0, 0, 0), (TILED_WIDTH + 100, 40, 2)), (512, 1024), "uint8", "zstd", (512, 512)),  # tiled, column bands
    (Box((64, 0, 0), (TILED_WIDTH + 200, 600, 1)), (512, 2**16), "uint16", "none", (64, 64)),  # tiles off the grid
]


@pytest.mark.parametrize("box, band, dtype, compression, chunks", LAYOUTS)
def test_each_layout_reads_back_with_tifffile_and_pillow(tmp_path, box, band, dtype, compression, chunks):
    spec = make_spec(tmp_path, dtype, box=box, compression=compression)
    assert (ChunkLayout.choose(box).rows, ChunkLayout.choose(box).cols) == chunks
    vol = volume(spec)
    sink = TiffSlices(spec)
    feed_bands(sink, spec, vol, bands_of(spec, band))
    paths = sink.finish()
    assert len(paths) == box.shape[2] and not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*"))
    for path, plane in zip(paths, vol):
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            assert page.is_tiled == bool(chunks[1]) and page.compression.name.lower().startswith(
                {"none": "none", "zlib": "adobe_deflate", "lzw": "lzw", "zstd": "zstd"}[compression])
            assert page.tags["DocumentName"].value == path.name  # ndex 1.x's tag, kept
            np.testing.assert_array_equal(page.asarray(), plane)
        np.testing.assert_array_equal(pillow(path).astype(dtype), plane)


def test_bigtiff_slices_and_stacks_read_back(tmp_path):
    box = Box((0, 0, 0), (600, 530, 17))
    for name, kind in (("slices", TiffSlices), ("stack", TiffStack)):
        spec = make_spec(tmp_path / name, "uint16", box=box, extra={"bigtiff": True})
        vol = volume(spec)
        sink = kind(spec)
        feed_bands(sink, spec, vol, bands_of(spec, (512, 1024)))
        paths = sink.finish()
        for p in paths:
            with tifffile.TiffFile(p) as tif:
                assert tif.is_bigtiff
        back = np.stack([tifffile.imread(p) for p in paths]) if kind is TiffSlices else tifffile.imread(paths[0])
        np.testing.assert_array_equal(back, vol)
        if kind is TiffSlices:
            np.testing.assert_array_equal(pillow(paths[3]), vol[3])


@pytest.mark.parametrize("compression", ["none", "zlib"])
def test_a_stack_of_bands_is_one_series_in_strips_or_tiles(tmp_path, compression):
    for box in (Box((7, 100, 3), (1100, 1300, 20)), Box((0, 0, 0), (TILED_WIDTH + 10, 30, 2))):
        spec = make_spec(tmp_path / str(box.shape[0]), "uint8", box=box, compression=compression)
        vol = volume(spec)
        sink = TiffStack(spec)
        feed_bands(sink, spec, vol, bands_of(spec, (512, 512)))
        (path,) = sink.finish()
        with tifffile.TiffFile(path) as tif:
            assert tif.series[0].shape == vol.shape
            assert tif.pages.first.is_tiled == (box.shape[0] > TILED_WIDTH)
            np.testing.assert_array_equal(tif.asarray(), vol)


KILLED = """
import os, signal, sys
import numpy as np
sys.path[:0] = {paths!r}
from test_tiff_bands import bands_of, feed_bands
from sink_harness import make_spec, volume
from ndex.geometry import Box
from ndex.sinks import TiffSlices, TiffStack
import ndex.sinks.tiff_bands, ndex.sinks.tiff_stack

spec = make_spec(__import__("pathlib").Path({out!r}), "uint16", box=Box({start}, {stop}), compression="zlib")
kind = {kind}
calls = [0]
target = ndex.sinks.tiff_bands.ChunkedTiff if kind is TiffSlices else ndex.sinks.tiff_stack.TiffStack
real = target.write
def write(*args, **kw):
    calls[0] += 1
    if calls[0] == {kill_at}:  # in the middle of a band: some of its slices written, others not
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kw)
target.write = write
feed_bands(kind(spec), spec, volume(spec), bands_of(spec, (512, 2048)))
"""


def test_narrower_bands_than_the_rows_of_a_striped_slice_are_refused(tmp_path):
    spec = make_spec(tmp_path, "uint8", box=Box((0, 0, 0), (1000, 600, 16)))
    band = Box((0, 0, 0), (512, 512, 16))
    with pytest.raises(ValueError, match="strips of whole rows"):
        TiffSlices(spec).write(band, part_of(spec, volume(spec), band, None), None)


@pytest.mark.parametrize("kind", ["TiffSlices", "TiffStack"])
def test_a_pull_killed_in_the_middle_of_a_band_continues_its_files(tmp_path, kind):
    box = Box((3, 200, 14), (1030, 1500, 37))  # 3 slabs of 3 bands (cuboid rows)
    spec = make_spec(tmp_path, "uint16", box=box, compression="zlib")
    bands = bands_of(spec, (512, 2048))
    # per band: a write per slice (TiffSlices) or one per band (TiffStack); slab 0 is 2 slices deep.
    # Kill inside slab 1's third band, after some of its slices were written
    kill_at = 3 * 2 + 2 * 16 + 5 if kind == "TiffSlices" else 3 + 2 + 1
    script = KILLED.format(paths=[str(Path(__file__).parent), str(Path(__file__).parents[1])], out=str(tmp_path),
                           start=box.start, stop=box.stop, kind=kind, kill_at=kill_at)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert list(tmp_path.glob("*.partial")) or list(tmp_path.glob("*.parts/*.partial"))
    sink = TiffSlices(spec) if kind == "TiffSlices" else TiffStack(spec)
    done = sink.completed(bands)
    slab0 = [b for b in bands if b.z == (14, 16)]
    slab1 = [b for b in bands if b.z == (16, 32)]
    assert set(slab0) <= done and set(slab1[:2]) <= done  # finished slab and finished bands of the next
    assert not done & set(slab1[2:]) and not done & {b for b in bands if b.z == (32, 37)}
    vol = volume(spec)
    feed_bands(sink, spec, vol, [b for b in bands if b not in done])
    paths = sink.finish()
    back = np.stack([tifffile.imread(p) for p in paths]) if kind == "TiffSlices" else tifffile.imread(paths[0])
    np.testing.assert_array_equal(back, vol)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".partial", ".json"))]
    if kind == "TiffSlices":
        assert all(os.path.getsize(p) < 1.1 * 1027 * 1300 * 2 + 4096 for p in paths)  # no garbage kept


def test_a_rerun_with_other_bands_skips_exactly_what_is_written(tmp_path):
    spec = make_spec(tmp_path, "uint8", box=Box((0, 0, 0), (1500, 1600, 16)))
    vol = volume(spec)
    first = TiffSlices(spec)
    narrow = bands_of(spec, (512, 2048))
    feed_bands(first, spec, vol, narrow[:3])  # rows 0:1536 of 0:1600
    first.abort()
    again = TiffSlices(spec)
    wide = bands_of(spec, (1024, 2048))
    assert again.completed(wide) == {wide[0]}  # rows 1024:1600 are not all written: fetched again
    feed_bands(again, spec, vol, wide[1:])
    np.testing.assert_array_equal(np.stack([tifffile.imread(p) for p in again.finish()]), vol)


def test_another_pull_into_the_same_directory_ignores_the_saved_bands(tmp_path):
    spec = make_spec(tmp_path, "uint8", box=Box((0, 0, 0), (600, 1100, 16)))
    vol = volume(spec)
    first = TiffSlices(spec)
    feed_bands(first, spec, vol, bands_of(spec, (512, 1024))[:1])
    first.abort()
    other = dataclasses.replace(spec, compression="zlib")
    assert TiffSlices(other).completed(bands_of(other, (512, 1024))) == set()
