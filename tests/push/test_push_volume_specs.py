"""A push of one time point of a volume as plain data: its spec round-trips through JSON, its manifest key
differs per time point, and its job renders as the ndpush command that builds it again; the experiment's
time samples its resources need."""
from __future__ import annotations

import argparse
import uuid
from dataclasses import replace

import pytest

from ndex.cli import push as push_cli
from ndex.cli.plan_argv import job_argv
from ndex.client import ChannelRef
from ndex.errors import ResourceNotFound
from ndex.geometry import Box
from ndex.jobs.spec import JobSpec
from ndex.sources.base import SourceSpec
from ndex.transfer.options import TransferOptions
from ndex.transfer.push_plan import PushSpec
from ndex.transfer.resources import CreateSpec, ResourceMismatch, ResourceSpec, ensure_resources

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


def test_time_samples_of_a_new_experiment_and_too_few_in_an_existing_one(client):
    tag = uuid.uuid4().hex[:8]
    ref = ChannelRef(f"c-{tag}", f"e-{tag}", "ch")
    lines = ensure_resources(client, ResourceSpec(ref, Box((0, 0, 0), (64, 64, 8)), num_time_samples=3))
    assert any("3 time samples" in line for line in lines)
    assert client.get_experiment(ref.collection, ref.experiment).num_time_samples == 3
    more = ResourceSpec(ChannelRef(ref.collection, ref.experiment, "other"), Box((0, 0, 0), (64, 64, 8)),
                        num_time_samples=5)
    with pytest.raises(ResourceMismatch, match="has 3 time sample.*this push writes 5: push fewer with --time_range"):
        ensure_resources(client, more)
    with pytest.raises(ResourceNotFound):  # checked before anything was created
        client.get_channel(more.ref)


def test_the_create_step_of_a_4d_push_renders_with_every_time_sample():
    resources = ResourceSpec(SPEC.ref, Box((0, 0, 0), (64, 64, 8)), num_time_samples=5)
    create = JobSpec(-1, "create", CreateSpec(resources).to_dict())
    argv = job_argv(create, SPEC)
    assert argv[argv.index("--time_range") + 1:argv.index("--time_range") + 3] == ["0", "5"]
    assert argv.count("--time_range") == 1 and "--create_resources" in argv


def test_a_slice_push_keeps_the_manifest_key_of_releases_before_volume_sources():
    """A run interrupted under the previous release resumes: the volume fields count only when set
    (the literal is what 4fcf72b, before volume sources, computed for this spec)."""
    slices = SourceSpec(datasource="local", base_path="/data/slices", base_filename="img_<p:4>", extension="tif",
                        z_range=(0, 64))
    spec = PushSpec(ChannelRef("c", "e", "em"), slices, offsets=(0, 0, 0))
    assert spec.key("http://127.0.0.1:8000") == "727a6852dda371cd21b0971ae16c6ed6"
    assert replace(spec, source=replace(slices, source_level=1)).key("http://127.0.0.1:8000") != spec.key(
        "http://127.0.0.1:8000")
