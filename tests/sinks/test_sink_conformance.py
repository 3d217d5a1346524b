"""One suite every sink passes: round trip, time series, resume, atomic final names, abort, full disk."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import tifffile
from sink_harness import (
    DTYPES,
    FINAL_SUFFIXES,
    KINDS,
    PERSISTENT,
    feed,
    files_under,
    make_spec,
    read_back,
    sink_for,
    volume,
)

from ndex.errors import SinkError
from ndex.geometry import z_slabs
from ndex.sinks import open_sink


def _dtypes(kind: str) -> list[str]:
    return [d for d in DTYPES if not (kind == "ome-tiff" and d == "uint64")]  # OME has no uint64 type


@pytest.mark.parametrize("kind,dtype", [(k, d) for k in KINDS for d in _dtypes(k)])
def test_round_trip_of_an_unaligned_region(tmp_path, kind, dtype):
    spec = make_spec(tmp_path, dtype)
    vol = volume(spec)
    sink = sink_for(kind, spec)
    feed(sink, spec, vol)
    back = read_back(kind, sink, spec, sink.finish())
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, vol)


@pytest.mark.parametrize("kind", KINDS)
def test_time_series_round_trip(tmp_path, kind):
    spec = make_spec(tmp_path, "uint8", times=(3, 4, 5))
    vol = volume(spec)
    sink = sink_for(kind, spec)
    feed(sink, spec, vol)
    np.testing.assert_array_equal(read_back(kind, sink, spec, sink.finish()), vol)


@pytest.mark.parametrize("kind", PERSISTENT)
@pytest.mark.parametrize("times", [None, (0, 1)])
def test_resume_continues_without_rewriting(tmp_path, kind, times):
    spec = make_spec(tmp_path, "uint16", times=times)
    vol = volume(spec)
    slabs = z_slabs(spec.box)
    first = sink_for(kind, spec)
    feed(first, spec, vol, slabs[:2])
    first.abort()  # the interrupt
    before = {p: (tmp_path / p).stat().st_mtime_ns for p in files_under(tmp_path) if (tmp_path / p).is_file()}

    again = sink_for(kind, spec)
    assert again.completed(slabs) == set(slabs[:2])
    feed(again, spec, vol, slabs[2:])
    after = {p: (tmp_path / p).stat().st_mtime_ns for p in before if (tmp_path / p).exists()}
    untouched = {p: m for p, m in before.items() if p.suffix in (".tif", ".npy")}  # slices, stack parts
    if kind in ("tif", "stack", "ome-tiff"):  # (zarr chunks shared by two slabs are rightly rewritten)
        assert untouched and {p: after[p] for p in untouched} == untouched
    np.testing.assert_array_equal(read_back(kind, again, spec, again.finish()), vol)


@pytest.mark.parametrize("kind", PERSISTENT)
def test_completed_is_empty_for_a_fresh_output(tmp_path, kind):
    spec = make_spec(tmp_path)
    assert sink_for(kind, spec).completed(z_slabs(spec.box)) == set()


def test_numpy_sink_knows_only_its_own_slabs(tmp_path):
    spec = make_spec(tmp_path)
    sink = open_sink("numpy", spec)
    slabs = z_slabs(spec.box)
    feed(sink, spec, volume(spec), slabs[:1])
    assert sink.completed(slabs) == {slabs[0]}
    assert sink_for("numpy", spec).completed(slabs) == set()


@pytest.mark.parametrize("kind", PERSISTENT)
def test_no_incomplete_file_under_a_final_name_before_finish(tmp_path, kind):
    spec = make_spec(tmp_path, "uint8")
    vol = volume(spec)
    sink = sink_for(kind, spec)
    feed(sink, spec, vol)
    if kind == "tif":  # slices are final one by one: each one present is whole
        for path in tmp_path.glob("*.tif"):
            z = int(path.stem.rsplit("_z", 1)[1])
            np.testing.assert_array_equal(tifffile.imread(path), vol[z - spec.box.z[0]])
        assert not list(tmp_path.glob("*.partial"))
    else:
        assert not any(p.name.endswith(FINAL_SUFFIXES) for p in tmp_path.iterdir())
    (final,) = sink.finish() if kind != "tif" else sink.finish()[:1]
    assert final.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("kind", PERSISTENT)
def test_abort_leaves_resumable_state_and_no_final_output(tmp_path, kind):
    spec = make_spec(tmp_path, "uint16")
    slabs = z_slabs(spec.box)
    sink = sink_for(kind, spec)
    feed(sink, spec, volume(spec), slabs[:1])
    sink.abort()
    finals = [p for p in tmp_path.iterdir() if p.name.endswith(FINAL_SUFFIXES)]
    if kind == "tif":
        assert len(finals) == slabs[0].shape[2]  # exactly the finished slab's slices
    else:
        assert finals == []
    assert sink_for(kind, spec).completed(slabs) == {slabs[0]}


@pytest.mark.parametrize("kind", PERSISTENT)
def test_finish_refuses_a_pull_with_missing_slabs(tmp_path, kind):
    spec = make_spec(tmp_path)
    sink = sink_for(kind, spec)
    feed(sink, spec, volume(spec), z_slabs(spec.box)[:1])
    with pytest.raises(SinkError, match="run the pull again"):
        sink.finish()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".ome.tif", "z14-37.tif", ".ome.zarr", ".npy"))]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_written_then_full(path, *args, **kwargs):
    with open(path, "wb") as f:
        f.write(b"II*\x00 half a tiff")
    _disk_full()


@pytest.mark.parametrize("kind", ["tif", "stack", "ome-tiff"])
def test_full_disk_while_writing_slabs(tmp_path, monkeypatch, kind):
    spec = make_spec(tmp_path)
    sink = sink_for(kind, spec)
    if kind == "tif":
        monkeypatch.setattr(tifffile, "imwrite", _half_written_then_full)
    else:
        monkeypatch.setattr(np, "save", _disk_full)
    with pytest.raises(SinkError, match=r"cannot write .*No space left on device; free disk space") as info:
        feed(sink, spec, volume(spec))
    assert info.value.errno == errno.ENOSPC
    assert not list(tmp_path.rglob("*.tif")) and not list(tmp_path.rglob("*.partial"))


@pytest.mark.parametrize("kind", ["stack", "ome-tiff"])
def test_full_disk_while_assembling_the_stack_then_resume(tmp_path, monkeypatch, kind):
    spec = make_spec(tmp_path, "uint8")
    vol = volume(spec)
    sink = sink_for(kind, spec)
    feed(sink, spec, vol)
    real_write = tifffile.TiffWriter.write

    def write_two_pages_then_full(self, data, **kw):
        def pages():
            for i, page in enumerate(data):
                if i == 20:  # two slabs in
                    _disk_full()
                yield page
        return real_write(self, pages(), **kw)

    monkeypatch.setattr(tifffile.TiffWriter, "write", write_two_pages_then_full)
    with pytest.raises(SinkError, match="No space left"):
        sink.finish()
    sink.abort()
    assert not [p for p in tmp_path.iterdir() if p.is_file()]  # neither the stack nor its .partial
    monkeypatch.undo()

    again = sink_for(kind, spec)
    todo = [s for s in z_slabs(spec.box) if s not in again.completed(z_slabs(spec.box))]
    assert todo == z_slabs(spec.box)[:2]  # the slabs whose parts were consumed are fetched again
    feed(again, spec, vol, todo)
    np.testing.assert_array_equal(read_back(kind, again, spec, again.finish()), vol)


def test_full_disk_in_zarr_is_a_sink_error(tmp_path):
    spec = make_spec(tmp_path)
    sink = open_sink("zarr", spec)
    chunk_dir = tmp_path / "col_exp_chan_x500-530_y1000-1022_z14-37.ome.zarr.partial" / "0" / "0"
    chunk_dir.write_bytes(b"")  # a file where tensorstore needs a directory: a real I/O failure
    with pytest.raises(SinkError, match=r"cannot write .*ome\.zarr\.partial: Not a directory"):
        feed(sink, spec, volume(spec))
    assert not (tmp_path / "col_exp_chan_x500-530_y1000-1022_z14-37.ome.zarr").exists()


def test_tensorstore_errno_is_recovered(tmp_path):
    from ndex.sinks.ome_zarr import _oserror_in

    exc = ValueError("RESOURCE_EXHAUSTED: Error writing local file \"/x/0/0\": Failed writing: "
                     "No space left on device [os_error_code='28']")
    assert _oserror_in(exc).errno == errno.ENOSPC


@pytest.mark.parametrize("kind", PERSISTENT)
def test_unusable_output_directory_is_a_sink_error(tmp_path, kind):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output directory should be")
    with pytest.raises(SinkError, match=r"cannot write .*out"):
        sink_for(kind, make_spec(blocker / "sub"))
