"""Plans as text and files: a job rendered as a command builds its own spec again, Windows quoting, the SLURM
script, JSON round trips."""
from __future__ import annotations

import argparse
import json
import math
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shell_split import windows_argv

from ndex.cli import pull as pull_cli
from ndex.cli import push as push_cli
from ndex.cli.plan import Draft, job_specs
from ndex.cli.plan_argv import job_argv
from ndex.client import ChannelRef
from ndex.geometry import Box
from ndex.jobs.formats import PROCESS_OVERHEAD, command_line, shell_lines, slurm_script
from ndex.jobs.spec import DONE, JobSpec, JobState, load_plan, read_state, write_plan, write_state
from ndex.plan import partition, push_footprint, push_job
from ndex.sources.base import SourceSpec
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullSpec
from ndex.transfer.push_plan import PushSpec, layout
from ndex.transfer.resources import CreateSpec, ResourceSpec

NASTY_SOURCE = SourceSpec(datasource="local", base_path="/data/my scans/$HOME/<ch>",
                          base_filename="it's \"img\" a&b|c;d_<p:4>", extension="tif", channel="ch", z_range=(0, 16), x_extent=(-10, 100), y_extent=(0, 50),
                          datatype="uint16", read_threads=3)
NASTY = PushSpec(ChannelRef("c-1", "e_2", "ch"), NASTY_SOURCE, offsets=(10, 0, 5), post_zero_blocks=True)
OPTIONS = TransferOptions(threads=3, block_bytes=2**20, verify="all", max_memory=10**9)


def job(index: int, spec=NASTY, memory=100 * 10**6, kind="push", options=OPTIONS) -> JobSpec:
    return JobSpec(index, kind, spec.to_dict(), options.to_dict(), (index * 16, index * 16 + 16), 10**6, 4, memory,
                   1.5, "/where", url="https://127.0.0.1:8443", log_dir="/logs/job a",
                   notify={"token_file": "/my secrets/slack", "user": "a&b|c;d"})


def parsed(module, argv):
    parser = argparse.ArgumentParser(allow_abbrev=False)
    module.configure(parser)
    return parser.parse_args(argv)


def test_a_push_job_renders_as_the_ndpush_command_that_builds_the_same_spec():
    argv = job_argv(job(0))
    assert argv[0] == "ndpush" and "--token" not in argv
    args = parsed(push_cli, argv[1:])
    source = push_cli.source_spec(args, args.channel)
    again = push_cli.push_spec(args, ChannelRef(args.collection, args.experiment, args.channel), source,
                               push_cli.offsets_for(args, None))
    assert again == NASTY
    assert push_cli.push_options(args, None) == OPTIONS
    assert args.url == "https://127.0.0.1:8443" and args.log_dir == "/logs/job a"
    assert (args.slack_token_file, args.slack_usr, args.slack_channel) == ("/my secrets/slack", "a&b|c;d", None)
    (line,) = shell_lines([argv])
    assert shlex.split(line) == argv


def test_a_pull_job_renders_as_the_ndpull_command_that_builds_the_same_spec():
    spec = PullSpec(ChannelRef("c", "e", "ch"), box=Box((0, 5, 3), (100, 9, 40)), res=1, iso=True, time_range=(0, 2),
                    outdir="out dir", stack_filename="v.ome.tif", compression="zstd", z_digits=4,
                    force_datatype="uint8", force_datatype_mode="clip")
    options = TransferOptions(threads=3, block_bytes=2**20)
    argv = job_argv(job(0, spec, kind="pull", options=options))
    args = parsed(pull_cli, argv[1:])
    assert argv[0] == "ndpull"
    assert pull_cli.build_spec(args) == spec and pull_cli.build_options(args) == options


def test_a_create_step_renders_as_ndpush_create_resources():
    resources = ResourceSpec(NASTY.ref, Box((0, 0, 5), (110, 50, 21)), voxel_size=(4.0, 4.0, 40.0),
                             datatype="uint16")
    step = JobSpec(-1, "create", CreateSpec(resources, NASTY.offsets).to_dict())
    args = parsed(push_cli, job_argv(step, NASTY)[1:])
    assert args.create_resources and args.voxel_size == [4.0, 4.0, 40.0]
    assert (args.coord_frame_x_extent, args.coord_frame_z_extent, args.forced_offsets) == ([0, 110], [5, 21],
                                                                                           [10, 0, 5])
    assert CreateSpec.from_dict(step.spec) == CreateSpec(resources, NASTY.offsets)


def test_windows_lines_split_back_to_the_argv():
    argv = ["ndpull", "--outdir", r"C:\My Data\out dir" + "\\", "--collection", 'a"b', "--channel", "plain",
            "--base_filename", "img_<p:4>", "--x", "a&b|c", "--y", "^(x)", "--z", 'say "<hi>" & go\\', "--e", ""]
    line = command_line(argv, "cmd")
    assert windows_argv(line) == argv
    assert windows_argv(shell_lines([argv], style="cmd")[0]) == argv
    assert '"img_<p:4>"' in line.split()  # a template reads as one quoted word, as in the help


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet='ab <>|&^()"\\\t;=,', max_size=12), min_size=1, max_size=4))
def test_any_argument_survives_cmd_exe_and_the_c_runtime(argv):
    assert windows_argv(command_line(["ndpush", *argv], "cmd")) == ["ndpush", *argv]


