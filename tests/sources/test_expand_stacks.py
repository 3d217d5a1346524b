"""expand_stack / the expand_stacks command: a stack split into slices reads back through ndpush's source."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import tifffile

from ndex.cli import expand_stacks
from ndex.errors import SinkError, UsageError
from ndex.sources import SourceSpec, open_source
from ndex.transfer.expand import expand_stack

from .conftest import make_volume


def read_back(outdir, template, z_range, channel=""):
    source = open_source(SourceSpec(base_path=str(outdir), base_filename=template, extension="tif",
                                    z_range=z_range, channel=channel))
    try:
        return source.read_slab(*z_range)
    finally:
        source.close()


def test_round_trip_with_the_default_template(tmp_path):
    volume = make_volume(np.uint16, (12, 20, 30), seed=31)
    tifffile.imwrite(tmp_path / "stack.tif", volume, compression="zlib")
    result = expand_stack(tmp_path / "stack.tif", tmp_path / "out")
    assert (result.base_filename, result.z_range, result.files) == ("<p:4>", (0, 12), 12)
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[:2] == ["0000.tif", "0001.tif"]
    np.testing.assert_array_equal(read_back(tmp_path / "out", result.base_filename, result.z_range), volume)


def test_custom_template(tmp_path):
    volume = make_volume(np.uint8, (3, 10, 11), seed=32)
    tifffile.imwrite(tmp_path / "stack.tif", volume, photometric="minisblack")
    result = expand_stack(tmp_path / "stack.tif", tmp_path / "out", base_filename="sec_<>")
    assert (tmp_path / "out" / "sec_2.tif").exists()
    np.testing.assert_array_equal(read_back(tmp_path / "out", "sec_<>", result.z_range), volume)


def test_split_rgb_writes_one_set_per_channel(tmp_path):
    rgb = make_volume(np.uint8, (4, 10, 33), seed=33).reshape(4, 10, 11, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    result = expand_stack(tmp_path / "rgb.tif", tmp_path / "out", split_rgb=True)
    assert result.channels == ("r", "g", "b") and result.files == 12
    for index, channel in enumerate(result.channels):
        np.testing.assert_array_equal(read_back(tmp_path / "out", result.base_filename, (0, 4), channel),
                                      rgb[..., index])
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_split_rgb_needs_rgb_and_a_channel_placeholder(tmp_path):
    tifffile.imwrite(tmp_path / "grey.tif", np.zeros((2, 5, 5), np.uint8))
    with pytest.raises(UsageError, match="needs RGB pages"):
        expand_stack(tmp_path / "grey.tif", tmp_path / "out", split_rgb=True)
    with pytest.raises(UsageError, match="put <ch> in base_filename"):
        expand_stack(tmp_path / "grey.tif", tmp_path / "out", base_filename="<p:4>", split_rgb=True)
    with pytest.raises(UsageError, match="no z placeholder"):
        expand_stack(tmp_path / "grey.tif", tmp_path / "out", base_filename="slice")


def _half_written_then(error):
    def imwrite(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"II*\x00 half a tiff")
        raise error
    return imwrite


@pytest.mark.parametrize("error, message", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), r"cannot write .*0000\.tif\.partial: No space left on device; free"),
    (ValueError("data too large for standard TIFF file"), r"cannot write .*0000\.tif\.partial: data too large"),
])
def test_a_failed_write_is_one_sink_error_and_leaves_no_partial_file(tmp_path, monkeypatch, error, message):
    tifffile.imwrite(tmp_path / "stack.tif", make_volume(np.uint8, (2, 5, 6), seed=35))
    monkeypatch.setattr(tifffile, "imwrite", _half_written_then(error))
    with pytest.raises(SinkError, match=message):
        expand_stack(tmp_path / "stack.tif", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_command_prints_how_to_push_and_returns_0(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "stack.tif", make_volume(np.uint8, (2, 5, 6), seed=34))
    code = expand_stacks.main(["--input", str(tmp_path / "stack.tif"), "--outdir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "wrote 2 files" in out and "--base_filename '<p:4>'" in out and "--z_range 0 2" in out


def test_command_reports_a_missing_input_in_one_line(tmp_path, capsys):
    code = expand_stacks.main(["--input", str(tmp_path / "absent.tif"), "--outdir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 4
    assert err.startswith("error: stack file") and err.count("\n") == 1
