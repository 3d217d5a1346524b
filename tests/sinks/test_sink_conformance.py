"""Every registered sink passes the package's suite (`ndex.testing.sinks`); then what only some sinks do:
full disks, tensorstore's errors, a numpy sink's own slabs."""
from __future__ import annotations

import dataclasses
import errno
import os

import numpy as np
import pytest
import tifffile
from sink_harness import feed, make_spec, read_zarr, volume

from ndex.errors import SinkError
from ndex.geometry import z_slabs
from ndex.sinks import open_sink
from ndex.testing.sinks import FileSinkTests, SinkTests


def sink_for(kind: str, spec):
    """open_sink, with "npy" meaning the numpy sink writing `vol.npy`."""
    if kind == "npy":
        return open_sink("numpy", dataclasses.replace(spec, stack_filename="vol.npy"))
    return open_sink(kind, spec)


class TestTiffSlices(FileSinkTests):
    final_per_slice = True

    def make(self, spec):
        return open_sink("tif", spec)

    def read_back(self, sink, spec, paths):
        pages = np.stack([tifffile.imread(p) for p in paths])
        return pages if spec.time_points is None else pages.reshape(len(spec.times), -1, *pages.shape[1:])


class TestTiffStack(FileSinkTests):
    def make(self, spec):
        return open_sink("stack", spec)

    def read_back(self, sink, spec, paths):
        (path,) = paths
        return tifffile.imread(path)


class TestOmeTiff(TestTiffStack):
    dtypes = ("uint8", "uint16")  # OME has no uint64 type

    def make(self, spec):
        return open_sink("ome-tiff", spec)


class TestOmeZarr(FileSinkTests):
    resume_keeps_files = False

    def make(self, spec):
        return open_sink("zarr", spec)

    def read_back(self, sink, spec, paths):
        (path,) = paths
        return read_zarr(path)


class TestNumpyInMemory(SinkTests):
    def make(self, spec):
        return open_sink("numpy", spec)

    def read_back(self, sink, spec, paths):
        return sink.array


class TestNumpyFile(FileSinkTests):
    resume_keeps_files = False

    def make(self, spec):
        return sink_for("npy", spec)

    def read_back(self, sink, spec, paths):
        (path,) = paths
        return np.load(path)


def test_numpy_sink_knows_only_its_own_slabs(tmp_path):
    spec = make_spec(tmp_path)
    sink = open_sink("numpy", spec)
    slabs = z_slabs(spec.box)
    feed(sink, spec, volume(spec), slabs[:1])
    assert sink.completed(slabs) == {slabs[0]}
    assert sink_for("numpy", spec).completed(slabs) == set()


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullDisk:
    """A file whose writes after the first few bytes fail as a full disk does."""

    def __init__(self, path, mode="rb"):
        self._f = open(path, mode)  # noqa: SIM115  # closed by close()/__exit__

    def write(self, data):
        if self._f.tell() > 8:
            _disk_full()
        return self._f.write(bytes(data)[:8])

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("kind", ["tif", "stack", "ome-tiff"])
def test_full_disk_while_writing_slabs(tmp_path, monkeypatch, kind):
    import ndex.sinks.tiff_bands
    import ndex.sinks.tiff_stack

    spec = make_spec(tmp_path)
    sink = sink_for(kind, spec)
    module = ndex.sinks.tiff_bands if kind == "tif" else ndex.sinks.tiff_stack
    monkeypatch.setattr(module, "open", _FullDisk, raising=False)
    with pytest.raises(SinkError, match=r"cannot write .*No space left on device; free disk space") as info:
        feed(sink, spec, volume(spec))
    sink.abort()
    assert info.value.errno == errno.ENOSPC
    assert not [p for p in tmp_path.rglob("*.tif") if p.is_file()]  # nothing under a final name
    monkeypatch.undo()
    assert sink_for(kind, spec).completed(z_slabs(spec.box)) == set()  # and nothing claimed done


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
                if i == 60:  # two slabs in (3 strips per page)
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
    np.testing.assert_array_equal(tifffile.imread(again.finish()[0]), vol)


def test_full_disk_in_zarr_is_a_sink_error(tmp_path):
    spec = make_spec(tmp_path)
    sink = open_sink("zarr", spec)
    chunk_dir = tmp_path / "col_exp_chan_x500-530_y1000-1022_z14-37.ome.zarr.partial" / "0" / "c"
    chunk_dir.write_bytes(b"")  # a file where tensorstore needs a directory: a real I/O failure
    with pytest.raises(SinkError, match=r"cannot write .*ome\.zarr\.partial: Not a directory"):
        feed(sink, spec, volume(spec))
    assert not (tmp_path / "col_exp_chan_x500-530_y1000-1022_z14-37.ome.zarr").exists()


def test_tensorstore_errno_is_recovered(tmp_path):
    from ndex.sinks._files import tensorstore_oserror

    exc = ValueError("RESOURCE_EXHAUSTED: Error writing local file \"/x/0/0\": Failed writing: "
                     "No space left on device [os_error_code='28']")
    assert tensorstore_oserror(exc).errno == errno.ENOSPC
