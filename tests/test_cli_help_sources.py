"""The help of the source and output flags a newcomer reads first: one group per kind of source or
output, what a flag applies to in its group's title, metavars that say what to type, and `ndex verify`
speaking of what it verifies."""
from __future__ import annotations

import argparse

from ndex.cli import pull, push, verify
from ndex.cli.common import ArgumentParser


def parser_of(module) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=module.__name__)
    module.configure(parser)
    return parser


def group_of(parser: argparse.ArgumentParser, flag: str) -> str:
    return next(g.title for g in parser._action_groups for a in g._group_actions if flag in a.option_strings)


def help_of(parser: argparse.ArgumentParser, flag: str) -> str:
    action = next(a for a in parser._actions if flag in a.option_strings)
    return " ".join(parser._get_formatter()._format_action(action).split())


def test_volume_flags_have_a_group_naming_their_datasources():
    for module in (push, verify):
        parser = parser_of(module)
        titles = {group_of(parser, f) for f in ("--source", "--source_level", "--source_channel_index", "--time_range")}
        assert titles == {"volumes (--datasource zarr, n5 or precomputed; needs ndex[zarr])"}
        assert group_of(parser, "--s3_bucket_name") == "S3 (--datasource s3)"
        assert group_of(parser, "--tile_size").startswith("CATMAID") and group_of(parser, "--render_stack") \
            .startswith("render-ws")
        assert "--source PATH_OR_URL" in help_of(parser, "--source") and "'/data/<ch>.ome.zarr'" in help_of(parser, "--source")
        assert "--source_level N" in help_of(parser, "--source_level") and "0 is full resolution" in \
            help_of(parser, "--source_level")
        assert "--time_range T0 T1" in help_of(parser, "--time_range") and "(default: all)" in help_of(parser, "--time_range")


def test_push_and_verify_say_what_the_time_range_and_channel_index_do_for_them():
    push_parser, verify_parser = parser_of(push), parser_of(verify)
    assert "goes into BOSS time sample T" in help_of(push_parser, "--time_range")
    assert "to verify, each against the BOSS time sample" in help_of(verify_parser, "--time_range")
    assert "--channels_list_file" in help_of(push_parser, "--source_channel_index")
    assert "--channels_list_file" not in help_of(verify_parser, "--source_channel_index")  # verify has no such flag
    assert "--source_channel_index" in help_of(push_parser, "--source_channel")  # the two are told apart


def test_pull_groups_format_options_by_the_output_they_apply_to():
    parser = parser_of(pull)
    for flag in ("--levels", "--zarr_version", "--encoding"):
        assert group_of(parser, flag) == "OME-Zarr and precomputed (--output zarr or precomputed)"
    for flag in ("--z_digits", "--compression", "--compression_level"):
        assert group_of(parser, flag) == "TIFF (--output tif, stack or ome-tiff)"
    assert "default: 4MiB" in help_of(parser, "--block_size") and "4194304" not in help_of(parser, "--block_size")
