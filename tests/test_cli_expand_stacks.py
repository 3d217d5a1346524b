"""The `expand_stacks` command's read-back line: a command that the shell splits back into the ndpush
arguments that read the slices just written, whatever the output directory is called."""
from __future__ import annotations

import argparse
import shlex

import numpy as np
import pytest
import tifffile
from shell_split import windows_argv

from ndex.cli import expand_stacks
from ndex.cli import push as push_cli
from ndex.sources import open_source
from ndex.transfer.expand import expand_stack

AWKWARD = "my scans/it's a (test) & $HOME;^x"  # <...> would be a placeholder of ndpush's base_path


def pushed_source(argv: list[str], channel: str = ""):
    """The SourceSpec ndpush builds from a printed command."""
    assert argv[0] == "ndpush"
    parser = argparse.ArgumentParser()
    push_cli.configure(parser)
    args = parser.parse_args([*argv[1:], "--collection", "c", "--experiment", "e", *([] if channel else
                                                                                     ["--channel", "ch"])])
    return push_cli.source_spec(args, channel)


@pytest.fixture
def stack(tmp_path):
    volume = np.arange(3 * 5 * 6, dtype=np.uint8).reshape(3, 5, 6)
    tifffile.imwrite(tmp_path / "stack.tif", volume, photometric="minisblack")
    return tmp_path / "stack.tif", volume


def test_the_printed_line_splits_back_to_a_push_that_reads_the_slices(stack, tmp_path, capsys):
    path, volume = stack
    outdir = tmp_path / AWKWARD
    assert expand_stacks.main(["--input", str(path), "--outdir", str(outdir)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("read back with: ")]
    source = pushed_source(shlex.split(line.removeprefix("read back with: ")))
    assert source.base_path == str(outdir) and source.base_filename == "<p:4>" and source.z_range == (0, 3)
    reader = open_source(source)
    try:
        np.testing.assert_array_equal(reader.read_slab(0, 3), volume)
    finally:
        reader.close()


@pytest.mark.parametrize("style, split", [("posix", shlex.split), ("cmd", windows_argv)])
def test_each_rgb_channel_line_survives_its_shell(tmp_path, style, split):
    rgb = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    result = expand_stack(tmp_path / "rgb.tif", tmp_path / AWKWARD, split_rgb=True)
    for channel in result.channels:
        source = pushed_source(split(expand_stacks.read_back_command(result, channel, style)), channel)
        assert (source.base_path, source.base_filename, source.channel) == (str(tmp_path / AWKWARD), "<ch>/<p:4>",
                                                                            channel)


def test_an_outdir_with_a_placeholder_is_refused_before_anything_is_written(stack, tmp_path, capsys):
    path, _ = stack
    outdir = tmp_path / "scan <ch>" / "slices"  # ndpush --base_path would read <ch> as the channel name
    assert expand_stacks.main(["--input", str(path), "--outdir", str(outdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --outdir ") and "'<ch>'" in err and "no '<...>'" in err
    assert not (tmp_path / "scan <ch>").exists()


def test_the_read_back_line_is_the_one_way_to_say_how_to_push(stack, tmp_path):
    result = expand_stack(stack[0], tmp_path / AWKWARD)
    assert not hasattr(result, "ndpush_args")  # it quoted nothing: --base_path with a space split in two
