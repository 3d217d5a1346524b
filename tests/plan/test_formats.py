"""Plans as text and files: shell lines parse back to the argv, Windows quoting, the SLURM script, JSON round trips."""
from __future__ import annotations

import argparse
import json
import math
import shlex

import pytest

from ndex.cli import pull as pull_cli
from ndex.cli import push as push_cli
from ndex.cli.plan import job_specs
from ndex.client import ChannelRef
from ndex.geometry import Box
from ndex.jobs.argv import to_argv
from ndex.jobs.formats import PROCESS_OVERHEAD, command_line, shell_lines, slurm_script
from ndex.jobs.spec import DONE, JobSpec, JobState, load_plan, read_state, write_plan, write_state
from ndex.plan import Draft, partition, push_footprint
from ndex.sources.base import SourceSpec
from ndex.transfer import upload

NASTY = ["push", "--base_path", "/data/my scans/<ch>", "--base_filename", "img_<p:4>", "--collection", "it's",
         "--experiment", 'say "hi"', "--channel", "$HOME", "--slack_usr", "a&b|c;d", "--z_range", "0", "16"]


def job(index: int, argv=NASTY, memory=100 * 10**6, kind="push") -> JobSpec:
    return JobSpec(index, kind, tuple(argv), (index * 16, index * 16 + 16), 10**6, 4, memory, 1.5, "/where")


def windows_split(line: str) -> list[str]:
    """The MS C runtime's rules for splitting a command line (the inverse of subprocess.list2cmdline)."""
    out, word, quoted, slashes, has_word = [], [], False, 0, False
    for ch in line + " ":
        if ch == "\\":
            slashes += 1
            continue
        if ch == '"':
            word.append("\\" * (slashes // 2))
            if slashes % 2:
                word.append('"')
            else:
                quoted = not quoted
            slashes, has_word = 0, True
            continue
        word.append("\\" * slashes)
        slashes = 0
        if ch in " \t" and not quoted:
            if has_word or any(word):
                out.append("".join(word))
            word, has_word = [], False
        else:
            word.append(ch)
            has_word = True
    return out


def test_shell_lines_parse_back_to_the_argv_in_ndex_1x_spelling():
    jobs = [job(0), job(1, [*NASTY[:-2], "--z_range", "16", "32"])]
    create = JobSpec(-1, "create", ("push", "--collection", "it's", "--create_resources"))
    lines = shell_lines(jobs, create)
    assert shlex.split(lines[0]) == ["ndpush", "--collection", "it's", "--create_resources"]
    assert shlex.split(lines[1]) == ["ndpush", *NASTY[1:]]
    assert shlex.split(lines[2])[-2:] == ["16", "32"]
    assert len(lines) == 3


def test_windows_lines_split_back_to_the_argv():
    argv = ["ndpull", "--outdir", r"C:\My Data\out dir" + "\\", "--collection", 'a"b', "--channel", "plain"]
    line = command_line(argv, "cmd")
    assert windows_split(line) == argv
    assert windows_split(shell_lines([job(0, ["pull", *argv[1:]], kind="pull")], style="cmd")[0]) == argv


def test_unknown_quoting_style_is_refused():
    with pytest.raises(ValueError, match="unknown quoting style"):
        command_line(["a"], "fish")


def test_slurm_array_script(tmp_path):
    jobs = [job(i, memory=(i + 1) * 10**9) for i in range(3)]
    create = JobSpec(-1, "create", ("push", "--create_resources"))
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
    # 8k x 8k uint16 slices: the source decodes 4 at once (0.5 GB), more than a flat process overhead
    xy, memory = Box((0, 0, 0), (8192, 8192, 1)), 6 * 10**9
    spec = upload.PushSpec(ChannelRef("c", "e", "ch"), SourceSpec(datasource="local", base_path="x",
                           base_filename="img_<p:4>", extension="tif", z_range=(0, 64)), max_memory=memory)
    draft = Draft("push", partition((0, 64), push_footprint(spec, xy, 2), workers=2), ("push",), "--z_range")
    jobs, _ = job_specs(draft, tmp_path)
    text = slurm_script(write_plan(tmp_path, "push", jobs, None, workers=2, summary=[]), jobs, cpus=8)
    engine = upload.layout(spec, xy.with_z(0, 16), 2)  # what ndpush prints as its peak
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
    changed = [jobs[0], job(1, [*NASTY[:-2], "--z_range", "16", "40"])]
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


def parser_of(module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    module.configure(parser)
    return parser


@pytest.mark.parametrize("module, argv", [
    (pull_cli, ["--collection", "c", "--experiment", "e", "--channel", "ch", "--x", "0", "100", "--y", "5", "9",
                "--z", "3", "40", "--res", "1", "--iso", "--outdir", "out dir", "--threads", "3", "--block_size",
                "1MiB", "--compression", "zstd", "-vv", "--t", "0", "2"]),
    (push_cli, ["--collection", "c", "--experiment", "e", "--channel", "ch", "--base_path", "/d", "--base_filename",
                "img_<p:4>", "--extension", "png", "--x_extent", "-10", "100", "--y_extent", "0", "50",
                "--z_extent", "0", "30", "--offset_extents", "--voxel_size", "4", "4", "40", "--datatype", "uint16",
                "--verify", "all", "--post_zero_blocks", "--tile_size", "256", "256", "--quiet"]),
])
def test_parsed_arguments_unparse_to_an_equivalent_argv(module, argv):
    parser = parser_of(module)
    args = parser.parse_args(argv)
    again = parser.parse_args(to_argv(parser, args))
    assert vars(again) == vars(args)
    assert to_argv(parser, again) == to_argv(parser, args)
    assert "--z" not in to_argv(parser, args, skip=("z",))