@pytest.mark.parametrize("arg", ["50%", "%PATH%", "two\nlines"])
def test_what_cmd_exe_cannot_carry_is_refused_not_mangled(arg):
    with pytest.raises(ValueError, match="cmd.exe command line cannot carry"):
        command_line(["ndpull", "--outdir", arg], "cmd")


def test_a_rendered_push_job_survives_cmd_exe():
    argv = job_argv(job(0))
    assert windows_argv(command_line(argv, "cmd")) == argv


def test_unknown_quoting_style_is_refused():
    with pytest.raises(ValueError, match="unknown quoting style"):
        command_line(["a"], "fish")


def test_slurm_array_script(tmp_path):
    jobs = [job(i, memory=(i + 1) * 10**9) for i in range(3)]
    create = JobSpec(-1, "create", {})
    files = write_plan(tmp_path / "my plan", "push", jobs, create, workers=2, summary=["total: 3 jobs"])
    text = slurm_script(files, jobs, cpus=8, workers=2, job_name="ndex-push")
    assert text.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-2%2\n" in text
    assert f"#SBATCH --mem={math.ceil((3 * 10**9 + PROCESS_OVERHEAD) / 2**20)}M\n" in text  # the largest job
    assert "#SBATCH --cpus-per-task=8\n" in text
    assert f"cd {shlex.quote(str(files.root))}\n" in text
    assert 'exec ndex run "jobs/job_${SLURM_ARRAY_TASK_ID}.json"' in text
    assert f"ndex run {shlex.quote(str(files.create))}" in text  # the create step, once, first
    assert (files.root / "jobs" / "job_2.json").is_file()
    no_limit = slurm_script(files, jobs, cpus=1, workers=None)
    assert "#SBATCH --array=0-2\n" in no_limit


def test_slurm_memory_of_a_push_job_is_ndpushs_own_whole_process_estimate(tmp_path):
    # 8k x 8k uint16 PNG slices (no partial reads): the source decodes 4 whole slices at once (1 GB), more
    # than a flat process overhead
    xy, memory = Box((0, 0, 0), (8192, 8192, 1)), 6 * 10**9
    spec = PushSpec(ChannelRef("c", "e", "ch"), SourceSpec(datasource="local", base_path="x",
                    base_filename="img_<p:4>", extension="png", z_range=(0, 64)))
    options = TransferOptions(max_memory=memory)
    parts = partition((0, 64), push_footprint(spec, options, xy, 2), workers=2)
    draft = Draft("push", parts, tuple((j, push_job(spec, j)) for j in parts.jobs), options, spec)
    jobs, _ = job_specs(draft, tmp_path)
    text = slurm_script(write_plan(tmp_path, "push", jobs, None, workers=2, summary=[]), jobs, cpus=8)
    engine = layout(spec, options, xy.with_z(0, 16), 2)  # what ndpush prints as its peak
    assert engine.process_estimate > engine.memory_estimate + PROCESS_OVERHEAD
    assert f"#SBATCH --mem={math.ceil(engine.process_estimate / 2**20)}M\n" in text
    assert JobSpec.from_json(jobs[0].to_json()).process_memory == engine.process_estimate


def test_job_spec_and_plan_round_trip(tmp_path):
    jobs = [job(i) for i in range(2)]
    assert JobSpec.from_json(jobs[0].to_json()) == jobs[0]
    files = write_plan(tmp_path / "p", "push", jobs, None, workers=2, summary=["a", "b"])
    again = load_plan(tmp_path / "p")
    assert again == files
    assert again.summary == ("a", "b")
    assert json.loads((tmp_path / "p" / "plan.json").read_text())["jobs"] == ["jobs/job_0.json", "jobs/job_1.json"]


def test_replanning_keeps_states_of_unchanged_jobs_only(tmp_path):
    jobs = [job(0), job(1)]
    files = write_plan(tmp_path, "push", jobs, None, workers=1, summary=[])
    for path in files.jobs:
        write_state(path, JobState(state=DONE))
    changed = [jobs[0], job(1, NASTY.for_z_range(16, 40))]
    files = write_plan(tmp_path, "push", changed, None, workers=1, summary=[])
    assert read_state(files.jobs[0]).state == DONE
    assert read_state(files.jobs[1]).state == "pending"


def test_damaged_specs_are_one_clear_line(tmp_path):
    bad = tmp_path / "job_0.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not a job spec written by `ndex plan`"):
        JobSpec.from_json(bad.read_text(), str(bad))
    with pytest.raises(ValueError, match="is not a plan directory"):
        load_plan(tmp_path / "nowhere")
