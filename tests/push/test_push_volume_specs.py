"""A push of one time point of a volume as plain data: its spec round-trips through JSON, its manifest key
differs per time point, and its job renders as the ndpush command that builds it again."""
from __future__ import annotations

import argparse
from dataclasses import replace

from ndex.cli import push as push_cli
from ndex.cli.plan_argv import job_argv
from ndex.client import ChannelRef
from ndex.jobs.spec import JobSpec
from ndex.sources.base import SourceSpec
from ndex.transfer.options import TransferOptions
from ndex.transfer.push_plan import PushSpec

SOURCE = SourceSpec(datasource="zarr", source_url="s3://lab/brain.ome.zarr", source_level=2, channel="gfp",
                    channel_index=1, time_index=3, z_range=(0, 64))
SPEC = PushSpec(ChannelRef("c", "e", "gfp"), SOURCE, offsets=(100, 0, 7), time_sample=3)


def test_a_time_point_push_round_trips_and_has_its_own_manifest_key():
    again = PushSpec.from_json(SPEC.to_json())
    assert again == SPEC and again.time_range == (3, 4)
    assert SPEC.key() != replace(SPEC, time_sample=4, source=replace(SOURCE, time_index=4)).key()
    assert replace(SPEC, time_sample=None).time_range is None


def test_the_job_renders_as_the_ndpush_command_that_builds_the_same_spec():
    job = JobSpec(0, "push", SPEC.to_dict(), TransferOptions().to_dict(), (0, 64), 1, 1, 1)
    argv = job_argv(job)
    assert argv[0] == "ndpush"
    for words in (["--source", "s3://lab/brain.ome.zarr"], ["--source_level", "2"], ["--time_range", "3", "4"],
                  ["--source_channel_index", "1"]):
        assert any(argv[i:i + len(words)] == words for i in range(len(argv)))
    parser = argparse.ArgumentParser(allow_abbrev=False)
    push_cli.configure(parser)
    args = parser.parse_args(argv[1:])
    source = push_cli.source_spec(args, args.channel, None, args.time_range[0])
    rebuilt = push_cli.push_spec(args, ChannelRef(args.collection, args.experiment, args.channel), source,
                                 push_cli.offsets_for(args, None))
    assert rebuilt == replace(SPEC, source=replace(SOURCE, read_threads=rebuilt.source.read_threads))
